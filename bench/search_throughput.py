"""Trials per wall-clock minute of the command-line search, with and without populations.

Usage: python bench/search_throughput.py [--seconds 150] [--population 16] [--workers 2]
           [--jets 20000] [--max-epochs 5] [--sampler tpe] [--pruner median]

Runs ``python -m qgtools.search run --space cpu --data sample --jets 20000 --max-epochs 5
--workers 2 --trials 100000`` on a fresh journal, stops it with Ctrl-C (SIGINT) after
``--seconds``, and does it again with ``--population K``; same sampler, pruner and settings.
Counts COMPLETE and PRUNED trials separately, the pruned share, the mean ``n_layers``,
``n_channels`` and ``batch_size`` of the finished trials and how many shapes were drawn, and
checks what makes the counts comparable: every finished trial reported its validation
rejection at every epoch it ran, from epoch 0, and every COMPLETE trial ran all its epochs.
Run it on an otherwise idle machine. Prints measured figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from qgtools import search

SHAPE = ("n_layers", "n_channels", "layer_norm", "batch_norm", "hidden_activation", "batch_size")


def run(args: argparse.Namespace, population: int, journal: Path) -> optuna.Study:
    """One search of ``args.seconds`` stopped by SIGINT; the study it left."""
    command = [
        sys.executable, "-m", "qgtools.search", "run", "--study", "throughput",
        "--storage", str(journal), "--space", "cpu", "--data", "sample",
        "--jets", str(args.jets), "--max-epochs", str(args.max_epochs),
        "--workers", str(args.workers), "--trials", "100000",
        "--sampler", args.sampler, "--pruner", args.pruner,
    ]  # fmt: skip
    if population > 1:
        command += ["--population", str(population)]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    time.sleep(args.seconds)
    process.send_signal(signal.SIGINT)  # Ctrl-C: the run stops its workers and says so
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(os.getpgid(process.pid), signal.SIGKILL)
    return optuna.load_study(study_name="throughput", storage=search.open_storage(str(journal)))


def summary(study: optuna.Study, max_epochs: int) -> dict:
    """Counts, shares, mean shapes and the comparability checks of one run."""
    trials = study.get_trials(deepcopy=False)
    count = {s: sum(t.state == s for t in trials) for s in TrialState}
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    hp = [search.hparams_of(t) for t in finished]
    steps_ok = all(sorted(t.intermediate_values) == list(range(len(t.intermediate_values)))
                   for t in finished)  # fmt: skip
    complete_ok = all(
        len(t.intermediate_values) == max_epochs for t in trials if t.state == TrialState.COMPLETE
    )
    done = count[TrialState.COMPLETE] + count[TrialState.PRUNED]
    return {
        "complete": count[TrialState.COMPLETE],
        "pruned": count[TrialState.PRUNED],
        "failed": count[TrialState.FAIL],
        "finished": done,
        "pruned_share": count[TrialState.PRUNED] / done if done else float("nan"),
        "n_layers": np.mean([h.n_layers for h in hp]),
        "n_channels": np.mean([h.n_channels for h in hp]),
        "batch_size": np.mean([h.batch_size for h in hp]),
        "shapes": len({tuple(getattr(h, f) for f in SHAPE) for h in hp}),
        "best": max((t.value for t in trials if t.state == TrialState.COMPLETE), default=np.nan),
        "checks": steps_ok and complete_ok,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--jets", type=int, default=20_000)
    parser.add_argument("--max-epochs", type=int, default=5)
    parser.add_argument("--sampler", default="tpe")
    parser.add_argument("--pruner", default="median")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(
        f"data: offline sample (our regeneration), first {args.jets} jets; space cpu; "
        f"{args.max_epochs} epochs; {args.workers} workers; {args.sampler} + {args.pruner}; "
        f"stopped after {args.seconds:.0f} s",
        flush=True,
    )
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for population in (1, args.population):
            name = "one at a time" if population == 1 else f"population {population}"
            study = run(args, population, Path(tmp) / f"p{population}.journal")
            rows[name] = summary(study, args.max_epochs)
            print(f"  {name}: {rows[name]}", flush=True)
    print(
        "\n| run | COMPLETE | PRUNED | pruned share | FAIL (in flight at Ctrl-C) | "
        "mean n_layers | mean n_channels | mean batch | shapes drawn | best val rejection | "
        "checks |"
    )
    print("|---|" + "---|" * 10)
    for name, r in rows.items():
        print(
            f"| {name} | {r['complete']} | {r['pruned']} | {r['pruned_share']:.0%} | "
            f"{r['failed']} | {r['n_layers']:.2f} | {r['n_channels']:.0f} | "
            f"{r['batch_size']:.0f} | {r['shapes']} | {r['best']:.1f} | "
            f"{'ok' if r['checks'] else 'FAILED'} |"
        )
    plain, pop = rows.values()
    print(
        f"\nfinished trials: x{pop['finished'] / plain['finished']:.1f}; "
        f"COMPLETE: x{pop['complete'] / max(plain['complete'], 1):.1f}; "
        f"pruned shares differ by {abs(pop['pruned_share'] - plain['pruned_share']) * 100:.0f} "
        "points"
    )


if __name__ == "__main__":
    main()
