"""Training one model: ``fit`` and ``evaluate``; explained in notebook 02.

``fit`` splits the data with a fixed split seed (the locked test split is the same for every
training seed), fits the preprocessing on the training part, trains a :class:`LightningMLP`
with Lightning (automatic optimisation) over in-memory :class:`TensorBatches`, and returns the
best epoch's model as a :class:`~qgtools.model.Predictor` in a :class:`TrainResult`.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from lightning.pytorch import (
    Callback,
    LightningDataModule,
    LightningModule,
    Trainer,
    seed_everything,
)
from torch import nn

from qgtools import metrics
from qgtools.data import DEFAULT_SPLIT, FEATURE_NAMES, SPLIT_NAMES, JetData
from qgtools.data import split as split_data
from qgtools.model import (
    HParams,
    Predictor,
    count_parameters,
    mlp_from_hparams,
)
from qgtools.preprocessing import Preprocessor

__all__ = [
    "DEFAULT_SPLIT",
    "OPTIMIZATIONS",
    "ROWS_PER_STEP",
    "LightningMLP",
    "Predictor",
    "QGDataModule",
    "TensorBatches",
    "TrainResult",
    "evaluate",
    "fit",
]

ROWS_PER_STEP = 4096
"""Jets per Lightning step when ``optimization="chunked"``: several mini-batches per step."""
OPTIMIZATIONS = ("automatic", "chunked")


# --------------------------------------------------------------------------- batches


def batch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The shuffled order of ``n`` training jets in ``epoch`` for training seed ``seed``: what
    :class:`TensorBatches` (so ``fit``) and a population's members use."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=generator)


class TensorBatches:
    """Mini-batches sliced from in-memory tensors (no per-sample collate).

    Each pass draws a permutation from ``seed`` and the pass number, so epochs differ but a
    run is reproducible. With ``shuffle=False`` batches come in order. With
    ``batches_per_step=k`` each item is k consecutive mini-batches in one chunk (the model
    splits it again), which cuts the per-step overhead of a training framework.
    """

    def __init__(
        self,
        X: np.ndarray | torch.Tensor,
        y: np.ndarray | torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        batches_per_step: int = 1,
    ) -> None:
        if batch_size < 1 or batches_per_step < 1:
            raise ValueError(
                f"batch_size={batch_size} and batches_per_step={batches_per_step} must be positive."
            )
        self.batches_per_step = batches_per_step
        self.X = torch.as_tensor(X, dtype=torch.float32)
        self.y = torch.as_tensor(y, dtype=torch.float32)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.y) // (self.batch_size * self.batches_per_step))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.shuffle:
            order = batch_order(self.seed, self.epoch, len(self.y))
            X, y = self.X[order], self.y[order]
        else:
            X, y = self.X, self.y
        self.epoch += 1
        step = self.batch_size * self.batches_per_step
        for start in range(0, len(y), step):
            yield X[start : start + step], y[start : start + step]


class QGDataModule(LightningDataModule):
    """Train/val(/test) batches from in-memory tensors, preprocessed by a fitted Preprocessor.

    Args:
        train, val, test: the splits (raw features).
        preprocessor: fitted on ``train`` here if not fitted yet; default ``"none"``.
        batch_size: training batch size; validation and test use ``eval_batch_size``.
        seed: seeds the per-epoch shuffling of the training batches.
        input_channels: use only the first k features.
        batches_per_step: mini-batches per training item (see :class:`TensorBatches`).
    """

    def __init__(
        self,
        train: JetData,
        val: JetData,
        test: JetData | None = None,
        preprocessor: Preprocessor | None = None,
        batch_size: int = 100,
        seed: int = 0,
        input_channels: int = len(FEATURE_NAMES),
        eval_batch_size: int = 10_000,
        batches_per_step: int = 1,
    ) -> None:
        super().__init__()
        self.preprocessor = preprocessor or Preprocessor("none")
        if not self.preprocessor.fitted:
            self.preprocessor.fit(train.X)
        k = input_channels

        def features(part: JetData) -> np.ndarray:
            return self.preprocessor.transform(part.X)[:, :k]

        self.train_batches = TensorBatches(
            features(train),
            train.y,
            batch_size,
            shuffle=True,
            seed=seed,
            batches_per_step=batches_per_step,
        )
        self.val_batches = TensorBatches(features(val), val.y, eval_batch_size, shuffle=False)
        self.test_batches = None
        if test is not None:
            self.test_batches = TensorBatches(
                features(test), test.y, eval_batch_size, shuffle=False
            )

    def train_dataloader(self) -> TensorBatches:
        return self.train_batches

    def val_dataloader(self) -> TensorBatches:
        return self.val_batches

    def test_dataloader(self) -> TensorBatches:
        if self.test_batches is None:
            raise ValueError("This QGDataModule was built without a test split.")
        return self.test_batches


# --------------------------------------------------------------------------- the LightningModule


class LightningMLP(LightningModule):
    """The benchmark MLP as a LightningModule.

    AdamW (amsgrad) with StepLR per epoch and BCE-with-logits with ``pos_weight``. At each
    validation epoch end it logs ``val_loss``, ``val_auc`` and ``val_rejection`` over the whole
    validation set, and keeps the best epoch's weights. ``history`` has one dict per epoch with
    these, ``train_loss``, ``lr`` and ``train_s`` (seconds of the training part of the epoch,
    without validation).

    Args:
        hparams: the configuration.
        chunked: ``False`` (what :func:`fit` uses): Lightning's automatic optimisation, one
            training step and one optimizer update per mini-batch, so ``batch_idx``,
            ``global_step``, gradient clipping, accumulation and precision mean what the
            Lightning docs say. ``True``: manual optimisation; each training step gets a chunk
            of several mini-batches and makes one update per mini-batch of
            ``hparams.batch_size`` (the same updates, Lightning's per-step overhead paid once per
            chunk; ``batch_idx`` then counts chunks, and the Trainer's ``gradient_clip_val`` and
            ``accumulate_grad_batches`` are refused). ``bench/training_speed.py`` measures what
            the chunks buy: at most about 1.2x for a 3 x 64 network at batch 256 and nothing for
            6 x 1024, which is why automatic optimisation is the default.
    """

    def __init__(self, hparams: HParams, chunked: bool = False) -> None:
        super().__init__()
        self.hp = hparams
        self.automatic_optimization = not chunked
        self.network = mlp_from_hparams(hparams)
        self.register_buffer("pos_weight", torch.tensor([hparams.pos_weight]))
        self.history: list[dict] = []
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_epoch = -1
        self.diverged = False
        self._train_losses: list[torch.Tensor] = []
        self._epoch_start = self._train_seconds = math.nan
        self._val_logits: list[torch.Tensor] = []
        self._val_labels: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x).squeeze(-1)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=self.pos_weight)

    def configure_optimizers(self) -> tuple[list, list]:
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.hp.lr, amsgrad=True)
        scheduler = torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=self.hp.patience, gamma=self.hp.factor
        )
        return [optimizer], [scheduler]

    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor | None:
        if self.diverged:
            return None
        X, y = batch
        if self.automatic_optimization:
            if len(y) < 2:  # BatchNorm cannot train on one jet; at most one jet per epoch skipped
                return None
            loss = self.loss(self(X), y)
            self._train_losses.append(loss.detach())
            if not torch.isfinite(loss):
                self._stop_diverged()
                return None
            return loss
        optimizer = self.optimizers()
        for xb, yb in zip(X.split(self.hp.batch_size), y.split(self.hp.batch_size), strict=True):
            if len(yb) < 2:  # as above
                continue
            loss = self.loss(self(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            optimizer.step()
            self._train_losses.append(loss.detach())
        if self._train_losses and not torch.isfinite(self._train_losses[-1]):
            self._stop_diverged()
        return None

    def _stop_diverged(self) -> None:
        self.diverged = True
        self.trainer.should_stop = True

    def on_train_epoch_start(self) -> None:
        self._epoch_start = time.perf_counter()

    def on_validation_epoch_start(self) -> None:
        if not self.trainer.sanity_checking:  # validation follows the epoch's last training step
            self._train_seconds = time.perf_counter() - self._epoch_start

    def on_train_epoch_end(self) -> None:
        if not self.automatic_optimization:  # Lightning steps the scheduler itself otherwise
            self.lr_schedulers().step()

    def validation_step(self, batch: tuple, batch_idx: int) -> None:
        X, y = batch
        self._val_logits.append(self(X).detach().float().cpu())
        self._val_labels.append(y.detach().cpu())

    def on_validation_epoch_end(self) -> None:
        logits = torch.cat(self._val_logits)
        labels = torch.cat(self._val_labels)
        self._val_logits.clear()
        self._val_labels.clear()
        if self.trainer.sanity_checking:
            return
        losses = self._train_losses
        train_loss = torch.stack(losses).mean().item() if losses else float("nan")
        self._train_losses = []
        finite = bool(torch.isfinite(logits).all()) and math.isfinite(train_loss)
        if finite:
            val_loss = self.loss(logits, labels.float()).item()
            scores = torch.sigmoid(logits).numpy()
            y_np = labels.numpy().astype(np.int64)
            auc = metrics.roc_auc(y_np, scores)
            rejection = metrics.background_rejection(y_np, scores)
        else:
            self._stop_diverged()
            val_loss = auc = rejection = float("nan")
        epoch = len(self.history)
        self.history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_auc": auc,
                "val_rejection": rejection,
                "lr": self.optimizers().param_groups[0]["lr"],
                "train_s": self._train_seconds,
            }
        )
        self.log_dict({"val_loss": val_loss, "val_auc": auc, "val_rejection": rejection})
        earlier = [h["val_rejection"] for h in self.history[:-1] if math.isfinite(h["val_auc"])]
        if finite and rejection > max(earlier, default=-1.0):
            self.best_epoch = epoch
            self.best_state = {
                k: v.detach().cpu().clone() for k, v in self.network.state_dict().items()
            }


# --------------------------------------------------------------------------- fit and evaluate


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
def _quiet_lightning() -> Iterator[None]:
    """No Lightning banners, tips or framework warnings while training."""
    names = (
        "lightning",
        "lightning.pytorch",
        "lightning.fabric",
        "lightning.pytorch.utilities.rank_zero",
        "lightning.pytorch.accelerators.cuda",
    )
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"lightning\..*")
        warnings.filterwarnings(
            "ignore", message=r".*(num_workers|LightningModule.log|does not have many workers).*"
        )
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


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
        optimization: ``"automatic"`` (default) or ``"chunked"``: see :class:`LightningMLP`.
            Both make the same updates.

    Returns:
        A :class:`TrainResult`; ``result.predictor`` is the best epoch's
        :class:`~qgtools.model.Predictor`.
    """
    if optimization not in OPTIMIZATIONS:
        raise ValueError(f"optimization={optimization!r}: use one of {OPTIMIZATIONS}.")
    if max_epochs is not None:
        hparams = hparams.replace(max_epochs=max_epochs)
    chunked = optimization == "chunked"
    train, val, _ = split_data(data, split_sizes, split_seed)
    preprocessor = Preprocessor(hparams.preprocessing).fit(train.X)
    with _quiet_lightning(), torch_threads(num_threads):
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
        trainer = _trainer(hparams.max_epochs, accelerator, progress, callbacks)
        start = time.perf_counter()
        trainer.fit(module, datamodule=datamodule)
        wall_time = time.perf_counter() - start
    return _result(module, n_params, wall_time, preprocessor, split_seed, split_sizes, data)


def _trainer(
    max_epochs: int, accelerator: str, progress: bool, callbacks: Sequence[Callback]
) -> Trainer:
    """Lightning's trainer as :func:`fit` uses it: one device, no logger or checkpoints."""
    return Trainer(
        max_epochs=max_epochs,
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress,
        num_sanity_val_steps=0,
        callbacks=list(callbacks),
    )


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
