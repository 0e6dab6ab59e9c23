"""How fast does each search find a good model? Random, TPE, TPE + median pruning, TPE + Hyperband.

Usage: python bench/hpo_efficiency.py [--data sample] [--budget 180] [--repeats 3]
           [--max-epochs 10] [--reference-epochs 50]
           [--methods random,tpe,tpe-median,tpe-hyperband]

Each method searches the ``cpu`` space with one worker (one torch thread) for ``--budget``
seconds of wall clock, ``--repeats`` times with different sampler seeds, all on the same
split. The reference configuration (6 x 1024) is trained once on the same split for
comparison. Prints the best validation rejection reached by each time (mean and spread over
repeats) and the time each method needs to reach the reference configuration's validation
rejection. Run it on an otherwise idle machine (it takes about methods x repeats x budget,
plus the reference training). Prints measured figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import optuna
import torch

from qgtools import data, model, search, train

METHODS = {
    "random": ("random", "none"),
    "tpe": ("tpe", "none"),
    "tpe-median": ("tpe", "median"),
    "tpe-hyperband": ("tpe", "hyperband"),
}


def one_run(
    jets: data.JetData, method: str, seed: int, budget: float, max_epochs: int
) -> list[tuple[float, float]]:
    """(seconds since start, best validation rejection so far) after each finished trial."""
    sampler_name, pruner_name = METHODS[method]
    study = optuna.create_study(
        study_name=f"{method}-seed-{seed}",  # Hyperband assigns brackets by a hash of the name
        direction="maximize",
        sampler=search.make_sampler(sampler_name, seed),
        pruner=search.make_pruner(pruner_name),
    )
    trace: list[tuple[float, float]] = []
    start = time.perf_counter()

    def record(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        complete = [t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if complete:
            trace.append((time.perf_counter() - start, max(complete)))

    study.optimize(
        search.make_objective(jets, "cpu", max_epochs, num_threads=1),
        timeout=budget,
        callbacks=[record],
    )
    n = {s.name: sum(t.state == s for t in study.trials) for s in optuna.trial.TrialState}
    print(
        f"  {method:<14} seed {seed}: {len(study.trials)} trials ({n['COMPLETE']} complete, "
        f"{n['PRUNED']} pruned, {n['FAIL']} failed), "
        f"best {trace[-1][1] if trace else float('nan'):.1f}",
        flush=True,
    )
    return trace


def best_at(trace: list[tuple[float, float]], t: float) -> float:
    values = [value for when, value in trace if when <= t]
    return values[-1] if values else float("nan")


def time_to_reach(trace: list[tuple[float, float]], target: float) -> float:
    return next((when for when, value in trace if value >= target), float("inf"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="sample")
    parser.add_argument("--budget", type=float, default=180.0, help="seconds of wall clock per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--reference-epochs", type=int, default=50)
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    jets = data.load(source=args.data)
    methods = args.methods.split(",")
    print(
        f"data: {jets.source}; split seed {search.SPLIT_SEED}; space cpu; "
        f"{args.max_epochs} epochs per trial; "
        f"budget {args.budget:.0f} s x {args.repeats} repeats; torch threads 1 per search"
    )

    torch.set_num_threads(2)
    reference = train.fit(model.HParams(), jets, max_epochs=args.reference_epochs, progress=False)
    print(
        f"reference 6 x 1024, {args.reference_epochs} epochs: "
        f"best val rejection {reference.best_val_rejection:.1f} "
        f"({reference.wall_time_s / 60:.1f} min, 2 threads)",
        flush=True,
    )
    torch.set_num_threads(1)

    traces = {
        method: [
            one_run(jets, method, seed, args.budget, args.max_epochs)
            for seed in range(args.repeats)
        ]
        for method in methods
    }
    checkpoints = [args.budget * f for f in (1 / 6, 1 / 3, 2 / 3, 1)]
    print(
        f"\nbest validation rejection by wall-clock time (mean ± std over {args.repeats} repeats); "
        f"time to reach the reference's {reference.best_val_rejection:.1f}"
    )
    header = " | ".join(f"{t:>5.0f} s" for t in checkpoints)
    print(f"| method | {header} | time to reference |")
    print("|---|" + "---|" * len(checkpoints) + "---|")
    for method, runs in traces.items():
        cells = []
        for t in checkpoints:
            values = np.array([best_at(trace, t) for trace in runs])
            cells.append(
                f"{np.nanmean(values):.1f} ± {np.nanstd(values):.1f}"
                if np.isfinite(values).any()
                else "-"
            )
        reach = np.array([time_to_reach(trace, reference.best_val_rejection) for trace in runs])
        hit = np.isfinite(reach)
        reach_text = (
            f"{reach[hit].mean():.0f} s ({hit.sum()}/{len(runs)} runs)"
            if hit.any()
            else f"not reached (0/{len(runs)})"
        )
        print(f"| {method} | " + " | ".join(cells) + f" | {reach_text} |")


if __name__ == "__main__":
    main()
