"""Training one model: ``fit`` and ``evaluate``; explained in notebook 02.

``fit`` splits the data with a fixed split seed (the locked test split is the same for every
training seed), fits the preprocessing on the training part, trains a
:class:`~qgtools.lightning_mlp.LightningMLP` with Lightning (automatic optimisation) over
in-memory :class:`~qgtools.batches.TensorBatches`, and returns the best epoch's model as a
:class:`~qgtools.model.Predictor` in a :class:`TrainResult`. Lightning is imported when ``fit``
first trains, not with this module: the search's command line and the populations, which
import ``TrainResult`` and ``evaluate`` from here, start without it.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from qgtools import metrics
from qgtools.data import DEFAULT_SPLIT, SPLIT_NAMES, JetData
from qgtools.data import split as split_data
from qgtools.model import Ensemble, HParams, Predictor, count_parameters
from qgtools.preprocessing import Preprocessor

if TYPE_CHECKING:
    from lightning.pytorch import Callback

    from qgtools.lightning_mlp import LightningMLP

__all__ = [
    "DEFAULT_SPLIT",
    "OPTIMIZATIONS",
    "ROWS_PER_STEP",
    "Predictor",
    "TrainResult",
    "evaluate",
    "rejection",
    "fit",
    "torch_threads",
]

ROWS_PER_STEP = 4096
"""Jets per Lightning step when ``optimization="chunked"``: several mini-batches per step."""
OPTIMIZATIONS = ("automatic", "chunked")


@dataclass
class TrainResult:
    """What one training run gives.

    ``best_*`` are taken at the epoch with the highest validation rejection (the one kept in
    ``predictor``); ``last_*`` at the final epoch (its weights in ``last_predictor``, so the
    optimism of choosing the best epoch on validation data can be measured, notebook 04).
    ``status`` is ``"ok"`` or ``"diverged"`` (the loss went NaN and training stopped there).
    """

    best_val_rejection: float
    best_val_auc: float
    best_epoch: int
    last_val_rejection: float
    last_val_auc: float
    history: list[dict]
    n_params: int
    wall_time_s: float
    status: str
    predictor: Predictor
    last_predictor: Predictor | None = None


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Use ``n`` torch threads inside the block (``None``: leave the setting), then restore."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit(
    hparams: HParams,
    data: JetData,
    *,
    split_seed: int = 0,
    max_epochs: int | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
    num_threads: int | None = None,
    split_sizes: Sequence[float] | Sequence[int] = DEFAULT_SPLIT,
    accelerator: str = "auto",
    optimization: str = "automatic",
) -> TrainResult:
    """Train the benchmark MLP on ``data``.

    Args:
        hparams: the configuration; ``hparams.seed`` seeds initialisation, shuffling and dropout.
        data: all the jets; split here with ``split_seed`` into train/val/test (test is not
            touched).
        split_seed: fixed across training seeds, so every model sees the same locked test split.
        max_epochs: overrides ``hparams.max_epochs`` when given.
        callbacks: Lightning callbacks, e.g. Optuna's pruning callback (``TrialPruned``
            propagates).
        progress: show a progress bar; ``None`` shows one only for long runs.
        num_threads: torch threads while training (1 for parallel trials); ``None`` leaves it.
        split_sizes: see :func:`qgtools.data.split`.
        accelerator: Lightning's accelerator, ``"auto"`` uses a GPU when there is one.
        optimization: ``"automatic"`` (default) or ``"chunked"``: see
            :class:`~qgtools.lightning_mlp.LightningMLP`.
            Both make the same updates.

    Returns:
        A :class:`TrainResult`; ``result.predictor`` is the best epoch's
        :class:`~qgtools.model.Predictor`.
    """
    if optimization not in OPTIMIZATIONS:
        raise ValueError(f"optimization={optimization!r}: use one of {OPTIMIZATIONS}.")
    from lightning.pytorch import seed_everything

    from qgtools.lightning_mlp import LightningMLP, QGDataModule, make_trainer, quiet_lightning

    if max_epochs is not None:
        hparams = hparams.replace(max_epochs=max_epochs)
    chunked = optimization == "chunked"
    train, val, _ = split_data(data, split_sizes, split_seed)
    preprocessor = Preprocessor(hparams.preprocessing).fit(train.X)
    with quiet_lightning(), torch_threads(num_threads):
        seed_everything(hparams.seed, workers=False, verbose=False)
        datamodule = QGDataModule(
            train,
            val,
            preprocessor=preprocessor,
            batch_size=hparams.batch_size,
            seed=hparams.seed,
            input_channels=hparams.input_channels,
            batches_per_step=max(1, ROWS_PER_STEP // hparams.batch_size) if chunked else 1,
        )
        module = LightningMLP(hparams, chunked=chunked)
        n_params = count_parameters(module.network)
        if progress is None:
            progress = 6 * n_params * len(train) * hparams.max_epochs > 5e12
        trainer = make_trainer(hparams.max_epochs, accelerator, progress, callbacks)
        start = time.perf_counter()
        trainer.fit(module, datamodule=datamodule)
        wall_time = time.perf_counter() - start
    return _result(module, n_params, wall_time, preprocessor, split_seed, split_sizes, data)


def _result(
    module: LightningMLP,
    n_params: int,
    wall_time: float,
    preprocessor: Preprocessor,
    split_seed: int,
    split_sizes: Sequence[float] | Sequence[int],
    data: JetData,
) -> TrainResult:
    """The trained ``module``'s :class:`TrainResult`: the best and the last epoch's models."""
    hparams = module.hp
    network = module.network.cpu()
    last_network = copy.deepcopy(network).eval()
    if module.best_state is not None:
        network.load_state_dict(module.best_state)
    network.eval()
    history = module.history
    nan = {"val_rejection": math.nan, "val_auc": math.nan}
    best = history[module.best_epoch] if module.best_epoch >= 0 else nan
    last = history[-1] if history else nan

    def predictor_of(weights: nn.Module) -> Predictor:
        return Predictor(
            network=weights,
            preprocessor=preprocessor,
            hparams=hparams,
            split_seed=split_seed,
            split_sizes=tuple(split_sizes),
            source=data.source,
        )

    return TrainResult(
        best_val_rejection=best["val_rejection"],
        best_val_auc=best["val_auc"],
        best_epoch=module.best_epoch,
        last_val_rejection=last["val_rejection"],
        last_val_auc=last["val_auc"],
        history=history,
        n_params=n_params,
        wall_time_s=wall_time,
        status="diverged" if module.diverged else "ok",
        predictor=predictor_of(network),
        last_predictor=predictor_of(last_network),
    )


def evaluate(
    predictor: Predictor, data: JetData, split: str = "val"
) -> tuple[np.ndarray, np.ndarray]:
    """Quark probabilities and labels on one part of ``data``, split as the predictor was trained.

    Args:
        predictor: from :func:`fit` or :func:`qgtools.model.load_model`.
        data: the same jets the predictor was trained on: ``data.source`` (origin, part and
            jet count) must equal ``predictor.source``, as splitting other jets the same way
            would not give the predictor's validation or test jets.
        split: ``"train"``, ``"val"`` or ``"test"``; the test split is touched only when named.

    Returns:
        ``(scores, labels)`` over the whole part.
    """
    if split not in SPLIT_NAMES:
        raise ValueError(f"split={split!r}: use 'train', 'val' or 'test'.")
    if not predictor.source:
        raise ValueError(
            "The predictor has no record of the data it was trained on (predictor.source is "
            "empty), so evaluate cannot tell which jets it has seen. Use a predictor from fit or "
            "load_model, or set predictor.source = data.source if you know it was trained on "
            "these jets."
        )
    if data.source != predictor.source:
        raise ValueError(
            f"The predictor was trained on {predictor.source!r} but data is {data.source!r}: "
            f"the {split!r} part of other jets may hold jets it was trained on. Pass the data it "
            "was trained on (the same origin, part and number of jets), or score jets it has "
            "never seen with predictor.predict(X)."
        )
    parts = split_data(data, predictor.split_sizes, predictor.split_seed)
    part = dict(zip(SPLIT_NAMES, parts, strict=True))[split]
    return predictor.predict(part.X), part.y


def rejection(predictor: Predictor | Ensemble, data: JetData, split: str = "val") -> float:
    """Background rejection at 50% quark efficiency of ``predictor`` on one part of ``data``
    (:func:`evaluate`'s scores, :func:`qgtools.metrics.background_rejection`).

    Args:
        predictor: a trained predictor or ensemble.
        data: the jets it was trained on (as :func:`evaluate` takes them).
        split: ``"train"``, ``"val"`` or ``"test"``.

    Returns:
        The rejection, 1 / FPR.
    """
    scores, labels = evaluate(predictor, data, split)
    return metrics.background_rejection(labels, scores)
