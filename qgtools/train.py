"""Training one model: ``fit`` and ``evaluate``; explained in notebook 02.

``fit`` splits the data with a fixed split seed (the locked test split is the same for every
training seed), fits the preprocessing on the training part, trains a :class:`QGClassifier`
with Lightning and returns the best epoch's model as a :class:`Predictor`.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch
from lightning.pytorch import Callback, Trainer, seed_everything
from torch import nn

from qgtools.data import SPLIT_NAMES, JetData, Preprocessor, QGDataModule
from qgtools.data import split as split_data
from qgtools.model import HParams, QGClassifier, count_parameters

DEFAULT_SPLIT = (0.8, 0.1, 0.1)
ROWS_PER_STEP = 4096  # jets per Lightning step: several mini-batches, to amortise its per-step overhead


@dataclass
class Predictor:
    """A trained network with everything needed to use it on raw taus.

    Attributes:
        network: the MLP (logits out), best epoch's weights.
        preprocessor: fitted on the training split of ``split_seed``.
        hparams: the configuration it was trained with.
        split_seed, split_sizes: how the data was split, so ``evaluate`` finds the same parts.
        source: which data it was trained on.
    """

    network: nn.Module
    preprocessor: Preprocessor
    hparams: HParams
    split_seed: int = 0
    split_sizes: tuple = DEFAULT_SPLIT
    source: str = ""

    def predict(self, X_raw: np.ndarray, batch_size: int = 65_536) -> np.ndarray:
        """Quark probabilities for raw features ``X_raw`` (n, 45)."""
        X_raw = np.asarray(X_raw)
        if X_raw.ndim != 2 or X_raw.shape[1] != 45:
            raise ValueError(f"X_raw has shape {X_raw.shape}; expected (n_jets, 45) raw N-subjettiness values.")
        X = self.preprocessor.transform(X_raw)[:, : self.hparams.input_channels]
        self.network.eval()
        device = next(self.network.parameters()).device
        with torch.no_grad():
            out = [torch.sigmoid(self.network(torch.from_numpy(X[i:i + batch_size]).to(device))).squeeze(-1).cpu()
                   for i in range(0, len(X), batch_size)]
        return torch.cat(out).numpy().astype(np.float64)


@dataclass
class TrainResult:
    """What one training run gives.

    ``best_*`` are taken at the epoch with the highest validation rejection (the one kept in
    ``model``); ``last_*`` at the final epoch. ``status`` is ``"ok"`` or ``"diverged"``
    (the loss went NaN and training stopped there).
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
    model: Predictor
    hparams: HParams = field(repr=False, default=None)  # type: ignore[assignment]


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """No Lightning banners, tips or framework warnings while training."""
    names = ("lightning", "lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero",
             "lightning.pytorch.accelerators.cuda")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"lightning\..*")
        warnings.filterwarnings("ignore", message=r".*(num_workers|LightningModule.log|does not have many workers).*")
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit(hparams: HParams, data: JetData, *, split_seed: int = 0, max_epochs: int | None = None,
        callbacks: Sequence[Callback] = (), progress: bool | None = None, num_threads: int | None = None,
        split_sizes: Sequence[float] | Sequence[int] = DEFAULT_SPLIT, accelerator: str = "auto") -> TrainResult:
    """Train the benchmark MLP on ``data``.

    Args:
        hparams: the configuration; ``hparams.seed`` seeds initialisation, shuffling and dropout.
        data: all the jets; split here with ``split_seed`` into train/val/test (test is not touched).
        split_seed: fixed across training seeds, so every model sees the same locked test split.
        max_epochs: overrides ``hparams.max_epochs`` when given.
        callbacks: Lightning callbacks, e.g. Optuna's pruning callback (``TrialPruned`` propagates).
        progress: show a progress bar; ``None`` shows one only for long runs.
        num_threads: torch threads while training (1 for parallel trials); ``None`` leaves it.
        split_sizes: see :func:`qgtools.data.split`.
        accelerator: Lightning's accelerator, ``"auto"`` uses a GPU when there is one.

    Returns:
        A :class:`TrainResult`; ``result.model`` is the best epoch's :class:`Predictor`.
    """
    if max_epochs is not None:
        hparams = hparams.replace(max_epochs=max_epochs)
    train, val, _ = split_data(data, split_sizes, split_seed)
    preprocessor = Preprocessor(hparams.preprocessing).fit(train.X)
    with _quiet_lightning(), _torch_threads(num_threads):
        seed_everything(hparams.seed, workers=False, verbose=False)
        datamodule = QGDataModule(train, val, preprocessor=preprocessor, batch_size=hparams.batch_size,
                                  seed=hparams.seed, input_channels=hparams.input_channels,
                                  batches_per_step=max(1, ROWS_PER_STEP // hparams.batch_size))
        model = QGClassifier(hparams)
        n_params = count_parameters(model.network)
        if progress is None:
            progress = 6 * n_params * len(train) * hparams.max_epochs > 5e12
        trainer = Trainer(max_epochs=hparams.max_epochs, accelerator=accelerator, devices=1, logger=False,
                          enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=progress,
                          num_sanity_val_steps=0, callbacks=list(callbacks))
        start = time.perf_counter()
        trainer.fit(model, datamodule=datamodule)
        wall_time = time.perf_counter() - start
    network = model.network.cpu()
    if model.best_state is not None:
        network.load_state_dict(model.best_state)
    network.eval()
    history = model.history
    best = history[model.best_epoch] if model.best_epoch >= 0 else {"val_rejection": math.nan, "val_auc": math.nan}
    last = history[-1] if history else {"val_rejection": math.nan, "val_auc": math.nan}
    predictor = Predictor(network=network, preprocessor=preprocessor, hparams=hparams, split_seed=split_seed,
                          split_sizes=tuple(split_sizes), source=data.source)
    return TrainResult(
        best_val_rejection=best["val_rejection"], best_val_auc=best["val_auc"], best_epoch=model.best_epoch,
        last_val_rejection=last["val_rejection"], last_val_auc=last["val_auc"], history=history,
        n_params=n_params, wall_time_s=wall_time, status="diverged" if model.diverged else "ok",
        model=predictor, hparams=hparams,
    )


def evaluate(predictor: Predictor, data: JetData, split: str = "val") -> tuple[np.ndarray, np.ndarray]:
    """Quark probabilities and labels on one part of ``data``, split as the predictor was trained.

    Args:
        predictor: from :func:`fit` or :func:`qgtools.model.load_model`.
        data: the same jets the predictor was trained on.
        split: ``"train"``, ``"val"`` or ``"test"``; the test split is touched only when named.

    Returns:
        ``(scores, labels)`` over the whole part.
    """
    if split not in SPLIT_NAMES:
        raise ValueError(f"split={split!r}: use 'train', 'val' or 'test'.")
    part = dict(zip(SPLIT_NAMES, split_data(data, predictor.split_sizes, predictor.split_seed)))[split]
    return predictor.predict(part.X), part.y

