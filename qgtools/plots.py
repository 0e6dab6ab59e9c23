"""Plots the notebooks share, and the pictures that explain the search methods.

Axis labels for the features (01); learning curves and the HEP rejection curve (notebooks 02-03);
the Pareto front, the closing rows against their cost and what averaging members removes (07); a
population's members (08); TPE's good/bad split and its two densities, the median pruner's
decision, the successive-halving and Hyperband schedules, and a study's slice plot (05). Plain
arrays (or Optuna's trials, read through their attributes) in, matplotlib axes out; no Optuna
import here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm, Normalize

from qgtools import data, metrics

_TAU_NAME = re.compile(r"tau_(\d+)\^\((.+)\)")


def feature_label(name: str) -> str:
    r"""Matplotlib mathtext for a name of ``data.FEATURE_NAMES`` or a ratio of two:
    ``feature_label("tau_2^(1)/tau_1^(1)") == r"$\tau_{2}^{(1)}/\tau_{1}^{(1)}$"``. Notebook 01.
    """
    parts = name.split("/")
    if len(parts) > 2 or any(part not in data.FEATURE_NAMES for part in parts):
        raise ValueError(
            f"Unknown feature {name!r}: use a name of data.FEATURE_NAMES, such as 'tau_1^(0.5)', "
            "or a ratio of two, such as 'tau_2^(1)/tau_1^(1)'."
        )
    taus = [_TAU_NAME.fullmatch(part).groups() for part in parts]
    return "$" + "/".join(rf"\tau_{{{n}}}^{{({beta})}}" for n, beta in taus) + "$"


def learning_curves(
    history: Sequence[dict],
    axes: Sequence[plt.Axes] | None = None,
    label: str = "",
    max_epochs: int | None = None,
) -> np.ndarray:
    """Loss (train and val) and validation rejection per epoch, side by side, on integer epoch
    ticks; ``max_epochs`` fixes the epoch axis from the start (a live curve's first point is then
    a marker on the run's whole axis)."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    epochs = [h["epoch"] + 1 for h in history]
    axes[0].plot(epochs, [h["train_loss"] for h in history], "--.", label=f"train {label}".strip())
    axes[0].plot(epochs, [h["val_loss"] for h in history], ".-", label=f"val {label}".strip())
    axes[0].set(xlabel="epoch", ylabel="BCE loss", title="loss")
    axes[0].legend()
    axes[1].plot(epochs, [h["val_rejection"] for h in history], marker="o", label=label or None)
    axes[1].set(
        xlabel="epoch",
        ylabel="rejection (val)",
        title="gluon rejection at 50% quark efficiency",
    )
    if label:
        axes[1].legend()
    for ax in axes:
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, min_n_ticks=1))
        if max_epochs is not None:
            ax.set_xlim(0.5, max_epochs + 0.5)
    return np.asarray(axes)


def population_curves(
    histories: Sequence[Sequence[dict]],
    values: Sequence[float],
    name: str,
    key: str = "val_rejection",
    ax: plt.Axes | None = None,
    log: bool = True,
) -> plt.Axes:
    """One curve of ``key`` per epoch for each member of a population (notebook 08), coloured
    by the member's hyperparameter ``values`` (called ``name``; log colour scale by default)
    with a colour bar; a member that stopped early (pruned, diverged) ends its line early."""
    if len(histories) != len(values):
        raise ValueError(f"{len(histories)} histories but {len(values)} values: one per member.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    values = np.asarray(values, dtype=float)
    norm = LogNorm(values.min(), values.max()) if log else Normalize(values.min(), values.max())
    cmap = plt.get_cmap("viridis")
    for history, value in zip(histories, values, strict=True):
        epochs = [h["epoch"] + 1 for h in history]
        ax.plot(epochs, [h[key] for h in history], ".-", color=cmap(norm(value)), lw=1)
    ax.figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=name)
    ax.set(xlabel="epoch", ylabel=key.replace("_", " "))
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, min_n_ticks=1))
    return ax


