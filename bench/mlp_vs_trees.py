"""The CPU-sized MLP against the boosted-tree baseline, on the same validation split.

Usage: python bench/mlp_vs_trees.py [--data sample] [--epochs 20] [--seeds 3] [--threads 2]

Trains ``model.CPU_HPARAMS`` (3 x 64) for the given epochs with several training seeds (one
fixed split seed) and the boosted trees of ``qgtools.baselines``; prints each validation
rejection with its 68% bootstrap interval and the ratio of the MLP's mean to the trees'.
Prints measured figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from qgtools import baselines, data, metrics, model, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="sample")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    jets = data.load(source=args.data)
    print(f"data: {jets.source}; split seed 0; {args.epochs} epochs; {args.threads} threads")
    print(f"MLP: {model.CPU_HPARAMS}")
    start = time.perf_counter()
    (trees,) = baselines.run_baselines(jets, include=("trees",))
    _, low, high = metrics.bootstrap_interval(
        metrics.background_rejection, trees.labels, trees.scores, n=500
    )
    print(
        f"boosted trees: val rejection {trees.rejection:.1f} [{low:.1f}, {high:.1f}], "
        f"AUC {trees.auc:.4f} ({time.perf_counter() - start:.0f} s)"
    )
    values = []
    for seed in range(args.seeds):
        result = train.fit(
            model.CPU_HPARAMS.replace(seed=seed),
            jets,
            max_epochs=args.epochs,
            num_threads=args.threads,
        )
        scores, y = train.evaluate(result.predictor, jets, "val")
        estimate, low, high = metrics.bootstrap_interval(
            metrics.background_rejection, y, scores, n=500
        )
        values.append(estimate)
        print(
            f"MLP seed {seed}: val rejection {estimate:.1f} [{low:.1f}, {high:.1f}] "
            f"(best epoch {result.best_epoch + 1}), "
            f"AUC {metrics.roc_auc(y, scores):.4f}, {result.wall_time_s:.0f} s"
        )
    mean = float(np.mean(values))
    print(
        f"MLP mean over {args.seeds} seeds: {mean:.1f} ± "
        f"{np.std(values, ddof=1) if len(values) > 1 else 0:.1f}; "
        f"MLP / trees = {mean / trees.rejection:.2f}"
    )


if __name__ == "__main__":
    main()
