"""Ensembles of networks trained anyway: the seeds of one configuration, the best trials of a
search, and the one rule that chooses how many members (notebook 07).

The rule is fixed here, before any test value is seen, and reads the validation split only:
of the ensembles of the first k of the ranked predictors, k in ``ENSEMBLE_SIZES``, keep the one
with the highest validation rejection; a tie goes to the smaller k. The chosen value was chosen
on the same jets, so it is optimistic: only the test split judges the ensemble.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qgtools.data import JetData
from qgtools.model import Ensemble, HParams, Predictor
from qgtools.population import fit_population
from qgtools.train import TrainResult, rejection

ENSEMBLE_SIZES = (1, 2, 3, 5)
"""The numbers of members the rule chooses from."""


def of_seeds(
    hparams: HParams,
    data: JetData,
    seeds: Iterable[int] = range(5),
    *,
    max_epochs: int | None = None,
    num_threads: int | None = None,
    combine: str = "probability",
) -> tuple[Ensemble, list[TrainResult]]:
    """The ensemble of ``hparams`` trained with each training seed, as one population.

    Returns:
        The ensemble and each seed's training result (for its single-seed rows).
    """
    runs = fit_population(
        [hparams.replace(seed=seed) for seed in seeds],
        data,
        max_epochs=max_epochs,
        num_threads=num_threads,
    )
    return Ensemble([run.predictor for run in runs], combine), runs


@dataclass(frozen=True)
class SizeChoice:
    """What :func:`choose_size` chose, and what it saw.

    Attributes:
        k: the number of ranked predictors (or ensembles) chosen.
        ensemble: the ensemble of the first ``k`` ranked predictors.
        val_rejection: the validation rejection of each ensemble tried, by its ``k``.
    """

    k: int
    ensemble: Ensemble
    val_rejection: dict[int, float]

    def line(self) -> str:
        """One line: the k chosen and every k's validation value, marked as optimistic."""
        tried = ", ".join(f"k={k} {value:.1f}" for k, value in self.val_rejection.items())
        return (
            f"k = {self.k} of {max(self.val_rejection)} by validation rejection ({tried}; chosen "
            "on these jets: optimistic)"
        )


def choose_size(
    ranked: Sequence[Predictor | Ensemble],
    data: JetData,
    sizes: Sequence[int] = ENSEMBLE_SIZES,
    combine: str = "probability",
) -> SizeChoice:
    """The ensemble of the first k of ``ranked`` (best first, by validation) that the rule keeps.

    Args:
        ranked: trained predictors of the same data and split, best first; an ensemble among
            them (the seeds of one search trial) counts as one and brings all its members.
        data: the jets they were trained on; only the validation split is read.
        sizes: the k to try; those above ``len(ranked)`` are left out.
        combine: what the ensembles average (:class:`qgtools.model.Ensemble`).

    Raises:
        ValueError: no predictors, or no size in ``sizes`` that ``ranked`` can fill.
    """
    usable = sorted({k for k in sizes if 1 <= k <= len(ranked)})
    if not ranked or not usable:
        raise ValueError(
            f"choose_size needs predictors for at least one size of {list(sizes)}; "
            f"got {len(ranked)} predictor(s)."
        )
    candidates = {k: Ensemble(members_of(ranked[:k]), combine) for k in usable}
    values = {k: rejection(ensemble, data) for k, ensemble in candidates.items()}
    best = max(values.values())
    k = min(k for k, value in values.items() if value == best)  # a tie: the smaller k
    return SizeChoice(k, candidates[k], values)


def members_of(models: Sequence[Predictor | Ensemble]) -> list[Predictor]:
    """The predictors of ``models`` in order, each ensemble's members in its place.

    Args:
        models: predictors and ensembles.

    Returns:
        The predictors, ready for :class:`qgtools.model.Ensemble`.
    """
    return [
        p for model in models for p in (model.members if isinstance(model, Ensemble) else [model])
    ]