def rejection_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    ax: plt.Axes | None = None,
    ratio_to: str | None = None,
    ratio_range: tuple[float, float] = (0.5, 1.5),
) -> plt.Axes:
    """Gluon rejection against quark efficiency (log axis) for named (labels, scores) pairs.

    Args:
        curves: name -> (labels, scores).
        ax: where to draw; a new figure when ``None`` (not with ``ratio_to``).
        ratio_to: a name of ``curves``: adds a panel below with each rejection divided by that
            curve's, at the same quark efficiency (10-90%), so small leads can be seen.
        ratio_range: the ratio panel's y range; curves far below or above leave it.

    Returns:
        The axes of the rejection curves.
    """
    if ratio_to is not None and ratio_to not in curves:
        raise ValueError(f"ratio_to={ratio_to!r} is not one of the curves {list(curves)}.")
    if ratio_to is not None and ax is not None:
        raise ValueError("ratio_to draws its own figure of two panels: leave ax out.")
    ratio_ax = None
    if ratio_to is not None:
        _, (ax, ratio_ax) = plt.subplots(
            2, 1, figsize=(5, 5), sharex=True, gridspec_kw={"height_ratios": (3, 1.3)}
        )
    elif ax is None:
        _, ax = plt.subplots(figsize=(5, 3.8))
    grid = np.linspace(0.1, 0.9, 81)
    drawn = {}
    for name, (y_true, scores) in curves.items():
        efficiency, rejection = metrics.rejection_curve(y_true, scores)
        ax.plot(efficiency, rejection, label=name)
        drawn[name] = np.interp(grid, efficiency, rejection)
    ax.axvline(0.5, color="grey", lw=0.8, ls=":")
    ax.set(ylabel="gluon rejection 1/FPR", yscale="log", xlim=(0, 1))
    ax.legend(fontsize="small")
    if ratio_ax is None:
        ax.set_xlabel("quark efficiency (TPR)")
        return ax
    for values in drawn.values():
        ratio_ax.plot(grid, values / drawn[ratio_to])
    ratio_ax.axvline(0.5, color="grey", lw=0.8, ls=":")
    ratio_ax.set(xlabel="quark efficiency (TPR)", ylabel="ratio", xlim=(0, 1), ylim=ratio_range)
    ratio_ax.text(
        0.02,
        0.95,
        f"each rejection / {ratio_to}'s",
        transform=ratio_ax.transAxes,
        fontsize="small",
        va="top",
    )
    return ax


