"""Where a population's training epoch spends its time: a profile by phase and by kind of operator.

Usage: python bench/population_profile.py [--widths 16,64,256] [--sizes 1,8,32] [--jets 10240]
           [--threads 1] [--compile] [--quick]

For each width and K, a population of K members of ``model.CPU_HPARAMS``' shape (3 hidden layers,
LayerNorm and BatchNorm, Tanh, batch 256, log+standardize, dropout 0; the members differ in their
seeds) trains one warm-up epoch, then one timed epoch without the profiler (the ``wall`` column:
seconds per member and epoch, scaled to 80,000 jets), then one epoch and its validation under
``torch.profiler`` (CPU activities, one thread by default). Synthetic 45-feature jets, as
``bench/training_speed.py`` uses; ``--jets`` training jets per epoch, 2,000 validation jets.

The profile's time is each operator's own time (``self_cpu_time_total``), attributed by phase
through ``record_function`` labels this script wraps around the package's functions (it changes
nothing in the package): ``batch`` (the batch's rows and the loss's checks), ``forward``
(``_Rounds.batch_losses``: the stacked forward pass and the loss), ``backward`` (autograd's
functions), ``optimizer`` (``StackedAdamW.step``), ``validation`` (``population._validate``: the
forward pass over the validation jets and each member's AUC and rejection). Within forward and
backward, by kind: matrix products, norms (LayerNorm, BatchNorm), activation, layout
(transposes, reshapes, copies) and other element-wise operators; with ``--compile``
(``compile=True``), ``fused`` is the compiled code's own kernels (the profiler sees the compiled
region, not the kernels inside it; its matrix products still show as matrix products).
``python`` is the wall time of the profiled region that no operator accounts for: Python, the
dispatcher and the profiler's own overhead (so it is an upper bound on Python's share). Shares
are of the profiled region's wall time (epoch + validation).

The last columns set the epoch against its arithmetic: about 6 x P x N x K floating-point
operations (forward and backward) for P weights per member on N jets, divided by a float32
matmul rate measured in the same run (a 1024 x 1024 product on the same threads): the time
the epoch could not go below, and the share of it the epoch reaches.

Prints measured figures; asserts nothing. About 2-3 minutes on one idle core (under 30 s with
``--quick``: widths 16 and 64, K 1 and 8, 2,560 jets).
"""

from __future__ import annotations

import argparse
import functools
import time
import warnings
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile, record_function
from training_speed import matmul_gflops  # bench/ is the script's folder, so on sys.path

from qgtools import population
from qgtools.model import CPU_HPARAMS, count_parameters, mlp_from_hparams

EPOCH_JETS = 80_000
VAL_JETS = 2_000
SHAPE = CPU_HPARAMS.replace(
    n_layers=3,
    layer_norm=True,
    batch_norm=True,
    hidden_activation="Tanh",
    batch_size=256,
    preprocessing="none",
    dropout=0.0,
)
PHASES = ("batch", "forward", "backward", "optimizer", "validation")
KINDS = {  # the first kind whose words appear in an operator's (or its backward node's) name
    "matmul": ("baddbmm", "bmm", "addmm", "aten::mm", "matmul", "linear"),
    "norms": ("layer_norm", "batch_norm", "layernorm", "batchnorm"),
    "activation": ("tanh",),
    "layout": ("transpose", "reshape", "view", "clone", "copy", "contiguous", "permute", "expand"),
    "fused": ("compiledfunction", "compiledfxgraph", "torch-compiled", "cpp_fused", "inductor"),
}


