"""Populations through ask-and-tell: K trials of one shape trained at once (notebook 08)."""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict

import numpy as np
import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from qgtools.data import JetData
from qgtools.model import Ensemble, HParams
from qgtools.population import SHARED_FIELDS, fit_population
from qgtools.search.artifacts import keep_model
from qgtools.search.objective import SPLIT_SEED
from qgtools.search.recovery import record_worker
from qgtools.search.spaces import SPACES, Space

TRIALS_PER_SHAPE = 2
"""A population asks this many times its size in trials of its shape (it fills its places about
twice over) before the next population draws a new shape."""


def population_size(study: optuna.Study, population: int) -> int:
    """The size of the next population: ``population``, but never more than the study's completed
    trials (at least 1). A pruner compares a trial with completed ones, so a study's first
    population of K would run unpruned while it has nothing to compare with; this way the first
    populations are single trials (the sampler's start-up draws a shape each, as it draws a
    trial) and the size grows as trials complete.

    Args:
        study: the study.
        population: the size asked for.

    Returns:
        The size, at least 1.
    """
    complete = sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
    return max(1, min(population, complete))


SHAPE_PARAMS = tuple(f for f in SHARED_FIELDS if f != "max_epochs")
"""The parameters of a space that a population's members share (``SHARED_FIELDS`` less the
epochs, which a search fixes for all its trials); the first trial of a population draws those
its space has (the reference space draws ``input_channels`` too)."""


