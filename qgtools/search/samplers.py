"""Samplers and pruners by the names the command line takes (notebook 05), and the sampler that
seeds each trial from the run's seed and the trial's number."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

TPE_STARTUP_TRIALS = 5
"""TPE's random start-up trials in ``qgtools`` (Optuna's own default is 10): short studies."""


def make_sampler(
    name: str, seed: int | None, n_startup_trials: int = TPE_STARTUP_TRIALS
) -> optuna.samplers.BaseSampler:
    """A seeded sampler by name. Explained in notebook 05.

    Args:
        name: ``"tpe"``, ``"gp"`` or ``"random"``.
        seed: seeds the sampler's draws (None: a fresh seed each time).
        n_startup_trials: TPE's or the GP's first trials, drawn at random before it models the
            results (TPE counts complete and pruned trials, the GP complete ones); 0 or more.
            Random sampling has no start-up phase (all its trials are random), so it ignores
            the number.

    Returns:
        ``TPESampler``, ``GPSampler`` or ``RandomSampler``. TPE draws its start-up trials with
        a ``RandomSampler`` of the same seed, so on the same objective its first
        ``n_startup_trials`` configurations are those of ``make_sampler("random", seed)``.
        The Gaussian-process sampler (notebook 09) models the parameters every trial has; the
        conditional ones of the cpu space (``dropout``, ``patience``, ``factor``) it draws at
        random, independently, and says so here rather than in a warning per trial.

    Raises:
        ValueError: an unknown name, or ``n_startup_trials`` not a whole number >= 0.
    """
    if isinstance(n_startup_trials, bool) or not isinstance(n_startup_trials, (int, np.integer)):
        raise ValueError(
            f"n_startup_trials={n_startup_trials!r}: use a whole number of trials, 0 or more."
        )
    if n_startup_trials < 0:
        raise ValueError(
            f"n_startup_trials={n_startup_trials!r} is negative: use 0 or more "
            f"(0: TPE from the first trial; default {TPE_STARTUP_TRIALS})."
        )
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=int(n_startup_trials))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(
            seed=seed, n_startup_trials=int(n_startup_trials), warn_independent_sampling=False
        )
    raise ValueError(f"Unknown sampler {name!r}: use one of {list(SAMPLERS)}.")


SAMPLERS = ("tpe", "gp", "random")
"""The samplers by the names ``--sampler`` takes."""


class _TrialSeededSampler(optuna.samplers.BaseSampler):
    """``make_sampler(name, ...)`` made afresh for each trial, seeded from ``seed`` and the trial's
    number, so a study never draws two trials from the same random stream.

    Why the trial number: the storage hands each new trial a number no other trial of the study
    has, atomically (one journal line appended under the file lock; one database row), whatever
    runs, workers or machines ask at the same moment. Seeding from it means a rerun, a top-up,
    a rerun SLURM array or two runs started at once with the same ``--seed`` draw new
    configurations instead of repeating the ones already in the study, while a fresh study run
    the same way with one worker gets the same trials again (trial ``n`` of a study always gets
    the same seed). The samplers keep no state of their own between trials (TPE reads the
    history from the study), so re-making one per trial loses nothing.
    """

    def __init__(self, name: str, seed: int) -> None:
        self._name, self._seed = name, seed
        self._sampler = make_sampler(name, seed)

    def _seed_of(self, number: int) -> int:
        return int(np.random.SeedSequence(self._seed, spawn_key=(number,)).generate_state(1)[0])

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._sampler = make_sampler(self._name, self._seed_of(trial.number))
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict:
        return self._sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict) -> dict:
        return self._sampler.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution
    ) -> object:
        return self._sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values
    ) -> None:
        self._sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._sampler.reseed_rng()


PRUNERS: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
    "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=1),
    "none": optuna.pruners.NopPruner,
}
"""The pruners by the names ``--pruner`` takes, each a function that makes a fresh one."""


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """A pruner by name (notebook 05).

    Args:
        name: ``"median"`` (Optuna's median rule after 3 trials and 1 epoch), ``"hyperband"``
            or ``"none"``: a name of ``PRUNERS``.

    Returns:
        A new pruner.

    Raises:
        ValueError: an unknown name.
    """
    if name not in PRUNERS:
        *first, last = (repr(known) for known in PRUNERS)
        raise ValueError(f"Unknown pruner {name!r}: use {', '.join(first)} or {last}.")
    return PRUNERS[name]()
