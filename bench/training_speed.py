"""Training speed: reference-style Lightning vs a plain loop vs ``fit``; chunked vs automatic.

Usage: python bench/training_speed.py [--only table|lightning] [--threads 2] [--repeats 5] [--quick]

Two tables, both in seconds per epoch of 80k jets on synthetic 45-feature tensors; ``--only``
runs one of them (default: both).

``table``: each method trains the same model for a fixed number of optimizer steps, after a
warm-up, and the time is scaled to one epoch of 80k jets: the reference code's structure
(Lightning over TensorDataset + random_split + DataLoader), a plain PyTorch loop, and
``qgtools.train.fit`` (its default, automatic optimisation). Also prints the achieved GFLOP/s
(6 x parameters x jets per second) against a large float32 matmul measured in the same run.
Uses ``--threads`` torch threads.

``lightning``: what manual chunked optimisation buys over Lightning's automatic optimisation
with the same in-memory batches and the same updates: ``fit(..., optimization="chunked")``
vs ``fit(..., optimization="automatic")`` for 3 x 64 at batch 256 and 1024 on one thread and
6 x 1024 at batch 100 and 1024 on two threads. Each run trains a warm-up epoch and then 1-8
timed epochs (the ``epochs`` column; enough for about 2 s); the training part of each timed
epoch (epoch start to the end of its last training step, no validation) is summed and scaled
by jets to one epoch of 80k. Each case is measured ``--repeats`` times (once with ``--quick``), the
two methods alternating and the order flipped each repeat. The table shows the medians,
their ratio automatic / chunked and the range of the per-repeat ratios, with the load average
at start and end; a last line says whether automatic is within 1.2x of chunked in every case
(the rule for switching to it) and what that decides.

Prints measured figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
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
MODELS = {
    "small 3x64": dict(n_layers=3, n_channels=64),
    "reference 6x1024": dict(n_layers=6, n_channels=1024),
}
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
        xb, yb = X[i * bs : (i + 1) * bs], y[i * bs : (i + 1) * bs]
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
    """Wall time from the warm-up's end (or the epoch start) to the last training step's end.

    Both ends are reset every epoch, so after a run they belong to its last epoch.
    """

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end = warmup, 0.0, 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.end = time.perf_counter()
        if batch_idx == self.warmup - 1:
            self.start = self.end


def _trainer(**kwargs) -> Trainer:
    return Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
        **kwargs,
    )


def reference_style(hp: HParams, X: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Seconds per step of Lightning over TensorDataset + random_split + DataLoader."""
    torch.manual_seed(0)
    train, _ = random_split(TensorDataset(X, y), [0.9, 0.1])
    timer = _StepTimer(warmup=3)
    _trainer(limit_train_batches=steps + 3, callbacks=[timer]).fit(
        _ReferenceModule(hp), DataLoader(train, batch_size=hp.batch_size, shuffle=True)
    )
    return (timer.end - timer.start) / steps


