"""Training speed: Lightning vs plain loop vs ``fit``; chunked vs automatic; K networks at once.

Usage: python bench/training_speed.py [--only table|lightning|population] [--threads N]
           [--repeats 5] [--quick] [--accelerator cpu|cuda] [--widths 16,64,256]
           [--sizes 1,8,32,128]

Three tables, all in seconds per epoch of 80k jets on synthetic 45-feature tensors; ``--only``
runs one of them (default: all three).

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

``population``: what training K networks of one shape as one stacked network
(``qgtools.population.fit_population``) buys per network, for K = 1, 8, 32, 128 at widths 16,
64 and 256 (``model.CPU_HPARAMS``: 3 hidden layers, LayerNorm and BatchNorm, Tanh, batch 256,
log+standardize; dropout 0). A first table gives, per width, ``fit``'s and the plain loop's
seconds per 80k-jet epoch (the training part of the epoch; medians of ``--repeats`` alternating
measurements on 40,960 jets) and fit / plain with the range of the repeats. The second gives,
per width and K, seconds per member and epoch of the population, eager and with
``compile=True`` (the training time of one epoch of the stacked network divided by K, scaled by
jets to 80k; validation excluded), the compile time (the first epoch's extra time; compiled code
is kept per process, so the first K of a width pays for it, and K = 1 compiles on its own), the
speed-up per member against the plain loop and against ``fit``, and the share of the epoch that
the population's own batched matrix products take when timed alone (its forward ``baddbmm``
and the two backward products, at its K, batch and layer shapes). Each population run trains a
warm-up epoch and one timed epoch, on 2,000 validation jets (1,000 with ``--quick``); the
training jets are chosen per case so that the timed epoch lasts about 4 s (0.3 s with
``--quick``): a one-epoch probe on 10 batches measures the rate, and the count is rounded to
whole batches, between 10 batches and 40,960 jets; the jets of each case are printed under the
table. torch.compile's cache starts empty (a temporary ``TORCHINDUCTOR_CACHE_DIR``), as on a
fresh machine. Uses ``--threads`` torch threads, default 1 for this table (a search runs one
thread per worker). ``--accelerator cuda`` runs this table on a GPU (``bench/gpu_check.sh``);
``--widths`` and ``--sizes`` choose the cases. ``--quick``: the first two widths and sizes,
one repeat. About 10 minutes on one idle core (about 1 minute with ``--quick``).

Prints measured figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset, random_split

from qgtools.data import JetData
from qgtools.model import CPU_HPARAMS, HParams, count_parameters, mlp_from_hparams
from qgtools.population import fit_population
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
    """Seconds per step of a plain PyTorch loop over pre-shuffled tensor slices: ``fit``'s
    model, loss (BCE with logits and ``pos_weight``) and optimizer, without Lightning."""
    torch.manual_seed(0)
    device = DEVICE[0]
    net = mlp_from_hparams(hp).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=hp.lr, amsgrad=True)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([hp.pos_weight], device=device))
    order = torch.randperm(len(y))
    X, y = X[order].to(device), y[order].to(device)
    bs = hp.batch_size

    def step(i: int) -> None:
        xb, yb = X[i * bs : (i + 1) * bs], y[i * bs : (i + 1) * bs]
        loss = loss_fn(net(xb).squeeze(-1), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(3):
        step(i)
    synchronize()
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    synchronize()
    return (time.perf_counter() - start) / steps


DEVICE = [torch.device("cpu")]  # the population table's device (--accelerator)


def synchronize() -> None:
    """Wait for the GPU's queued work, so that a timer reads when it has run."""
    if DEVICE[0].type == "cuda":
        torch.cuda.synchronize()


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


POPULATION_WIDTHS = (16, 64, 256)
POPULATION_SIZES = (1, 8, 32, 128)
POPULATION_HPARAMS = CPU_HPARAMS.replace(dropout=0.0)  # 3 layers, LayerNorm + BatchNorm, batch 256
SINGLE_JETS = 40_960  # training jets per timed epoch of fit and the plain loop (160 steps)
MAX_POPULATION_JETS = 40_960
MIN_POPULATION_BATCHES = 10


def _epoch_train_s(result, epoch: int) -> float:
    """Training seconds (no validation) of ``epoch`` in a TrainResult's history; NaN if the run
    did not get there. A population member's is the round's time divided by the members."""
    if result.status != "ok" or len(result.history) <= epoch:
        return float("nan")
    return float(result.history[epoch]["train_s"])


