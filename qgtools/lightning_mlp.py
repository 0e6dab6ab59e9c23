"""The Lightning side of :func:`qgtools.train.fit`: the data module, the benchmark MLP as a
``LightningModule`` and the trainer ``fit`` runs it with (notebook 02).

Only ``fit`` imports this module, when it trains, so that ``qgtools.train``, the populations and
the search's command line start without importing Lightning.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext

import numpy as np
import torch
from lightning.pytorch import Callback, LightningDataModule, LightningModule, Trainer
from lightning.pytorch.profilers import PassThroughProfiler
from torch import nn

from qgtools import metrics
from qgtools.batches import TensorBatches
from qgtools.data import FEATURE_NAMES, JetData
from qgtools.model import HParams, mlp_from_hparams
from qgtools.preprocessing import Preprocessor

__all__ = ["LightningMLP", "QGDataModule", "make_trainer", "quiet_lightning"]


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
        self._train_losses: list[float] = []
        self._epoch_start = self._train_seconds = math.nan
        self._val_logits: list[torch.Tensor] = []
        self._val_labels: list[torch.Tensor] = []

    def __setattr__(self, name: str, value: object) -> None:
        # Lightning sets _current_fx_name twice around every hook, about 45 times a step, and
        # nn.Module's __setattr__ checks each value against parameters, buffers and modules
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

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
            loss = self.loss(self.network(X).squeeze(-1), y)
            value = loss.item()
            self._train_losses.append(value)
            if not math.isfinite(value):
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
            self._train_losses.append(loss.item())
        if self._train_losses and not math.isfinite(self._train_losses[-1]):
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
        train_loss = math.fsum(losses) / len(losses) if losses else float("nan")
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


@contextmanager
def quiet_lightning() -> Iterator[None]:
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


class NoProfiler(PassThroughProfiler):
    """Lightning's default profiler (which records nothing) without its cost: the trainer
    enters ``profile`` around every hook, several times a step, and the default builds a
    generator-based context manager each time."""

    _NOTHING = nullcontext()

    def profile(self, action_name: str) -> AbstractContextManager:
        return self._NOTHING


def make_trainer(
    max_epochs: int, accelerator: str, progress: bool, callbacks: Sequence[Callback]
) -> Trainer:
    """Lightning's trainer as :func:`fit` uses it: one device, no logger, checkpoints or
    profiling."""
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
        profiler=NoProfiler(),
    )
