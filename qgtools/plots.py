"""Plots the notebooks share: learning curves and the HEP rejection curve."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from qgtools import metrics


def learning_curves(
    history: Sequence[dict], axes: Sequence[plt.Axes] | None = None, label: str = ""
) -> np.ndarray:
    """Loss (train and val) and validation rejection per epoch, side by side."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = [h["epoch"] + 1 for h in history]
    axes[0].plot(epochs, [h["train_loss"] for h in history], "--", label=f"train {label}".strip())
    axes[0].plot(epochs, [h["val_loss"] for h in history], label=f"val {label}".strip())
    axes[0].set(xlabel="epoch", ylabel="BCE loss")
    axes[0].legend()
    axes[1].plot(epochs, [h["val_rejection"] for h in history], marker="o", label=label or None)
    axes[1].set(xlabel="epoch", ylabel="gluon rejection at 50% quark eff. (val)")
    if label:
        axes[1].legend()
    return np.asarray(axes)


def rejection_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], ax: plt.Axes | None = None
) -> plt.Axes:
    """Gluon rejection against quark efficiency (log axis) for named (labels, scores) pairs."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.8))
    for name, (y_true, scores) in curves.items():
        efficiency, rejection = metrics.rejection_curve(y_true, scores)
        ax.plot(efficiency, rejection, label=name)
    ax.axvline(0.5, color="grey", lw=0.8, ls=":")
    ax.set(
        xlabel="quark efficiency (TPR)", ylabel="gluon rejection 1/FPR", yscale="log", xlim=(0, 1)
    )
    ax.legend(fontsize="small")
    return ax