def population_epoch(
    hp: HParams,
    k: int,
    X: np.ndarray,
    y: np.ndarray,
    n_train: int,
    n_val: int,
    threads: int,
    epochs: int = 2,
    compile: bool = False,
) -> tuple[float, float]:
    """Training seconds of the first and the last of ``epochs`` epochs of a population of ``k``
    (the whole stacked network, not per member), on ``n_train`` training jets."""
    n_jets = n_train + n_val + 1
    data = JetData(X[:n_jets], y[:n_jets], origin="synthetic")
    members = [hp.replace(seed=seed) for seed in range(k)]
    results = fit_population(
        members,
        data,
        max_epochs=epochs,
        split_sizes=(n_train, n_val, 1),
        num_threads=threads,
        accelerator=DEVICE[0].type,
        compile=compile,
    )
    # each member's train_s is the round's training time divided by the members in it
    return k * _epoch_train_s(results[0], 0), k * _epoch_train_s(results[0], epochs - 1)


def fit_epoch(
    hp: HParams, X: np.ndarray, y: np.ndarray, n_train: int, n_val: int, threads: int
) -> float:
    """Training seconds of ``fit``'s second epoch (the first is a warm-up) on ``n_train`` jets."""
    n_jets = n_train + n_val + 1
    data = JetData(X[:n_jets], y[:n_jets], origin="synthetic")
    result = fit(
        hp,
        data,
        max_epochs=2,
        progress=False,
        num_threads=threads,
        split_sizes=(n_train, n_val, 1),
        accelerator=DEVICE[0].type,
    )
    return _epoch_train_s(result, 1)


def fit_and_plain(
    hp: HParams, X_np: np.ndarray, y_np: np.ndarray, n_train: int, threads: int, repeats: int
) -> tuple[float, float, list[float]]:
    """Medians of ``fit``'s and the plain loop's seconds per 80k-jet epoch over ``repeats``
    alternating measurements (the order flipped each repeat), and each repeat's ratio."""
    X, y = torch.from_numpy(X_np), torch.from_numpy(y_np).float()
    steps = n_train // hp.batch_size
    fits, plains = [], []
    for repeat in range(repeats):
        for which in ("fit", "plain") if repeat % 2 == 0 else ("plain", "fit"):
            if which == "fit":
                fits.append(
                    fit_epoch(hp, X_np, y_np, n_train, 1_000, threads) * EPOCH_JETS / n_train
                )
            else:
                torch.set_num_threads(threads)
                plains.append(plain_loop(hp, X, y, steps) * EPOCH_JETS / hp.batch_size)
    ratios = [f / p for f, p in zip(fits, plains, strict=True)]
    return float(np.median(fits)), float(np.median(plains)), ratios


def batched_matmul_seconds(hp: HParams, k: int, repeats: int = 20) -> float:
    """Seconds per member and 80k-jet epoch of nothing but a population's matrix products, at
    its own shapes: for each layer of ``hp`` the forward ``baddbmm`` of K members on one batch
    and the backward pass's two (input and weight gradients), timed together."""
    widths = [hp.input_channels] + [hp.n_channels] * hp.n_layers + [1]
    batch = hp.batch_size
    layers = []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        shapes = [(k, batch, a), (k, b, a), (k, 1, b), (k, batch, b)]
        layers.append([torch.randn(*shape, device=DEVICE[0]) for shape in shapes])

    def products() -> None:
        for x, w, bias, grad in layers:
            torch.baddbmm(bias, x, w.transpose(1, 2))  # forward
            torch.bmm(grad, w)  # gradient of the input
            torch.bmm(grad.transpose(1, 2), x)  # gradient of the weight

    products()
    synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        products()
    synchronize()
    per_batch = (time.perf_counter() - start) / repeats
    return per_batch * EPOCH_JETS / batch / k