def qgtools_fit(hp: HParams, X: np.ndarray, y: np.ndarray, steps: int) -> float:
    """Seconds per optimizer step inside ``qgtools.train.fit`` (second training epoch only)."""
    n_train = steps * hp.batch_size
    n_jets = int(n_train / 0.8) + 10
    data = JetData(X[:n_jets], y[:n_jets], origin="synthetic")
    timer = _StepTimer(warmup=0)
    fit(hp, data, max_epochs=2, callbacks=[timer], progress=False)  # the second epoch is timed
    n_steps = -(-round(0.8 * len(data)) // hp.batch_size)
    return (timer.end - timer.start) / n_steps


# (model, architecture, batch, torch threads, training jets, timed epochs) for the chunked vs
# automatic table: enough that each timed measurement lasts about 2 s or more on an idle core
LIGHTNING_CASES = (
    ("small 3x64", MODELS["small 3x64"], 256, 1, 40_960, 6),
    ("small 3x64", MODELS["small 3x64"], 1024, 1, 40_960, 8),
    ("reference 6x1024", MODELS["reference 6x1024"], 100, 2, 8_000, 1),
    ("reference 6x1024", MODELS["reference 6x1024"], 1024, 2, 16_384, 1),
)
SWITCH_WITHIN = 1.2  # switch to automatic optimisation if within this factor in every case


def synthetic_jets(n: int = EPOCH_JETS) -> tuple[np.ndarray, np.ndarray]:
    """Lognormal 45-feature taus and random labels (speed does not depend on the physics)."""
    rng = np.random.default_rng(0)
    X = rng.lognormal(-3, 1, size=(n, 45)).astype(np.float32)
    y = (rng.random(n) < 0.5).astype(np.int64)
    return X, y


def table(threads: int, quick: bool) -> None:
    """The first table: reference style vs plain loop vs ``fit``, on ``threads`` threads."""
    torch.set_num_threads(threads)
    X_np, y_np = synthetic_jets()
    X, y = torch.from_numpy(X_np), torch.from_numpy(y_np).float()
    limit = matmul_gflops()
    print(
        f"torch {torch.__version__}, {threads} threads; float32 matmul 2048^3: {limit:.0f} GFLOP/s"
    )
    print(
        f"{'model':<17} {'batch':>5} {'reference s/ep':>14} {'plain s/ep':>10} {'fit s/ep':>9} "
        f"{'ref/plain':>9} {'fit/plain':>9} {'fit GFLOP/s':>11} {'% matmul':>8}"
    )
    for name, arch in MODELS.items():
        for batch in BATCHES:
            hp = HParams(**arch, batch_size=batch, dropout=0.2)
            per_step = 0.04 * batch / 100 if "reference" in name else 0.002
            steps = max(8, int((0.6 if quick else 2.5) / per_step))
            steps = min(steps, EPOCH_JETS // batch - 10)
            per_epoch = EPOCH_JETS / batch
            ref = reference_style(hp, X, y, steps) * per_epoch
            plain = plain_loop(hp, X, y, steps) * per_epoch
            ours = qgtools_fit(hp, X_np, y_np, steps) * per_epoch
            gflops = 6 * count_parameters(mlp_from_hparams(hp)) * EPOCH_JETS / ours / 1e9
            print(
                f"{name:<17} {batch:>5} {ref:>14.3f} {plain:>10.3f} {ours:>9.3f} "
                f"{ref / plain:>9.2f} {ours / plain:>9.2f} {gflops:>11.1f} "
                f"{100 * gflops / limit:>7.0f}%",
                flush=True,
            )


class _EpochTimer(Callback):
    """Training time (epoch start to the end of its last training step) of every epoch."""

    def __init__(self) -> None:
        self.start, self.end, self.seconds = 0.0, 0.0, []

    def on_train_epoch_start(self, trainer, pl_module):
        self.start = self.end = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.end = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.seconds.append(self.end - self.start)


def fit_epoch_seconds(
    hp: HParams, data: JetData, n_train: int, threads: int, timed_epochs: int, optimization: str
) -> float:
    """Seconds per 80k-jet training epoch of ``fit``, scaled by jets from ``n_train``.

    Trains ``1 + timed_epochs`` epochs and times the training part of all but the first: from
    each epoch's start to the end of its last training step (a 4096-jet chunk with
    ``"chunked"``, one mini-batch with ``"automatic"``), so validation is not included.
    """
    timer = _EpochTimer()
    result = fit(
        hp,
        data,
        max_epochs=1 + timed_epochs,
        callbacks=[timer],
        progress=False,
        num_threads=threads,
        split_sizes=(n_train, len(data) - n_train - 1, 1),
        optimization=optimization,
    )
    if result.status != "ok" or len(timer.seconds) != 1 + timed_epochs:
        print(f"  note: {optimization} run {result.status} after {len(timer.seconds)} epochs")
        return float("nan")
    return sum(timer.seconds[1:]) * EPOCH_JETS / (n_train * timed_epochs)


def chunked_vs_automatic(quick: bool, repeats: int) -> None:
    """The second table: ``fit`` with chunked vs automatic optimisation, and the decision rule."""
    repeats = 1 if quick else repeats
    X_np, y_np = synthetic_jets()
    n_val = 2_000 if quick else 5_000
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"torch {torch.__version__}; fit(optimization=...) seconds per 80k-jet training epoch, "
        f"median of {repeats}; load average at start {load}"
    )
    print(
        f"{'model':<17} {'batch':>5} {'threads':>7} {'train jets':>10} {'epochs':>6} "
        f"{'chunked s/ep':>12} {'automatic s/ep':>14} {'auto/chunked':>12} "
        f"{'per-repeat ratios':>17}"
    )
    ratios = []
    for name, arch, batch, threads, n_train, timed_epochs in LIGHTNING_CASES:
        if quick:
            n_train, timed_epochs = n_train // 8, 1
        hp = HParams(**arch, batch_size=batch, dropout=0.2)
        n_jets = n_train + n_val + 1
        data = JetData(X_np[:n_jets], y_np[:n_jets], origin="synthetic")
        times: dict[str, list[float]] = {"chunked": [], "automatic": []}
        for repeat in range(repeats):
            order = ("chunked", "automatic") if repeat % 2 == 0 else ("automatic", "chunked")
            for optimization in order:
                seconds = fit_epoch_seconds(hp, data, n_train, threads, timed_epochs, optimization)
                times[optimization].append(seconds)
        chunked = float(np.median(times["chunked"]))
        automatic = float(np.median(times["automatic"]))
        ratios.append(automatic / chunked)
        each = [a / c for a, c in zip(times["automatic"], times["chunked"], strict=True)]
        spread = f"{min(each):.2f}-{max(each):.2f}"
        print(
            f"{name:<17} {batch:>5} {threads:>7} {n_train:>10} {timed_epochs:>6} "
            f"{chunked:>12.3f} {automatic:>14.3f} {ratios[-1]:>12.2f} {spread:>17}",
            flush=True,
        )
    within = all(r <= SWITCH_WITHIN for r in ratios)  # a NaN ratio counts as not within
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at end {load}")
    print(
        f"automatic within {SWITCH_WITHIN}x of chunked in every case: {'yes' if within else 'no'} "
        f"(worst ratio {float(np.max(ratios)):.2f}) -> "
        f"{'switch to automatic optimisation' if within else 'keep the chunks'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only",
        choices=("table", "lightning"),
        help="run one part: 'table' (reference vs plain vs fit) or 'lightning' (chunked vs "
        "automatic); default both",
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="torch threads for 'table' (default 2)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer steps and jets (noisier), for a smoke run"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="repeats per case for 'lightning' (default 5)"
    )
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    if args.only in (None, "table"):
        table(args.threads, args.quick)
    if args.only is None:
        print()
    if args.only in (None, "lightning"):
        chunked_vs_automatic(args.quick, args.repeats)


if __name__ == "__main__":
    main()
