"""Seconds per epoch of 80k jets: reference-style Lightning vs a plain loop vs ``qgtools.train.fit``.

Usage: python bench/training_speed.py [--threads 2] [--quick]

Each method trains the same model on the same synthetic 80k x 45 tensors for a fixed number
of optimizer steps, after a warm-up, and the time is scaled to one epoch of 80k jets. Also
prints the achieved GFLOP/s (6 x parameters x jets per second) against a large float32
matmul measured in the same run. Prints measured figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset, random_split

from qgtools.data import JetData
from qgtools.model import HParams, count_parameters, mlp_from_hparams
from qgtools.train import fit

EPOCH_JETS = 80_000
MODELS = {"small 3x64": dict(n_layers=3, n_channels=64), "reference 6x1024": dict(n_layers=6, n_channels=1024)}
BATCHES = (100, 256, 1024)


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def plain_loop(hp: HParams, X: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Seconds per step of a plain PyTorch loop over pre-shuffled tensor slices."""
    torch.manual_seed(0)
    net = mlp_from_hparams(hp)
    opt = torch.optim.AdamW(net.parameters(), lr=hp.lr, amsgrad=True)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    order = torch.randperm(len(y))
    X, y = X[order], y[order]
    bs = hp.batch_size

    def step(i: int) -> None:
        xb, yb = X[i * bs:(i + 1) * bs], y[i * bs:(i + 1) * bs]
        loss = loss_fn(net(xb).squeeze(-1), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(3):
        step(i)
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    return (time.perf_counter() - start) / steps


class _ReferenceModule(LightningModule):
    """The reference code's structure: automatic optimisation, one Lightning step per batch."""

    def __init__(self, hp: HParams) -> None:
        super().__init__()
        self.net, self.hp = mlp_from_hparams(hp), hp
        self.loss_fn = torch.nn.BCEWithLogitsLoss()

    def training_step(self, batch, batch_idx):
        xb, yb = batch
        return self.loss_fn(self.net(xb).squeeze(-1), yb)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hp.lr, amsgrad=True)


class _StepTimer(Callback):
    """Wall time from the end of the warm-up steps (or the epoch start) to the last training batch's end."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end = warmup, 0.0, 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.end = time.perf_counter()
        if batch_idx == self.warmup - 1:
            self.start = self.end


def _trainer(**kwargs) -> Trainer:
    return Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_model_summary=False,
                   enable_progress_bar=False, num_sanity_val_steps=0, accelerator="cpu", **kwargs)


def reference_style(hp: HParams, X: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Seconds per step of Lightning over TensorDataset + random_split + DataLoader."""
    torch.manual_seed(0)
    train, _ = random_split(TensorDataset(X, y), [0.9, 0.1])
    timer = _StepTimer(warmup=3)
    _trainer(limit_train_batches=steps + 3, callbacks=[timer]).fit(
        _ReferenceModule(hp), DataLoader(train, batch_size=hp.batch_size, shuffle=True))
    return (timer.end - timer.start) / steps


def qgtools_fit(hp: HParams, X: np.ndarray, y: np.ndarray, steps: int) -> float:
    """Seconds per optimizer step inside ``qgtools.train.fit`` (training epoch only, no validation)."""
    n_train = steps * hp.batch_size
    data = JetData(X[: int(n_train / 0.8) + 10], y[: int(n_train / 0.8) + 10], source="synthetic")
    timer = _StepTimer(warmup=0)
    fit(hp, data, max_epochs=2, callbacks=[timer], progress=False)  # the second epoch is timed
    n_steps = -(-round(0.8 * len(data)) // hp.batch_size)
    return (timer.end - timer.start) / n_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="fewer steps (noisier), for a smoke run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(0)
    X_np = rng.lognormal(-3, 1, size=(EPOCH_JETS, 45)).astype(np.float32)
    y_np = (rng.random(EPOCH_JETS) < 0.5).astype(np.int64)
    X, y = torch.from_numpy(X_np), torch.from_numpy(y_np).float()
    limit = matmul_gflops()
    print(f"torch {torch.__version__}, {args.threads} threads; float32 matmul 2048^3: {limit:.0f} GFLOP/s")
    print(f"{'model':<17} {'batch':>5} {'reference s/ep':>14} {'plain s/ep':>10} {'fit s/ep':>9} "
          f"{'ref/plain':>9} {'fit/plain':>9} {'fit GFLOP/s':>11} {'% matmul':>8}")
    for name, arch in MODELS.items():
        for batch in BATCHES:
            hp = HParams(**arch, batch_size=batch, dropout=0.2)
            per_step = 0.04 * batch / 100 if "reference" in name else 0.002
            steps = max(8, int((0.6 if args.quick else 2.5) / per_step))
            steps = min(steps, EPOCH_JETS // batch - 10)
            per_epoch = EPOCH_JETS / batch
            ref = reference_style(hp, X, y, steps) * per_epoch
            plain = plain_loop(hp, X, y, steps) * per_epoch
            ours = qgtools_fit(hp, X_np, y_np, steps) * per_epoch
            gflops = 6 * count_parameters(mlp_from_hparams(hp)) * EPOCH_JETS / ours / 1e9
            print(f"{name:<17} {batch:>5} {ref:>14.3f} {plain:>10.3f} {ours:>9.3f} {ref / plain:>9.2f} "
                  f"{ours / plain:>9.2f} {gflops:>11.1f} {100 * gflops / limit:>7.0f}%", flush=True)


if __name__ == "__main__":
    main()