def pareto_front(values, front, chosen: int | None = None, ax: plt.Axes | None = None) -> plt.Axes:
    """Validation rejection against FLOPs per jet (log axis) for every trial of a two-objective
    search, the Pareto-optimal trials marked and joined, the chosen one circled. Notebook 07.

    Args:
        values: one row per trial: (validation rejection, FLOPs per jet).
        front: positions in ``values`` of the Pareto-optimal trials.
        chosen: position in ``values`` of the chosen trial, or ``None``.
        ax: where to draw; a new figure when ``None``.

    Returns:
        The axes.
    """
    points = np.asarray(values, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(
            f"values has shape {np.shape(values)}: use one row per trial, "
            "(validation rejection, FLOPs per jet)."
        )
    if not np.all(points[:, 1] > 0):
        raise ValueError(f"FLOPs per jet {points[:, 1]} must be positive for a log axis.")
    on_front = np.unique(np.asarray(front, dtype=np.int64).ravel())
    wanted = [*on_front.tolist(), *([] if chosen is None else [chosen])]
    if len(on_front) == 0 or any(not 0 <= i < len(points) for i in wanted):
        raise ValueError(
            f"front={on_front.tolist()}, chosen={chosen!r}: use positions 0-{len(points) - 1} "
            "of values, at least one on the front."
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.scatter(points[:, 1], points[:, 0], color="lightgrey", edgecolor="grey", label="all trials")
    line = on_front[np.argsort(points[on_front, 1], kind="stable")]
    ax.plot(points[line, 1], points[line, 0], "o-", color="C0", label="Pareto-optimal")
    if chosen is not None:
        ring = {"ms": 14, "mfc": "none", "mec": "C3", "mew": 2}
        ax.plot(points[chosen, 1], points[chosen, 0], "o", label="chosen", **ring)
    ax.set(xscale="log", xlabel="FLOPs per jet", ylabel="gluon rejection at 50% quark eff. (val)")
    ax.legend(fontsize="small")
    return ax


# --------------------------------------------------------------------------- search pictures (05)


def rejection_against_flops(
    rows: dict[str, tuple[float, float, float, float]],
    marked: Sequence[str] = (),
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Test rejection with its interval against FLOPs per jet (log axis), one point per model;
    the ``marked`` ones (notebook 07's ensembles) drawn as stars. Notebook 07's closing rows.

    Args:
        rows: by model name, (FLOPs per jet, rejection, interval low, interval high).
        marked: names of ``rows`` to draw as stars.
        ax: where to draw; a new figure when ``None``.

    Returns:
        The axes.
    """
    if not rows or any(len(row) != 4 or not row[0] > 0 for row in rows.values()):
        raise ValueError(
            f"rows {rows!r}: give each model (FLOPs per jet > 0, rejection, low, high)."
        )
    unknown = sorted(set(marked) - set(rows))
    if unknown:
        raise ValueError(f"marked {unknown} are not in rows {sorted(rows)}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for i, (name, (flops, value, low, high)) in enumerate(rows.items()):
        star = name in marked
        ax.errorbar(
            flops,
            value,
            yerr=[[value - low], [high - value]],
            fmt="*" if star else "o",
            ms=12 if star else 6,
            color=f"C{i}",
            capsize=3,
            label=name,
        )
    ax.set(xscale="log", xlabel="FLOPs per jet", ylabel="gluon rejection at 50% quark eff. (test)")
    ax.legend(fontsize="small", loc="best")
    return ax


def ensemble_variance(
    correlations: dict[str, float], max_members: int = 10, ax: plt.Axes | None = None
) -> plt.Axes:
    """The variance of the mean of k members' scores, relative to one member's, for members whose
    scores correlate by rho: rho + (1 - rho) / k. Averaging removes what the members do not
    share, until what they share is left. Notebook 07.

    Args:
        correlations: by label, the correlation of two members' scores (-1..1).
        max_members: the largest k drawn.
        ax: where to draw; a new figure when ``None``.

    Returns:
        The axes.
    """
    if not correlations or any(not -1 <= rho <= 1 for rho in correlations.values()):
        raise ValueError(f"correlations {correlations!r}: give each a value in -1..1.")
    if max_members < 2:
        raise ValueError(f"max_members={max_members}: draw at least 2 members.")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    k = np.arange(1, max_members + 1)
    for label, rho in correlations.items():
        ax.plot(k, rho + (1 - rho) / k, "o-", label=f"{label} (rho = {rho:.3f})")
    ax.set(xlabel="members k", ylabel="variance of the mean score / one member's", ylim=(0, 1.05))
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.legend(fontsize="small")
    return ax


def tpe_split(values: Sequence[float], gamma: float = 0.1, max_good: int = 25) -> np.ndarray:
    """Which finished trials TPE counts as good: the best ``ceil(gamma * n)`` (at most
    ``max_good``) by value, as Optuna's default ``gamma`` does for a maximised objective.
    Explained in notebook 05.

    Args:
        values: the objective value of each finished trial (larger is better).
        gamma: the share of trials called good.
        max_good: the most trials called good.

    Returns:
        A boolean mask, True for the good trials (at least one when ``values`` is not empty).
    """
    values = np.asarray(values, dtype=float)
    if not 0 < gamma <= 1:
        raise ValueError(f"gamma={gamma!r} must be in (0, 1].")
    if values.ndim != 1 or np.isnan(values).any():
        raise ValueError(f"values must be a 1-D array without NaN; got shape {values.shape}.")
    n_good = min(int(np.ceil(gamma * len(values))), max_good)
    good = np.zeros(len(values), dtype=bool)
    good[np.argsort(-values, kind="stable")[:n_good]] = True
    return good


def parzen_density(
    points: Sequence[float], grid: Sequence[float], low: float, high: float
) -> np.ndarray:
    """A Parzen estimator on ``[low, high]`` built as Optuna's TPE builds one for a numerical
    hyperparameter: a Gaussian kernel on each point, as wide as the larger gap to its
    neighbours (the outermost ones: the gap to their inner neighbour), widths clipped to
    ``[(high - low) / min(100, n + 2), high - low]``, plus one prior kernel of width
    ``high - low`` on the middle of the range; equal weights, each kernel cut to the range.
    Notebook 05.

    Args:
        points: the observations (e.g. log10 of the learning rates of the good trials).
        grid: evenly spaced points in ``[low, high]`` to evaluate the density on.
        low, high: the search range (same units as ``points``).

    Returns:
        The density at each grid point (it integrates to 1 over ``grid``).
    """
    if not high > low:
        raise ValueError(f"The range [{low}, {high}] is empty: high must be above low.")
    grid = np.asarray(grid, dtype=float)
    points = np.asarray(points, dtype=float).ravel()
    widths = np.empty(len(points))
    if len(points):
        order = np.argsort(points, kind="stable")
        edges = np.concatenate([[low], points[order], [high]])
        gaps = np.maximum(edges[1:-1] - edges[:-2], edges[2:] - edges[1:-1])
        if len(points) >= 2:  # Optuna's default: the range's ends are no neighbours
            gaps[0], gaps[-1] = edges[2] - edges[1], edges[-2] - edges[-3]
        widths[order] = np.clip(gaps, (high - low) / min(100, len(points) + 2), high - low)
    centres = np.append(points, (low + high) / 2)
    widths = np.append(widths, high - low)
    kernels = np.exp(-0.5 * ((grid[:, None] - centres) / widths) ** 2)
    areas = np.sum((kernels[1:] + kernels[:-1]) / 2 * np.diff(grid)[:, None], axis=0)
    return (kernels / areas).mean(axis=1)  # each kernel cut to the range, then averaged


def tpe_model(
    x: Sequence[float], values: Sequence[float], low: float, high: float, gamma: float = 0.1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """TPE's model of one positive hyperparameter searched on a log scale, simplified: the
    finished trials split into good and bad (:func:`tpe_split`), a density for each
    (:func:`parzen_density` in log10 x), and the x where their ratio l/g is largest.
    Notebook 05.

    Args:
        x: the hyperparameter of each finished trial, inside ``[low, high]``.
        values: the objective of each finished trial (larger is better).
        low, high: the search range of ``x`` (positive).
        gamma: the share of trials called good.

    Returns:
        ``(grid, l, g, x_best)``: 400 points of x spaced evenly in log10 x, the densities
        l(x) of the good and g(x) of the bad trials there (per unit of log10 x), and the grid
        point where l/g is largest.
    """
    x, values = np.asarray(x, dtype=float), np.asarray(values, dtype=float)
    if len(x) != len(values) or len(x) < 2:
        raise ValueError(
            f"Need one value per x and at least two trials; got {len(x)} x and "
            f"{len(values)} values."
        )
    if not 0 < low < high or np.any((x < low) | (x > high)):
        raise ValueError(f"Need 0 < low < high and every x inside [{low}, {high}]; x = {x}.")
    good = tpe_split(values, gamma)
    log_low, log_high = np.log10(low), np.log10(high)
    grid = np.linspace(log_low, log_high, 400)
    below = parzen_density(np.log10(x[good]), grid, log_low, log_high)
    above = parzen_density(np.log10(x[~good]), grid, log_low, log_high)
    return 10**grid, below, above, float(10 ** grid[np.argmax(below / above)])


def tpe_densities(
    x: Sequence[float],
    values: Sequence[float],
    low: float,
    high: float,
    name: str = "learning rate",
    gamma: float = 0.1,
    axes: Sequence[plt.Axes] | None = None,
) -> np.ndarray:
    """Draw :func:`tpe_model`: the finished trials, good and bad, against x (top); the densities
    l(x) and g(x) on a log axis and where l/g is largest (bottom). Notebook 05.

    Args:
        x, values, low, high, gamma: as for :func:`tpe_model`.
        name: the hyperparameter's name, for the axis label.
        axes: two axes, one above the other; new ones when None.

    Returns:
        The two axes: two scatters (bad, good) above; l, g and the line at the largest l/g below.
    """
    grid, below, above, best = tpe_model(x, values, low, high, gamma)
    x, values = np.asarray(x, dtype=float), np.asarray(values, dtype=float)
    good = tpe_split(values, gamma)
    if axes is None:
        _, axes = plt.subplots(2, 1, figsize=(5.5, 4.5), sharex=True)
    axes[0].scatter(x[~good], values[~good], color="tab:grey", label=f"bad ({(~good).sum()})")
    axes[0].scatter(x[good], values[good], color="tab:green", label=f"good ({good.sum()})")
    axes[0].set(xscale="log", ylabel="gluon rejection (val)")
    axes[0].legend(fontsize="small")
    axes[1].plot(grid, below, color="tab:green", label="l(x): good trials")
    axes[1].plot(grid, above, color="tab:grey", label="g(x): bad trials")
    axes[1].axvline(best, color="tab:red", ls="--", label=f"largest l/g: {best:.1e}")
    axes[1].set(xscale="log", xlabel=name, ylabel=f"density per log10({name})")
    axes[1].legend(fontsize="small")
    return np.asarray(axes)


def median_per_epoch(curves: Sequence[Sequence[float]]) -> np.ndarray:
    """The median over ``curves`` at each epoch, of the curves that reached that epoch (NaN where
    none did): the bar the median pruner sets. Notebook 05."""
    length = max((len(curve) for curve in curves), default=0)
    medians = np.full(length, np.nan)
    for epoch in range(length):
        reached = [curve[epoch] for curve in curves if len(curve) > epoch]
        medians[epoch] = np.median(reached)
    return medians


def median_pruning(
    earlier: Sequence[Sequence[float]], pruned: Sequence[float], ax: plt.Axes | None = None
) -> plt.Axes:
    """The median pruner's decision: the validation rejection per epoch of the complete trials
    before it (grey), their median per epoch (black), and a pruned trial (red) stopped at its
    last epoch (x). Notebook 05.

    Returns:
        The axes: one line per earlier trial, then the median, then the pruned trial.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for i, curve in enumerate(earlier):
        label = "complete trials before it" if i == 0 else None
        ax.plot(np.arange(1, len(curve) + 1), curve, color="tab:grey", alpha=0.6, label=label)
    medians = median_per_epoch(earlier)
    ax.plot(np.arange(1, len(medians) + 1), medians, color="black", lw=2.5, label="their median")
    epochs = np.arange(1, len(pruned) + 1)
    ax.plot(epochs, pruned, color="tab:red", marker="o", label="pruned trial")
    ax.scatter(epochs[-1:], list(pruned)[-1:], marker="x", s=120, color="tab:red", zorder=3)
    ax.set(xlabel="epoch", ylabel="gluon rejection (val)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize="small")
    return ax


def _check_halving(min_epochs: int, max_epochs: int, reduction_factor: int) -> None:
    if reduction_factor < 2:
        raise ValueError(f"reduction_factor={reduction_factor!r}: use an integer of at least 2.")
    if not 1 <= min_epochs <= max_epochs:
        raise ValueError(
            f"min_epochs={min_epochs!r}, max_epochs={max_epochs!r}: need 1 <= min <= max."
        )


def successive_halving(
    n_trials: int, min_epochs: int, max_epochs: int, reduction_factor: int = 3
) -> list[tuple[int, int]]:
    """The rungs of (synchronous) successive halving: start ``n_trials`` with ``min_epochs``
    each; at every rung keep the best ``1 / reduction_factor`` and multiply their epochs by
    ``reduction_factor``, up to ``max_epochs`` or one trial. Notebook 05.

    Returns:
        ``(trials, epochs each)`` per rung, e.g. ``[(27, 1), (9, 3), (3, 9), (1, 27)]``.
    """
    _check_halving(min_epochs, max_epochs, reduction_factor)
    if n_trials < 1:
        raise ValueError(f"n_trials={n_trials!r}: start at least one trial.")
    rungs, trials, epochs = [], n_trials, min_epochs
    while trials >= 1 and epochs <= max_epochs:
        rungs.append((trials, epochs))
        if trials == 1:
            break
        trials, epochs = trials // reduction_factor, epochs * reduction_factor
    return rungs


def hyperband_brackets(
    max_epochs: int, min_epochs: int = 1, reduction_factor: int = 3
) -> list[list[tuple[int, int]]]:
    """Hyperband's brackets (Li et al. 2018, Algorithm 1): successive halving run several ways,
    from many trials started with ``min_epochs`` to a few started with ``max_epochs``, each
    bracket with about the same budget. Notebook 05.

    Args:
        max_epochs: the most epochs one trial gets (R).
        min_epochs: the fewest (R is counted in units of it).
        reduction_factor: the eta of the paper: keep 1/eta at each rung.

    Returns:
        The brackets, most aggressive first, each a list of ``(trials, epochs each)`` rungs.
    """
    _check_halving(min_epochs, max_epochs, reduction_factor)
    ratio, s_max = max_epochs // min_epochs, 0
    while reduction_factor ** (s_max + 1) <= ratio:
        s_max += 1
    if max_epochs != min_epochs * reduction_factor**s_max:
        raise ValueError(
            f"max_epochs={max_epochs} is not min_epochs={min_epochs} times a power of "
            f"reduction_factor={reduction_factor} (e.g. {min_epochs * reduction_factor**s_max} "
            f"or {min_epochs * reduction_factor ** (s_max + 1)})."
        )
    brackets = []
    for s in range(s_max, -1, -1):
        n = -(-(s_max + 1) * reduction_factor**s // (s + 1))  # ceil of the paper's n
        start = min_epochs * reduction_factor ** (s_max - s)
        brackets.append(successive_halving(n, start, max_epochs, reduction_factor))
    return brackets


def halving_rungs(
    brackets: Sequence[Sequence[tuple[int, int]]],
    labels: Sequence[str] | None = None,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Trials still running against the epochs each has had, one line per bracket of
    successive halving (a single schedule is a list of one bracket). Notebook 05.

    Returns:
        The axes, one line per bracket.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    labels = labels or [f"bracket {i}" for i in range(len(brackets))]
    if len(labels) != len(brackets):
        raise ValueError(f"{len(labels)} labels for {len(brackets)} brackets.")
    for rungs, label in zip(brackets, labels, strict=True):
        trials, epochs = zip(*rungs, strict=True)
        ax.plot(epochs, trials, marker="o", label=label)
    ax.set(xscale="log", yscale="log", xlabel="epochs per trial", ylabel="trials still running")
    ax.legend(fontsize="small")
    return ax


# --------------------------------------------------------------------------- a study's slices (05)


def slice_plot(
    trials, params: Sequence[str], target_name: str, axes: Sequence[plt.Axes] | None = None
) -> np.ndarray:
    """The objective against each hyperparameter, one panel per parameter, each point a trial
    coloured by its number: what Optuna's ``plot_slice`` shows, with readable axes (a log axis
    with few ticks for log-searched numbers, one tick per category). Notebooks 05 and 06.

    Args:
        trials: a study, or its trials (Optuna's ``FrozenTrial`` or anything with ``number``,
            ``params``, ``values`` and ``distributions``); those without a value (pruned,
            failed, running) are left out; the first objective of several is drawn.
        params: the hyperparameters to draw, one panel each.
        target_name: what the objective is, for the y axis.
        axes: one axes per parameter; new ones, four to a row, when None.

    Returns:
        The axes, one scatter each.
    """
    scored = [t for t in getattr(trials, "trials", trials) if t.values]
    if not scored:
        raise ValueError("No trial with a value: a slice plot needs at least one complete trial.")
    known = list(dict.fromkeys(name for t in scored for name in t.params))
    unknown = [name for name in params if name not in known]
    if unknown or not params:
        raise ValueError(f"No complete trial has the parameters {unknown}: use some of {known}.")
    if axes is None:
        axes = _slice_axes(len(params))
    axes = np.asarray(axes).ravel()
    if len(axes) != len(params):
        raise ValueError(f"{len(axes)} axes for {len(params)} parameters: give one per parameter.")
    numbers = [t.number for t in scored]
    colours = ScalarMappable(Normalize(min(numbers), max(max(numbers), min(numbers) + 1)))
    rng = np.random.default_rng(0)  # the jitter of categories: the same picture every time
    for ax, name in zip(axes, params, strict=True):
        drawn = [t for t in scored if name in t.params]
        distribution = drawn[0].distributions[name]
        x = [t.params[name] for t in drawn]
        if hasattr(distribution, "choices"):
            x = _categorical_axis(ax, x, distribution.choices, rng)
        else:
            _numeric_axis(ax, distribution.low, distribution.high, distribution.log)
        drawn_numbers = np.array([t.number for t in drawn])
        ax.scatter(
            x, [t.values[0] for t in drawn], c=colours.to_rgba(drawn_numbers), edgecolors="k"
        )
        ax.set_xlabel(name)
        spec = ax.get_subplotspec()
        if ax is axes[0] or (spec is not None and spec.is_first_col()):
            ax.set_ylabel(target_name)
    ticks = ticker.MaxNLocator(nbins=5, integer=True)
    axes[0].figure.colorbar(colours, ax=list(axes), label="trial number", ticks=ticks)
    return axes


def _slice_axes(n_panels: int) -> np.ndarray:
    """``n_panels`` axes sharing their y axis, four to a row, on a new figure."""
    ncols = min(4, n_panels)
    nrows = -(-n_panels // ncols)
    size = (2.5 * ncols + 0.8, 2.9 * nrows)
    _, grid = plt.subplots(
        nrows, ncols, figsize=size, sharey=True, squeeze=False, layout="constrained"
    )
    for ax in grid.ravel()[n_panels:]:
        ax.remove()
    return grid.ravel()[:n_panels]


def _categorical_axis(
    ax: plt.Axes, values: Sequence, choices: Sequence, rng: np.random.Generator
) -> np.ndarray:
    """One tick per category at 0, 1, ... (labels turned when long); returns the positions of
    ``values``, jittered so that trials of one category stay apart."""
    labels = [str(choice) for choice in choices]
    turned = sum(map(len, labels)) > 14 or max(map(len, labels)) > 8
    ax.set_xticks(range(len(labels)), labels)
    if turned:
        ax.tick_params(axis="x", labelrotation=35)
        for label in ax.get_xticklabels():
            label.set(ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.5, len(labels) - 0.5)
    at = np.array([list(choices).index(value) for value in values], dtype=float)
    return at + rng.uniform(-0.15, 0.15, len(at))


def _numeric_axis(ax: plt.Axes, low: float, high: float, log: bool) -> None:
    """The search range ``[low, high]`` with at most four ticks: on a log axis at powers of 2
    (integers) or 10 for a log-searched parameter, else evenly spaced."""
    integer = isinstance(low, int) and isinstance(high, int)
    if not log:
        margin = 0.05 * (high - low)
        ax.set_xlim(low - margin, high + margin)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=4, integer=integer))
        return
    ax.set_xscale("log")
    margin = (high / low) ** 0.05
    ax.set_xlim(low / margin, high * margin)
    ticks = _log_ticks(low, high, base=2 if integer else 10)
    ax.xaxis.set_major_locator(ticker.FixedLocator(ticks))
    if integer:
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    else:
        ax.xaxis.set_major_formatter(ticker.LogFormatterSciNotation(labelOnlyBase=False))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def _log_ticks(low: float, high: float, base: int) -> list[float]:
    """At most four powers of ``base`` inside ``[low, high]``, evenly thinned; ``[low, high]``
    when fewer than two fit."""
    first = math.ceil(math.log(low, base) - 1e-9)
    last = math.floor(math.log(high, base) + 1e-9)
    powers = [float(base) ** k for k in range(first, last + 1)]
    powers = powers[:: -(-len(powers) // 4)] if powers else powers
    return powers if len(powers) >= 2 else [float(low), float(high)]
