"""Repeated studies: several whole studies side by side, each in one process (notebook 09)."""

from __future__ import annotations

import multiprocessing
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import optuna

from qgtools.data import DataSourceWarning, JetData, load
from qgtools.search.artifacts import artifact_store, artifacts_beside
from qgtools.search.objective import directions, make_objective
from qgtools.search.samplers import make_pruner, make_sampler
from qgtools.search.settings import StudySettings
from qgtools.search.spaces import enqueue_known
from qgtools.search.storage import open_storage
from qgtools.search.urls import _in_memory, storage_url


@dataclass(frozen=True)
class StudyPlan:
    """One study of :func:`run_studies`: trained in one process, one trial after another, so it
    is the same study on every run (notebook 09).

    Attributes:
        name: the study's name in the storage.
        n_trials: trials to run.
        max_epochs: epochs per trial.
        sampler, seed: :func:`make_sampler`'s name and seed.
        space: a name of ``SPACES``.
        pruner: :func:`make_pruner`'s name.
        metric: a metric name, or a tuple of them for a multi-objective study.
        enqueue: names of ``KNOWN_CONFIGURATIONS`` to train first.
        max_flops: a FLOPs-per-jet budget as a constraint, or ``None``.
        keep_models: store each complete trial's model beside the storage.
    """

    name: str
    n_trials: int
    max_epochs: int
    sampler: str = "tpe"
    seed: int = 0
    space: str = "cpu"
    pruner: str = "median"
    metric: str | tuple[str, ...] = "val_rejection"
    enqueue: tuple[str, ...] = ()
    max_flops: float | None = None
    keep_models: bool = False

    def settings(self, data: str | os.PathLike = "auto", jets: int = -1) -> StudySettings:
        """The plan as a run's settings, checked as those are (a ``ValueError`` naming a bad
        field); one process, the storage and data of :func:`run_studies`."""
        return StudySettings(
            study=self.name,
            data=data,
            jets=jets,
            n_trials=self.n_trials,
            max_epochs=self.max_epochs,
            sampler=self.sampler,
            seed=self.seed,
            space=self.space,
            pruner=self.pruner,
            enqueue=self.enqueue,
            max_flops=self.max_flops,
            keep_models=self.keep_models,
        )


_POOL_DATA: dict[str, JetData] = {}  # the data each run_studies process loaded once


def _load_for_pool(data: str, jets: int) -> None:
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", DataSourceWarning)  # the caller has said it once
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    _POOL_DATA["jets"] = load(num_data=jets, source=data)


def _run_plan(plan: StudyPlan, storage: str) -> float:
    """Run one plan in a :func:`run_studies` process; returns its seconds."""
    start = time.perf_counter()
    single = isinstance(plan.metric, str)
    study = optuna.create_study(
        study_name=plan.name,
        storage=open_storage(storage),
        directions=directions(plan.metric),
        sampler=make_sampler(plan.sampler, plan.seed),
        pruner=make_pruner(plan.pruner if single else "none"),
    )
    enqueue_known(study, plan.enqueue)
    artifacts = artifact_store(artifacts_beside(storage)) if plan.keep_models else None
    objective = make_objective(
        _POOL_DATA["jets"],
        plan.space,
        plan.max_epochs,
        metric=plan.metric,
        num_threads=1,
        max_flops=plan.max_flops,
        artifacts=artifacts,
    )
    study.optimize(objective, n_trials=plan.n_trials)
    return time.perf_counter() - start


def run_studies(
    plans: Sequence[StudyPlan],
    *,
    storage: str | os.PathLike,
    data: str | os.PathLike = "auto",
    jets: int = -1,
    processes: int = 2,
) -> dict[str, optuna.Study]:
    """Run several whole studies side by side in ``processes`` processes (each loads the data
    once and trains with one torch thread), into one storage file; notebook 09's repeats.

    Each study runs in one process, trial after trial, with its own seeded sampler, so it is
    the same study whatever else runs (only times differ). Kept models go
    :func:`artifacts_beside` the storage. Plans are started in the order given.

    Args:
        plans: the studies (:class:`StudyPlan`, checked as :meth:`StudyPlan.settings`).
        storage: a storage file all processes share (not in memory).
        data, jets: what each process loads (:func:`qgtools.data.load`).
        processes: processes side by side.

    Returns:
        The studies by name, loaded from the storage, each with its plan's sampler (so it can
        be asked for more), and the seconds each took in the user attribute ``seconds``.

    Raises:
        ValueError: repeated or existing study names, or a plan with a bad value, before any
            process starts.
    """
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes={processes!r}: use 1 or more processes.")
    for plan in plans:
        if not isinstance(plan, StudyPlan):
            raise ValueError(
                f"run_studies takes StudyPlan objects, not {plan!r} ({type(plan).__name__}): "
                "make each with search.StudyPlan(name, n_trials, max_epochs, ...)."
            )
        plan.settings(data, jets)
        directions(plan.metric)
    names = [plan.name for plan in plans]
    if len(set(names)) != len(names):
        raise ValueError(f"Study names repeat in {names}: give each plan its own name.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataSourceWarning)  # the caller's own load says it
        load(num_data=jets, source=data)  # a bad file fails here, not in a pool process
    url = storage_url(storage)
    if _in_memory(url):
        raise ValueError("run_studies needs a storage file the processes share, not memory.")
    existing = set(optuna.get_all_study_names(open_storage(url)))
    if existing & set(names):
        raise ValueError(
            f"The storage already holds {sorted(existing & set(names))}: use a fresh storage "
            "or other names."
        )
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes, initializer=_load_for_pool, initargs=(str(data), jets)) as pool:
        seconds = pool.starmap(_run_plan, [(plan, url) for plan in plans], chunksize=1)
    studies = {}
    for plan, spent in zip(plans, seconds, strict=True):
        study = optuna.load_study(
            study_name=plan.name,
            storage=open_storage(url),
            sampler=make_sampler(plan.sampler, plan.seed),
        )
        study.set_user_attr("seconds", round(spent, 2))
        studies[plan.name] = study
    return studies