def population(
    threads: int,
    quick: bool,
    repeats: int,
    widths: tuple[int, ...] = POPULATION_WIDTHS,
    sizes: tuple[int, ...] = POPULATION_SIZES,
) -> None:
    """The third table: a population of K per member, eager and compiled, vs ``fit`` and the
    plain loop, with the share of its own batched-matmul time."""
    torch.set_num_threads(threads)
    X_np, y_np = synthetic_jets()
    widths, sizes = (widths[:2], sizes[:2]) if quick else (widths, sizes)
    target_s = 0.3 if quick else 4.0  # seconds of the timed population epoch
    single_jets = SINGLE_JETS // 8 if quick else SINGLE_JETS
    n_val = 1_000 if quick else 2_000
    batch = POPULATION_HPARAMS.batch_size
    print(
        f"torch {torch.__version__} on {DEVICE[0].type}"
        f"{' (' + torch.cuda.get_device_name() + ')' if DEVICE[0].type == 'cuda' else ''}, "
        f"{threads} thread(s); 3 hidden layers, LayerNorm + "
        f"BatchNorm, Tanh, batch {batch}, dropout 0; seconds per member and 80k-jet training "
        f"epoch (no validation); fit and plain loop: medians of {repeats} alternating repeats "
        f"on {single_jets} jets; compiled: torch.compile, cold cache; matmul share: the "
        "population's own batched products alone, over its epoch"
    )
    singles = {}
    for width in widths:
        hp = POPULATION_HPARAMS.replace(n_channels=width)
        singles[width] = fit_and_plain(hp, X_np, y_np, single_jets, threads, repeats)
    print("| width | fit s/epoch | plain loop s/epoch | fit / plain (median, range) |")
    print("|---|---|---|---|")
    for width, (ours, plain, ratios) in singles.items():
        print(
            f"| {width} | {ours:.3f} | {plain:.3f} | {np.median(ratios):.2f} "
            f"({min(ratios):.2f}-{max(ratios):.2f}) |"
        )
    print()
    print(
        "| width | K | eager s/member-epoch | compiled | compile s | plain / eager "
        "| fit / eager | plain / compiled | fit / compiled | matmul share eager | compiled |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    jets_used = []
    for width in widths:
        hp = POPULATION_HPARAMS.replace(n_channels=width)
        ours, plain, _ = singles[width]
        for k in sizes:
            torch.set_num_threads(threads)
            matmul = batched_matmul_seconds(hp, k)
            probe_jets = MIN_POPULATION_BATCHES * batch
            _, probe = population_epoch(hp, k, X_np, y_np, probe_jets, n_val, threads, epochs=1)
            wanted = target_s / probe * probe_jets if probe > 0 else 0  # NaN: the probe failed
            n_train = int(wanted) // batch * batch if np.isfinite(wanted) else 0
            n_train = min(MAX_POPULATION_JETS, max(probe_jets, n_train))
            jets_used.append(f"width {width} K {k}: {n_train}")
            per_jet = EPOCH_JETS / n_train / k
            _, eager = population_epoch(hp, k, X_np, y_np, n_train, n_val, threads)
            first, compiled = population_epoch(
                hp, k, X_np, y_np, n_train, n_val, threads, compile=True
            )
            eager, compiled = eager * per_jet, compiled * per_jet
            compile_s = first - compiled / per_jet
            print(
                f"| {width} | {k} | {eager:.4f} | {compiled:.4f} | {compile_s:.1f} "
                f"| {plain / eager:.1f}x | {ours / eager:.1f}x | {plain / compiled:.1f}x "
                f"| {ours / compiled:.1f}x | {matmul / eager:.0%} | {matmul / compiled:.0%} |",
                flush=True,
            )
    print(f"timed training jets per population epoch: {'; '.join(jets_used)}")
    print(
        "compile s: the first epoch's extra time with compile=True (compiled code is kept per "
        "process: the first K of a width pays for the width, K = 1 compiles on its own)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only",
        choices=("table", "lightning", "population"),
        help="run one part: 'table' (reference vs plain vs fit), 'lightning' (chunked vs "
        "automatic) or 'population' (K networks at once vs fit); default all three",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads for 'table' (default 2) and 'population' (default 1)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer steps and jets (noisier), for a smoke run"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="repeats per case for 'lightning', and of fit against the plain loop per width for "
        "'population' (default 5)",
    )
    parser.add_argument(
        "--accelerator",
        choices=("cpu", "cuda"),
        default="cpu",
        help="the device of the 'population' table (default cpu)",
    )
    parser.add_argument(
        "--widths",
        default=",".join(map(str, POPULATION_WIDTHS)),
        help="widths of the 'population' table, comma-separated (default 16,64,256)",
    )
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, POPULATION_SIZES)),
        help="population sizes K of the 'population' table (default 1,8,32,128)",
    )
    args = parser.parse_args()
    if "QG_BENCH_COLD_CACHE" not in os.environ:
        # compile times as on a fresh machine: torch.compile's on-disk cache starts empty. The
        # cache folder is fixed once something imports Lightning (this script does at the
        # top), so the script starts again with the variable set
        os.environ["QG_BENCH_COLD_CACHE"] = "1"
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="qg-inductor-")
        os.execv(sys.executable, [sys.executable, *sys.argv])
    DEVICE[0] = torch.device(args.accelerator)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    if args.only in (None, "table"):
        table(args.threads or 2, args.quick)
    if args.only is None:
        print()
    if args.only in (None, "lightning"):
        chunked_vs_automatic(args.quick, args.repeats)
    if args.only is None:
        print()
    if args.only in (None, "population"):
        population(
            args.threads or 1,
            args.quick,
            1 if args.quick else args.repeats,
            tuple(int(w) for w in args.widths.split(",")),
            tuple(int(k) for k in args.sizes.split(",")),
        )


if __name__ == "__main__":
    main()
