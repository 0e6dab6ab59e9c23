from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from lightning.pytorch import Callback

from qgtools import metrics
from qgtools.data import split
from qgtools.model import HParams
from qgtools.train import evaluate, fit

SMALL = HParams(n_layers=2, n_channels=16, batch_size=128, max_epochs=2, preprocessing="log+standardize")


def test_fit_reports_the_best_epoch_on_the_whole_validation_set(jets):
    result = fit(SMALL.replace(max_epochs=3), jets)
    assert result.status == "ok" and len(result.history) == 3
    assert set(result.history[0]) >= {"epoch", "train_loss", "val_loss", "val_auc", "val_rejection", "lr"}
    best = max(h["val_rejection"] for h in result.history)
    assert result.best_val_rejection == best
    assert result.last_val_rejection == result.history[-1]["val_rejection"]
    scores, labels = evaluate(result.model, jets, "val")
    assert len(labels) == 200  # the whole validation split, not one batch
    assert metrics.background_rejection(labels, scores) == pytest.approx(result.best_val_rejection, rel=1e-6)
    assert metrics.roc_auc(labels, scores) == pytest.approx(result.best_val_auc, rel=1e-6)
    assert result.n_params > 0 and result.wall_time_s > 0


def test_fit_is_deterministic_for_a_seed(jets):
    first = fit(SMALL, jets, num_threads=1)
    again = fit(SMALL, jets, num_threads=1)
    other = fit(SMALL.replace(seed=1), jets, num_threads=1)
    assert [h["val_loss"] for h in first.history] == [h["val_loss"] for h in again.history]
    assert [h["val_loss"] for h in first.history] != [h["val_loss"] for h in other.history]


def test_max_epochs_overrides_and_split_seed_is_kept(jets):
    result = fit(SMALL, jets, max_epochs=1, split_seed=7)
    assert len(result.history) == 1 and result.model.hparams.max_epochs == 1
    scores, labels = evaluate(result.model, jets, "test")
    np.testing.assert_array_equal(labels, split(jets, seed=7)[2].y)


def test_evaluate_rejects_unknown_split_names(jets):
    result = fit(SMALL, jets, max_epochs=1)
    with pytest.raises(ValueError, match="split='validation'"):
        evaluate(result.model, jets, "validation")


def test_a_diverging_run_stops_without_crashing(jets):
    wild = HParams(n_layers=2, n_channels=16, layer_norm=False, batch_norm=False, dropout=0.0, lr=1e30,
                   hidden_activation="ReLU", max_epochs=5, batch_size=64)
    result = fit(wild, jets)
    assert result.status == "diverged"
    assert len(result.history) < 5
    assert math.isnan(result.history[-1]["val_loss"])


class _Pruner(Callback):
    def on_validation_end(self, trainer, pl_module):
        raise optuna.TrialPruned("pruned at epoch 0")


def test_trial_pruned_propagates(jets):
    with pytest.raises(optuna.TrialPruned):
        fit(SMALL, jets, callbacks=[_Pruner()])
