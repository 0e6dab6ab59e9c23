"""Background rejection at fixed signal efficiency, done right; explained in notebook 03.

The figure of merit is ``1 / FPR`` (gluon rejection) at the ROC point where the quark
efficiency (TPR) is 0.5, computed on *continuous* scores over the *whole* evaluation set.
The reference code this series replaces thresholded its scores and averaged per-batch
values; :func:`thresholded_rejection` and :func:`per_batch_mean_rejection` reproduce those
mistakes so the notebooks can show by how much they miss.

:func:`judge` is the series' one rule for calling a paired difference "ahead", "behind", "a
hint" or "level"; :func:`repeats_verdict`, :func:`bootstrap_verdict` and :func:`noise_verdict`
feed it from repeats, resampled jets and seeds, or a known noise (glossary: verdict).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def _check(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """One label and one score per jet, as 1-D arrays; anything else is refused, not flattened."""
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(
            f"y_true has shape {y.shape}; expected one label per jet, a 1-D array (1 = quark, "
            "0 = gluon). For one-hot labels pass y_true.argmax(axis=1) (column 1 = quark); "
            "for a single column pass y_true.ravel()."
        )
    if s.ndim != 1:
        raise ValueError(
            f"scores has shape {s.shape}; expected one quark score per jet, a 1-D array. For "
            "two-column class probabilities pass scores[:, 1] (the quark column); for a single "
            "column pass scores.ravel()."
        )
    if len(y) != len(s):
        raise ValueError(
            f"y_true has {len(y)} entries but scores has {len(s)}: they must match one to one."
        )
    if np.isnan(s).any():
        raise ValueError(
            f"scores contain {int(np.isnan(s).sum())} NaN values: a diverged model? Check training."
        )
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold only 1 (quark, signal) and 0 (gluon, background).")
    n_signal = int((y == 1).sum())
    if n_signal == 0 or n_signal == len(y):
        raise ValueError(
            f"y_true has {n_signal} quarks and {len(y) - n_signal} gluons: "
            "both classes are needed for a ROC curve."
        )
    return y.astype(bool), s


def roc_points(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points from the highest threshold down: (fpr, tpr, thresholds), starting at (0, 0).

    Tied scores form one point, as a threshold cannot separate them.
    """
    y, s = _check(y_true, scores)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last_of_group = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last_of_group]
    fp = (last_of_group + 1) - tp
    tpr = np.r_[0.0, tp / y.sum()]
    fpr = np.r_[0.0, fp / (~y).sum()]
    return fpr, tpr, np.r_[np.inf, s[last_of_group]]


def background_rejection(y_true, scores, signal_efficiency: float = 0.5) -> float:
    """Gluon rejection 1 / FPR at quark efficiency ``signal_efficiency``.

    Walks the ROC from the highest threshold down; at the first point whose TPR reaches the
    efficiency, FPR is interpolated linearly from the point before (so where a vertical
    segment sits exactly at the efficiency, its lowest FPR counts).

    Args:
        y_true: labels, 1 = quark (signal), 0 = gluon (background).
        scores: continuous quark scores (higher = more quark-like), one per jet.
        signal_efficiency: the quark efficiency, in (0, 1].

    Returns:
        The rejection; ``inf`` when no gluon passes at that efficiency. Constant scores give
        the no-information value ``1 / signal_efficiency``.
    """
    if not 0 < signal_efficiency <= 1:
        raise ValueError(f"signal_efficiency={signal_efficiency!r} must be in (0, 1].")
    fpr, tpr, _ = roc_points(y_true, scores)
    n_signal = int(np.asarray(y_true).sum())
    i = int(np.argmax(tpr * n_signal >= signal_efficiency * n_signal - 1e-9))
    weight = (signal_efficiency - tpr[i - 1]) / (tpr[i] - tpr[i - 1])
    fpr_at = fpr[i - 1] + min(max(weight, 0.0), 1.0) * (fpr[i] - fpr[i - 1])
    return float("inf") if fpr_at == 0 else float(1.0 / fpr_at)


def roc_auc(y_true, scores) -> float:
    """Area under the ROC curve (quark = positive class)."""
    fpr, tpr, _ = roc_points(y_true, scores)
    return float(np.trapezoid(tpr, fpr) if hasattr(np, "trapezoid") else np.trapz(tpr, fpr))