def optimize_population(
    study: optuna.Study,
    data: JetData,
    space: Space | str,
    max_epochs: int,
    population: int,
    *,
    seeds: int = 1,
    n_trials: int | None = None,
    keep_asking: Callable[[], bool] | None = None,
    num_threads: int | None = None,
    split_seed: int = SPLIT_SEED,
    artifacts: optuna.artifacts.FileSystemArtifactStore | None = None,
    accelerator: str = "auto",
) -> list[FrozenTrial]:
    """Train ``population`` trials of one shape at once, asking for new ones as places free up.

    Ask-and-tell: the first trial draws every parameter with the study's sampler; the others
    draw theirs with the shape parameters (``SHAPE_PARAMS``) fixed to the first trial's
    (``optuna.samplers.PartialFixedSampler``). The trials train in one
    :func:`qgtools.population.fit_population`, ``seeds`` members each (training seeds
    ``seed``, ``seed + 1``, ...). Every epoch each trial reports its validation rejection (the
    mean over its seeds) with ``trial.report`` and stops when ``trial.should_prune()`` says so;
    a trial that finishes or is pruned is told at once and frees its place for a new trial of
    the same shape, until ``n_trials`` (default ``population``: no new ones) have been asked or
    ``keep_asking()`` says no. ``study.tell`` ends each trial with the mean over seeds of each
    seed's best validation rejection; ``seed_values`` and ``seed_std`` hold the seeds' own
    values. The trials carry the user attributes :func:`make_objective` sets (``hparams``,
    ``worker``, ``best_epoch``, ``model_artifact`` with ``artifacts``, ...), so reports,
    ``hparams_of``, kept models and dead-worker recovery work unchanged.
    Single-objective (validation rejection) studies only.

    Args:
        study: a single-objective study.
        data: the jets, split with ``split_seed``.
        space: a space or a name of ``SPACES``.
        max_epochs: epochs per trial.
        population: trials at once, 1 or more.
        seeds: training seeds per trial, 1 or more.
        n_trials: trials to ask in all (default ``population``).
        keep_asking: asked before each new trial after the first; ``False`` stops asking.
        num_threads: torch threads; ``None`` leaves them.
        split_seed: the split's seed.
        artifacts: a store (:func:`artifact_store`) for each complete trial's model: its
            best-epoch :class:`~qgtools.model.Predictor`, or with ``seeds`` > 1 the
            :class:`~qgtools.model.Ensemble` of its seeds' (:func:`trial_model` loads it).
        accelerator: where the population trains (:func:`~qgtools.population.fit_population`).

    Returns:
        The trials, in the order they were asked.

    Raises:
        ValueError: ``population`` or ``seeds`` below 1, or a multi-objective study.
    """
    if population < 1 or seeds < 1:
        raise ValueError(f"population={population} and seeds={seeds} must be at least 1.")
    if len(study.directions) != 1:
        raise ValueError("A population search maximises one value (validation rejection).")
    space_fn = SPACES[space] if isinstance(space, str) else space
    n_trials = population if n_trials is None else n_trials
    asked = _Asked(study, space_fn, max_epochs, population, seeds, n_trials, keep_asking, artifacts)
    fit_population(
        asked.ask(population),
        data,
        split_seed=split_seed,
        num_threads=num_threads,
        accelerator=accelerator,
        on_epoch=asked.report,
        refill=lambda free: asked.ask(free // seeds),
        on_leave=asked.leave,
    )
    # copies of these trials only: study.trials deep-copies the whole study at every call
    trials = study.get_trials(deepcopy=False)
    return [copy.deepcopy(trials[trial.number]) for trial in asked.trials]


class _Asked:
    """The trials one :func:`optimize_population` has asked, and its members' trials: asks new
    ones, reports their epochs, tells them as their members leave."""

    def __init__(
        self,
        study: optuna.Study,
        space_fn: Space,
        max_epochs: int,
        population: int,
        seeds: int,
        n_trials: int,
        keep_asking: Callable[[], bool] | None,
        artifacts: optuna.artifacts.FileSystemArtifactStore | None = None,
    ) -> None:
        self.study, self.space_fn, self.max_epochs = study, space_fn, max_epochs
        self.population, self.seeds, self.n_trials = population, seeds, n_trials
        self.keep_asking, self.artifacts = keep_asking, artifacts
        self.trials: list[Trial] = []
        self.shape: dict = {}
        self.owner: list[int] = []  # the trial of each member, by member index
        self.finished: dict[int, dict] = {}  # trial -> its members' results by index, as they leave

    def ask(self, n: int) -> list[HParams]:
        """Up to ``n`` new trials' members (``seeds`` each)."""
        new: list[HParams] = []
        while len(new) < n * self.seeds and len(self.trials) < self.n_trials:
            if self.trials and self.keep_asking is not None and not self.keep_asking():
                break
            trial, hparams = self._one()
            self.trials.append(trial)
            self.owner.extend([len(self.trials) - 1] * self.seeds)
            new += [hparams.replace(seed=hparams.seed + s) for s in range(self.seeds)]
        return new

    def _one(self) -> tuple[Trial, HParams]:
        """A new trial and its configuration, of the first trial's shape."""
        study, trials = self.study, self.trials
        sampler = study.sampler
        trial = study.ask()
        record_worker(trial)  # first: a failure below must find the trial's worker
        try:
            # the sampler is asked at each suggest, so it is swapped through space_fn
            if trials:
                with warnings.catch_warnings():  # experimental in Optuna 5; what this needs
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    study.sampler = optuna.samplers.PartialFixedSampler(self.shape, sampler)
            hparams = self.space_fn(trial).replace(max_epochs=self.max_epochs)
        finally:
            study.sampler = sampler
        if not trials:  # the first trial's draws fix the shape
            self.shape.update({k: trial.params[k] for k in SHAPE_PARAMS if k in trial.params})
        trial.set_user_attr("hparams", asdict(hparams))
        trial.set_user_attr(
            "population",
            {
                "first": trials[0].number if trials else trial.number,
                "size": self.population,
                "seeds": self.seeds,
            },
        )
        return trial, hparams

    def report(self, alive: list[int], entries: list[dict]) -> list[int]:
        """Report each trial's mean over its seeds; the members to stop (pruned or diverged)."""
        rounds: dict[int, list[tuple[int, dict]]] = {}
        for i, entry in zip(alive, entries, strict=True):
            rounds.setdefault(self.owner[i], []).append((i, entry))
        stop = []
        for t, seen in rounds.items():
            values = [entry["val_rejection"] for _, entry in seen]
            if len(seen) < self.seeds or any(math.isnan(v) for v in values):
                stop += [i for i, _ in seen]  # a diverged seed ends its trial (the result says)
                continue
            self.trials[t].report(float(np.mean(values)), seen[0][1]["epoch"])
            if self.trials[t].should_prune():
                stop += [i for i, _ in seen]
        return stop

    def leave(self, i: int, result) -> None:
        """A member left; its trial ends as soon as its last member leaves."""
        mine = self.finished.setdefault(self.owner[i], {})
        mine[i] = result
        if len(mine) == self.seeds:  # in seed order: a trial's members have consecutive indices
            self._tell(self.trials[self.owner[i]], [mine[j] for j in sorted(mine)])

    def _tell(self, trial: Trial, mine: list) -> None:
        trial.set_user_attr("best_epoch", mine[0].best_epoch)
        trial.set_user_attr("wall_time_s", round(sum(r.wall_time_s for r in mine), 2))
        trial.set_user_attr("n_params", mine[0].n_params)
        diverged = [r for r in mine if r.status == "diverged"]
        if diverged:
            trial.set_user_attr(
                "fail_reason",
                f"diverged: the loss went NaN at epoch {len(diverged[0].history)}",
            )
            self.study.tell(trial, state=TrialState.FAIL)
        elif any(r.status == "pruned" for r in mine):
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            values = [r.best_val_rejection for r in mine]
            if self.seeds > 1:
                trial.set_user_attr("seed_values", [round(v, 4) for v in values])
                trial.set_user_attr("seed_std", round(float(np.std(values, ddof=1)), 4))
            if self.artifacts is not None:
                models = [r.predictor for r in mine]
                keep_model(
                    trial, models[0] if len(models) == 1 else Ensemble(models), self.artifacts
                )
            self.study.tell(trial, float(np.mean(values)))


def search_populations(
    study: optuna.Study,
    data: JetData,
    space: Space | str,
    max_epochs: int,
    population: int,
    *,
    seeds: int = 1,
    n_trials: int | None = None,
    timeout: float | None = None,
    num_threads: int | None = None,
    split_seed: int = SPLIT_SEED,
    artifacts: optuna.artifacts.FileSystemArtifactStore | None = None,
    accelerator: str = "auto",
) -> list[FrozenTrial]:
    """Population after population (:func:`optimize_population`, each asking
    ``TRIALS_PER_SHAPE`` x ``population`` trials of its shape) in this process, until
    ``n_trials`` trials have been asked or ``timeout`` seconds have passed (then no new trial
    starts; the running ones finish). The in-process counterpart of ``study.optimize``.

    Args:
        study, data, space, max_epochs, population, seeds, num_threads, split_seed, artifacts,
        accelerator: as :func:`optimize_population` takes them.
        n_trials: trials to ask in all, or ``None`` (then ``timeout`` ends the search).
        timeout: seconds after which no new trial starts, or ``None``.

    Returns:
        The trials it ran, in the order they were asked.

    Raises:
        ValueError: neither ``n_trials`` nor ``timeout``.
    """
    if n_trials is None and timeout is None:
        raise ValueError("Give n_trials or timeout (or both): a search needs an end.")
    start, ran = time.perf_counter(), []

    def in_time() -> bool:
        return timeout is None or time.perf_counter() - start < timeout

    while in_time() and (n_trials is None or len(ran) < n_trials):
        size = population_size(study, population)
        left = n_trials - len(ran) if n_trials is not None else TRIALS_PER_SHAPE * size
        ran += optimize_population(
            study,
            data,
            space,
            max_epochs,
            min(size, left),
            seeds=seeds,
            n_trials=min(TRIALS_PER_SHAPE * size, left),
            keep_asking=in_time,
            num_threads=num_threads,
            split_seed=split_seed,
            artifacts=artifacts,
            accelerator=accelerator,
        )
    return ran