def labelled(function, label: str):
    """``function`` run inside ``record_function(label)``."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with record_function(label):
            return function(*args, **kwargs)

    return wrapper


def phase_of(event, parents: dict) -> str:
    """The phase of a profiler event: its nearest ``qg::`` label, autograd's functions being the
    backward phase (validation wins over the forward pass it calls)."""
    labels = []
    node = event
    while node is not None:
        if node.name.startswith("qg::"):
            labels.append(node.name[4:])
        elif node.name.startswith("autograd::engine::evaluate_function"):
            labels.append("backward")
        node = parents.get(id(node))
    for phase in ("validation", "optimizer", "backward", "forward"):
        if phase in labels:
            return phase
    return "batch"


def kind_of(event, parents: dict) -> str:
    """An operator's kind, from its own name or that of the backward function it runs in (a
    matrix product is one wherever it runs, a compiled backward pass included)."""
    if any(word in event.name.lower() for word in KINDS["matmul"]):
        return "matmul"
    names = [event.name.lower()]
    node = parents.get(id(event))
    while node is not None:
        if node.name.startswith("autograd::engine::evaluate_function"):
            names.insert(0, node.name.lower())
            break
        node = parents.get(id(node))
    for name in names:
        for kind, words in KINDS.items():
            if any(word in name for word in words):
                return kind
    return "element-wise"


def profile_case(width: int, k: int, n_train: int, rate: float, compile: bool = False) -> dict:
    """One width and K: the unprofiled epoch's wall time and the profile's shares."""
    hp = SHAPE.replace(n_channels=width)
    members = [hp.replace(seed=seed) for seed in range(k)]
    gen = torch.Generator().manual_seed(width * 1000 + k)
    X = torch.randn(n_train, 45, generator=gen)
    y = (torch.rand(n_train, generator=gen) < 0.5).float()
    X_val, y_val = torch.randn(VAL_JETS, 45, generator=gen), (torch.arange(VAL_JETS) % 2).float()
    compiled = population.compiled_steps() if compile else None
    run = population._Rounds(members, lambda tracker: None, None, torch.device("cpu"), compiled)
    run.train_epoch(X, y, hp.batch_size)  # warm-up (and compilation)
    start = time.perf_counter()
    run.train_epoch(X, y, hp.batch_size)
    wall = time.perf_counter() - start
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        epochs, pos_weight, losses = run.train_epoch(X, y, hp.batch_size)
        lr = torch.full((k,), hp.lr)
        population._validate(run.net, X_val, y_val, pos_weight, epochs, lr, losses, 1.0)
        profiled = time.perf_counter() - start
    events = prof.events()
    parents = {id(c): e for e in events for c in e.cpu_children}
    seconds: dict[str, float] = defaultdict(float)
    for event in events:
        own = event.self_cpu_time_total / 1e6
        if own <= 0 or event.name.startswith(("qg::", "autograd::engine")):
            continue
        phase = phase_of(event, parents)
        key = f"{phase}: {kind_of(event, parents)}" if phase in ("forward", "backward") else phase
        seconds[key] += own
    seconds["python"] = max(0.0, profiled - sum(seconds.values()))
    n_params = count_parameters(mlp_from_hparams(hp))
    bound = 6 * n_params * n_train * k / (rate * 1e9)
    return {
        "width": width,
        "k": k,
        "wall": wall / k * EPOCH_JETS / n_train,
        "profiled": profiled,
        "shares": {key: value / profiled for key, value in seconds.items()},
        "bound_share": bound / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", default="16,64,256")
    parser.add_argument("--sizes", default="1,8,32")
    parser.add_argument("--jets", type=int, default=10_240, help="training jets per epoch")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="profile compile=True's step")
    parser.add_argument("--quick", action="store_true", help="widths 16,64; K 1,8; 2,560 jets")
    args = parser.parse_args()
    if args.quick:
        args.widths, args.sizes, args.jets = "16,64", "1,8", 2_560
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*gradient layout contract")  # as fit_population
    population._Rounds.batch_losses = labelled(population._Rounds.batch_losses, "qg::forward")
    population.StackedAdamW.step = labelled(population.StackedAdamW.step, "qg::optimizer")
    population._validate = labelled(population._validate, "qg::validation")
    rate = matmul_gflops(1024)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s); float32 matmul {rate:.0f} GFLOP/s; "
        f"synthetic jets, {args.jets} training and {VAL_JETS} validation per epoch; 3 hidden "
        "layers, LayerNorm + BatchNorm, Tanh, batch 256, dropout 0; "
        f"{'compiled (compile=True)' if args.compile else 'eager'}"
    )
    cases = [
        profile_case(width, k, args.jets, rate, args.compile)
        for width in map(int, args.widths.split(","))
        for k in map(int, args.sizes.split(","))
    ]
    keys = sorted({key for case in cases for key in case["shares"]}, key=_order)
    print(
        "\nshare of the profiled epoch + validation (operators' own time; python: the rest); "
        "wall: seconds per member and 80k-jet epoch without the profiler; arithmetic: the "
        "6 x P x N x K bound at the matmul rate, as a share of that wall time"
    )
    print("| width | K | wall s | " + " | ".join(keys) + " | arithmetic |")
    print("|---|---|---|" + "---|" * len(keys) + "---|")
    for case in cases:
        cells = " | ".join(f"{100 * case['shares'].get(key, 0.0):.0f}%" for key in keys)
        print(
            f"| {case['width']} | {case['k']} | {case['wall']:.3f} | {cells} "
            f"| {100 * case['bound_share']:.0f}% |",
            flush=True,
        )


def _order(key: str) -> tuple[int, str]:
    phase = key.split(":")[0]
    return (PHASES.index(phase) if phase in PHASES else len(PHASES), key)


if __name__ == "__main__":
    main()
