"""Is the offline sample faithful? Per-class medians, taus falling with N, zero taus, baselines.

Usage: python bench/sample_report.py [--data sample]

Prints measured figures for the chosen data (default: the shipped sample); asserts nothing.
"""

from __future__ import annotations

import argparse

import numpy as np

from qgtools import baselines, data, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="sample")
    args = parser.parse_args()
    jets = data.load(source=args.data)
    taus = data.reshape_taus(jets.X).astype(np.float64)
    print(f"data: {jets.source}; quark fraction {jets.y.mean():.3f}")
    print("median tau_N^(beta=1), quark / gluon:")
    for n in (1, 2, 3, 5, 10, 15):
        q, g = np.median(taus[jets.y == 1, n - 1, 1]), np.median(taus[jets.y == 0, n - 1, 1])
        print(f"  N={n:>2}: {q:.4f} / {g:.4f}")
    medians = np.median(taus, axis=0)
    print(f"median taus fall with N for every beta: {bool((np.diff(medians, axis=0) <= 0).all())}")
    print(
        "share of jets with tau_15 = 0 (15 or fewer constituents): "
        f"{(taus[:, 14, 1] == 0).mean():.2%}"
    )
    for result in baselines.run_baselines(jets):
        _, low, high = metrics.bootstrap_interval(
            metrics.background_rejection, result.labels, result.scores, n=500
        )
        print(
            f"{result.name:<40} val rejection {result.rejection:5.1f} [{low:.1f}, {high:.1f}], "
            f"AUC {result.auc:.3f}"
        )


if __name__ == "__main__":
    main()