def rejection_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """(quark efficiency, gluon rejection) for the usual HEP plot; points with FPR = 0 are
    left out."""
    fpr, tpr, _ = roc_points(y_true, scores)
    keep = fpr > 0
    return tpr[keep], 1.0 / fpr[keep]


def _check_resampling(n: int, level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} must be in (0, 1).")
    if n < 1:
        raise ValueError(f"n={n!r} resamples: use a positive number.")


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` interval of resampled values, at the nearest resample value."""
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2], method="nearest")
    return float(low), float(high)


def _resample(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    """Indices of one bootstrap resample of the jets; drawn again until both classes are in it."""
    while True:
        index = rng.integers(0, len(y), len(y))
        if 0 < y[index].sum() < len(y):
            return index


def bootstrap_interval(
    metric: Callable[[np.ndarray, np.ndarray], float],
    y_true,
    scores,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.68,
) -> tuple[float, float, float]:
    """Bootstrap a metric over jets: (estimate on all jets, low, high) at confidence ``level``.

    Resamples that miss a class are drawn again. Percentiles use the nearest resample value
    (no interpolation), so ``inf`` rejections (no gluon passing) are allowed and can appear
    as the upper bound.
    """
    _check_resampling(n, level)
    y, s = _check(y_true, scores)
    estimate = metric(y.astype(np.int64), s)
    rng = np.random.default_rng(seed)
    values = np.empty(n)
    for k in range(n):
        index = _resample(rng, y)
        values[k] = metric(y[index].astype(np.int64), s[index])
    return (float(estimate), *_interval(values, level))


def _score_rows(scores, n_jets: int, name: str) -> np.ndarray:
    """Scores as a 2-D array (rows: training seeds, columns: jets), checked against the jets."""
    rows = np.asarray(scores, dtype=np.float64)
    if rows.ndim == 1:
        rows = rows[None, :]
    if rows.ndim != 2 or rows.shape[1] != n_jets or len(rows) == 0:
        raise ValueError(
            f"{name} has shape {np.shape(scores)}; expected one score per jet ({n_jets} jets), "
            "or one row of scores per training seed (seeds x jets)."
        )
    if np.isnan(rows).any():
        raise ValueError(f"{name} contain NaN values: a diverged model? Check training.")
    return rows


def paired_difference(
    metric: Callable[[np.ndarray, np.ndarray], float],
    y_true,
    scores_a,
    scores_b,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.68,
) -> tuple[float, float, float]:
    """Difference ``metric(a) - metric(b)`` of two models scored on the *same* jets, with a
    paired bootstrap interval: (estimate, low, high). Explained in notebook 04.

    Each resample draws the jets once and scores both models on them, so the jet-to-jet noise
    the two share cancels in the difference. Either model may be given as several training
    seeds (a 2-D array, one row of scores per seed): its metric is then the mean over seeds,
    and each resample also draws the seeds with replacement, so the interval covers
    seed-to-seed noise as well. Resamples that miss a class are drawn again; percentiles use
    the nearest resample value.

    Args:
        metric: e.g. :func:`background_rejection`.
        y_true: one label per jet (1 = quark).
        scores_a, scores_b: one score per jet, or seeds x jets.
        n: bootstrap resamples.
        seed: seeds the resampling.
        level: confidence level of the interval.

    Returns:
        (difference on all jets and seeds, low, high).
    """
    _check_resampling(n, level)
    estimate, values, _ = _paired_draws(metric, y_true, scores_a, scores_b, n, seed)
    return (estimate, *_interval(values, level))


def _paired_draws(metric, y_true, scores_a, scores_b, n: int, seed: int):
    """The paired bootstrap of :func:`paired_difference`: (estimate, the n resampled values,
    whether training seeds were resampled too)."""
    n_jets = len(np.asarray(y_true))
    a = _score_rows(scores_a, n_jets, "scores_a")
    b = _score_rows(scores_b, n_jets, "scores_b")
    y, _ = _check(y_true, a[0])
    labels = y.astype(np.int64)

    def mean_metric(rows: np.ndarray, index: np.ndarray) -> float:
        return float(np.mean([metric(labels[index], row[index]) for row in rows]))

    everything = np.arange(len(y))
    estimate = mean_metric(a, everything) - mean_metric(b, everything)
    rng = np.random.default_rng(seed)
    values = np.empty(n)
    for k in range(n):
        index = _resample(rng, y)
        rows_a = a[rng.integers(0, len(a), len(a))] if len(a) > 1 else a
        rows_b = b[rng.integers(0, len(b), len(b))] if len(b) > 1 else b
        values[k] = mean_metric(rows_a, index) - mean_metric(rows_b, index)
    return float(estimate), values, max(len(a), len(b)) > 1


# ----------------------------------------------------------------------- the one verdict rule

Z_68, Z_95 = 0.9945, 1.96
"""Half-widths of the normal central 68% and 95% intervals, in standard deviations."""

VERDICTS = ("ahead", "behind", "a hint", "level")
"""The words of :func:`judge`: ``"ahead"``/``"behind"`` when the 95% interval of a - b excludes
zero, ``"a hint"`` when only the 68% one does, ``"level"`` otherwise (glossary: verdict)."""


@dataclass(frozen=True)
class Verdict:
    """A paired difference a - b judged by the series' one rule (:func:`judge`).

    Attributes:
        word: one of ``VERDICTS``.
        estimate: the difference a - b.
        interval_68, interval_95: its 68% and 95% intervals.
        evidence: what was judged, e.g. "5 paired repeats of a search" or "1000 paired
            resamples of test jets and seeds".
    """

    word: str
    estimate: float
    interval_68: tuple[float, float]
    interval_95: tuple[float, float]
    evidence: str

    def says(self, a: str = "a", b: str = "b") -> str:
        """The verdict in words, e.g. "a hint that TPE is ahead of random"."""
        first, second = (a, b) if self.estimate >= 0 else (b, a)
        if self.word == "level":
            return f"{a} level with {b}"
        if self.word == "a hint":
            return f"a hint that {first} is ahead of {second}"
        return f"{a} {self.word} {'of ' if self.word == 'ahead' else ''}{b}"

    def line(self, a: str = "a", b: str = "b", digits: int = 1) -> str:
        """One printable line: the difference, both intervals, the evidence and the verdict."""
        low, high = self.interval_68
        wide_low, wide_high = self.interval_95
        f = f"+.{digits}f"
        return (
            f"{a} - {b}: {self.estimate:{f}}, 68% [{low:{f}}, {high:{f}}], "
            f"95% [{wide_low:{f}}, {wide_high:{f}}] ({self.evidence}): {self.says(a, b)}"
        )


def judge(
    estimate: float,
    interval_68: tuple[float, float],
    interval_95: tuple[float, float],
    evidence: str,
) -> Verdict:
    """The series' one verdict rule for a paired difference a - b (glossary: verdict).

    Args:
        estimate: the difference a - b.
        interval_68, interval_95: its 68% and 95% intervals, (low, high).
        evidence: what the intervals come from, said with the verdict.

    Returns:
        "ahead" or "behind" when the 95% interval excludes zero, "a hint" when only the 68%
        one does, "level" otherwise.

    Raises:
        ValueError: NaN values, or intervals that are not (low, high) with the 68% inside
            the 95%.
    """
    (low, high), (wide_low, wide_high) = map(tuple, (interval_68, interval_95))
    numbers = np.array([estimate, low, high, wide_low, wide_high], dtype=np.float64)
    if np.isnan(numbers).any():
        raise ValueError(f"A verdict needs numbers, got NaN in {numbers.tolist()}.")
    if not (wide_low <= low <= high <= wide_high):
        raise ValueError(
            f"Intervals 68% [{low}, {high}] and 95% [{wide_low}, {wide_high}]: each must be "
            "(low, high), and the 68% interval must lie inside the 95% one."
        )
    if wide_low > 0 or wide_high < 0:
        word = "ahead" if wide_low > 0 else "behind"
    elif low > 0 or high < 0:
        word = "a hint"
    else:
        word = "level"
    return Verdict(
        word,
        float(estimate),
        (float(low), float(high)),
        (float(wide_low), float(wide_high)),
        evidence,
    )


def repeats_verdict(a, b, evidence: str = "repeats of a search") -> Verdict:
    """Judge paired values, e.g. the best value of two samplers' studies with the same seeds.

    The intervals are Student's t intervals of the mean of the differences ``a - b`` (n - 1
    degrees of freedom), so a few repeats give wide intervals, as they should.

    Args:
        a, b: one value per repeat each, paired by position (at least two repeats).
        evidence: what the repeats are; the count is put in front ("5 paired repeats of ...").

    Raises:
        ValueError: fewer than two pairs, unequal lengths or NaN values.
    """
    from scipy.special import stdtrit  # Student's t quantiles; only here

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"a and b have shapes {a.shape} and {b.shape}: give one value per repeat each."
        )
    if len(a) < 2:
        raise ValueError(f"{len(a)} pair: a verdict from repeats needs at least two pairs.")
    diff = a - b
    if np.isnan(diff).any():
        raise ValueError("a or b holds NaN values: a failed repeat? Leave it out of both.")
    mean, sem = float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))
    half = {level: float(stdtrit(len(diff) - 1, (1 + level) / 2)) * sem for level in (0.68, 0.95)}
    return judge(
        mean,
        (mean - half[0.68], mean + half[0.68]),
        (mean - half[0.95], mean + half[0.95]),
        f"{len(diff)} paired repeats of {evidence.removeprefix('repeats of ')}",
    )


def bootstrap_verdict(
    metric: Callable[[np.ndarray, np.ndarray], float],
    y_true,
    scores_a,
    scores_b,
    n: int = 1000,
    seed: int = 0,
) -> Verdict:
    """Judge two models scored on the same jets by :func:`paired_difference`'s bootstrap.

    Both intervals come from the same resamples (jets, and seeds where a model has several
    rows); the evidence says which were resampled.
    """
    _check_resampling(n, 0.68)
    estimate, values, seeds = _paired_draws(metric, y_true, scores_a, scores_b, n, seed)
    what = "jets and seeds" if seeds else "jets"
    evidence = f"{n} paired resamples of {what}"
    return judge(estimate, _interval(values, 0.68), _interval(values, 0.95), evidence)


def noise_verdict(estimate: float, std: float, evidence: str) -> Verdict:
    """Judge one difference against a known noise: normal intervals of standard deviation ``std``
    (e.g. sqrt(2) x the seed-to-seed noise for two single runs; notebook 04)."""
    if not std >= 0:
        raise ValueError(f"std={std!r}: the noise must be a number, 0 or more.")
    return judge(
        estimate,
        (estimate - Z_68 * std, estimate + Z_68 * std),
        (estimate - Z_95 * std, estimate + Z_95 * std),
        evidence,
    )


# ------------------------------------------------------------------- the reference's mistakes


def thresholded_rejection(
    y_true, scores, threshold: float = 0.5, signal_efficiency: float = 0.5
) -> float:
    """The reference's mistake: 0/1 predictions ``scores > threshold`` fed into the ROC.

    The ROC of a yes/no classifier has one point between (0, 0) and (1, 1); the value read
    off at 50% efficiency is a straight-line interpolation, not a rejection any cut achieves.
    """
    y, s = _check(y_true, scores)
    return background_rejection(
        y.astype(np.int64), (s > threshold).astype(np.float64), signal_efficiency
    )


def per_batch_mean_rejection(
    y_true, scores, batch_size: int = 100, signal_efficiency: float = 0.5
) -> float:
    """The reference's other mistake: the rejection computed per batch, then averaged.

    With ~50 gluons in a batch of 100, one or two of them pass the cut, so batch values are
    1/0.02-style extremes; batches where none passes (``inf``) or a class is missing are
    skipped, as the reference's averaging would otherwise be infinite.
    """
    y, s = _check(y_true, scores)
    values = []
    for start in range(0, len(y), batch_size):
        yb, sb = y[start : start + batch_size], s[start : start + batch_size]
        if 0 < yb.sum() < len(yb):
            value = background_rejection(yb.astype(np.int64), sb, signal_efficiency)
            if np.isfinite(value):
                values.append(value)
    return float(np.mean(values))
