from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import optuna
import pytest
import torch
from lightning.pytorch import Callback
from torch import nn

from qgtools import data, metrics
from qgtools.batches import TensorBatches
from qgtools.data import split
from qgtools.lightning_mlp import LightningMLP, QGDataModule
from qgtools.model import HParams
from qgtools.preprocessing import Preprocessor
from qgtools.train import evaluate, fit

SMALL = HParams(
    n_layers=2, n_channels=16, batch_size=128, max_epochs=2, preprocessing="log+standardize"
)


def test_fit_reports_the_best_epoch_on_the_whole_validation_set(jets):
    result = fit(SMALL.replace(max_epochs=3), jets)
    assert result.status == "ok" and len(result.history) == 3
    assert set(result.history[0]) >= {
        "epoch",
        "train_loss",
        "val_loss",
        "val_auc",
        "val_rejection",
        "lr",
        "train_s",
    }
    assert all(0 < h["train_s"] < result.wall_time_s for h in result.history)
    best = max(h["val_rejection"] for h in result.history)
    assert result.best_val_rejection == best
    assert result.last_val_rejection == result.history[-1]["val_rejection"]
    scores, labels = evaluate(result.predictor, jets, "val")
    assert len(labels) == 200  # the whole validation split, not one batch
    assert metrics.background_rejection(labels, scores) == pytest.approx(
        result.best_val_rejection, rel=1e-6
    )
    assert metrics.roc_auc(labels, scores) == pytest.approx(result.best_val_auc, rel=1e-6)
    assert result.n_params > 0 and result.wall_time_s > 0
    # The last epoch's weights are kept too, and give the last epoch's validation numbers.
    last_scores, _ = evaluate(result.last_predictor, jets, "val")
    assert metrics.background_rejection(labels, last_scores) == pytest.approx(
        result.last_val_rejection, rel=1e-6
    )
    assert metrics.roc_auc(labels, last_scores) == pytest.approx(result.last_val_auc, rel=1e-6)


def test_fit_is_deterministic_for_a_seed(jets):
    first = fit(SMALL, jets, num_threads=1)
    again = fit(SMALL, jets, num_threads=1)
    other = fit(SMALL.replace(seed=1), jets, num_threads=1)
    assert [h["val_loss"] for h in first.history] == [h["val_loss"] for h in again.history]
    assert [h["val_loss"] for h in first.history] != [h["val_loss"] for h in other.history]


def test_max_epochs_overrides_and_split_seed_is_kept(jets):
    result = fit(SMALL, jets, max_epochs=1, split_seed=7)
    assert len(result.history) == 1 and result.predictor.hparams.max_epochs == 1
    scores, labels = evaluate(result.predictor, jets, "test")
    np.testing.assert_array_equal(labels, split(jets, seed=7)[2].y)


def test_evaluate_rejects_unknown_split_names(jets):
    result = fit(SMALL, jets, max_epochs=1)
    with pytest.raises(ValueError, match="split='validation'"):
        evaluate(result.predictor, jets, "validation")


def test_a_diverging_run_stops_without_crashing(jets):
    wild = HParams(
        n_layers=2,
        n_channels=16,
        layer_norm=False,
        batch_norm=False,
        dropout=0.0,
        lr=1e30,
        hidden_activation="ReLU",
        max_epochs=5,
        batch_size=64,
    )
    result = fit(wild, jets)
    assert result.status == "diverged"
    assert len(result.history) < 5
    assert math.isnan(result.history[-1]["val_loss"])


def test_fit_accepts_numpy_integers(jets):
    """Values from numpy (a grid, a DataFrame row) train like Python ints."""
    hp = SMALL.replace(batch_size=np.int64(128), seed=np.int64(1))
    result = fit(hp, jets, max_epochs=np.int64(1), split_seed=np.int64(0))
    assert result.status == "ok" and len(result.history) == 1
    assert type(result.predictor.hparams.max_epochs) is int
    plain = fit(SMALL.replace(seed=1), jets, max_epochs=1)
    assert result.history[0]["val_loss"] == plain.history[0]["val_loss"]


def test_evaluate_refuses_data_the_predictor_was_not_split_on(jets):
    result = fit(SMALL, jets, max_epochs=1)
    fewer = jets.head(1000)
    other = data.JetData(jets.X, jets.y, origin="another file")
    for wrong in (fewer, other):
        with pytest.raises(
            ValueError, match=rf"trained on '{re.escape(jets.source)}'.*{re.escape(wrong.source)}"
        ):
            evaluate(result.predictor, wrong, "val")
    anonymous = dataclasses.replace(result.predictor, source="")
    with pytest.raises(ValueError, match="no record of the data"):
        evaluate(anonymous, jets, "val")
    scores, labels = evaluate(result.predictor, jets, "val")  # its own data is fine
    assert len(scores) == len(labels) == 200


class _Pruner(Callback):
    def on_validation_end(self, trainer, pl_module):
        raise optuna.TrialPruned("pruned at epoch 0")


def test_trial_pruned_propagates(jets):
    with pytest.raises(optuna.TrialPruned):
        fit(SMALL, jets, callbacks=[_Pruner()])


# --------------------------------------------------------------------------- batching


def test_tensor_batches_cover_each_jet_once_per_epoch():
    X = np.arange(1050, dtype=np.float32)[:, None]
    batches = TensorBatches(X, np.zeros(1050), batch_size=100, seed=1)
    assert len(batches) == 11
    first = np.concatenate([xb.numpy()[:, 0] for xb, _ in batches])
    second = np.concatenate([xb.numpy()[:, 0] for xb, _ in batches])
    assert sorted(first) == list(range(1050)) and not np.array_equal(first, second)
    replay = TensorBatches(X, np.zeros(1050), batch_size=100, seed=1)
    np.testing.assert_array_equal(np.concatenate([xb.numpy()[:, 0] for xb, _ in replay]), first)


def test_datamodule_preprocesses_with_training_statistics(jets):
    train, val, test = data.split(jets)
    module = QGDataModule(
        train, val, test, preprocessor=Preprocessor("standardize"), batch_size=64, input_channels=10
    )
    xb, yb = next(iter(module.train_dataloader()))
    assert xb.shape == (64, 10) and yb.dtype.is_floating_point
    np.testing.assert_allclose(module.train_batches.X.mean(0).numpy(), 0, atol=1e-4)
    assert len(module.val_dataloader()) == 1 and len(module.test_dataloader()) == 1
    with pytest.raises(ValueError, match="without a test split"):
        QGDataModule(train, val).test_dataloader()


# --------------------------------------------------------------------------- the LightningModule


def test_optimizer_and_schedule_are_the_reference_ones():
    module = LightningMLP(HParams(n_layers=1, n_channels=4, pos_weight=2.0))
    (optimizer,), (scheduler,) = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["amsgrad"]
    assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR)
    assert (scheduler.step_size, scheduler.gamma) == (15, 0.3)
    logits, y = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0])
    expected = nn.functional.binary_cross_entropy_with_logits(
        logits, y, pos_weight=torch.tensor([2.0])
    )
    assert module.loss(logits, y) == pytest.approx(expected.item())


def test_chunked_and_automatic_optimisation_make_the_same_updates(jets):
    hp = SMALL.replace(dropout=0.0, max_epochs=2)
    chunked = fit(hp, jets, num_threads=1, optimization="chunked")
    automatic = fit(hp, jets, num_threads=1, optimization="automatic")
    for a, b in zip(chunked.history, automatic.history, strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
        assert a["lr"] == b["lr"]
    with pytest.raises(ValueError, match="optimization='manual'"):
        fit(hp, jets, optimization="manual")
