"""One worker process of a run: it loads the data, then trains trials until the budget is met or
the stopping rule says stop."""

from __future__ import annotations

import math
import os
import signal
import sys
import warnings

import numpy as np
import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from qgtools.data import DataSourceWarning, JetData, load
from qgtools.search.artifacts import artifact_store
from qgtools.search.objective import make_objective
from qgtools.search.populations import TRIALS_PER_SHAPE, optimize_population, population_size
from qgtools.search.recovery import _fail_trial, _taken
from qgtools.search.samplers import TPE_STARTUP_TRIALS, _TrialSeededSampler, make_pruner
from qgtools.search.settings import StudySettings
from qgtools.search.storage import _storage_lost, open_storage
from qgtools.stopping import NoImprovementStopper

MAX_FAILS_IN_A_ROW = 5
FAILING_EXIT_CODE = 3  # a worker's, and the command line's, after MAX_FAILS_IN_A_ROW
STORAGE_LOST_EXIT_CODE = 4  # a worker's, when the storage proxy stopped answering


def _worker(index: int, job: StudySettings, expected_data: tuple[str, int]) -> None:
    """One worker process: one torch thread, a sampler seeded from ``seed`` and each trial's
    number, trials until the budget is met. ``job`` has the run's storage URL and artifact
    folder resolved; ``expected_data`` is the (origin, jets) the run loaded, which the worker's
    own copy must match. A storage proxy that stops answering ends it with
    ``STORAGE_LOST_EXIT_CODE`` and no traceback: the parent says it, once."""
    try:
        _work(index, job, expected_data)
    except Exception as error:
        if _storage_lost(error):
            sys.exit(STORAGE_LOST_EXIT_CODE)
        raise


def _work(index: int, job: StudySettings, expected_data: tuple[str, int]) -> None:
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataSourceWarning)  # the parent has said it once
        data = load(num_data=job.jets, source=job.data)
    if (data.origin, len(data)) != expected_data:
        raise ValueError(
            f"Worker {index} loaded {data.source}, not the {expected_data[1]} jets of "
            f"{expected_data[0]} the run started with: did the data change? Run again."
        )
    study = optuna.load_study(
        study_name=job.study,
        storage=open_storage(job.storage),
        sampler=_TrialSeededSampler(job.sampler, job.seed),
        pruner=make_pruner(job.pruner),
    )
    objective = make_objective(
        data,
        job.space,
        job.max_epochs,
        num_threads=1,
        max_flops=job.max_flops,
        artifacts=artifact_store(job.artifact_dir) if job.keep_models else None,
        accelerator=job.accelerator,
    )

    def recorded(trial: Trial) -> object:
        try:
            return objective(trial)
        except optuna.TrialPruned:
            raise
        except Exception as error:  # recorded, then Optuna marks the trial failed
            trial.set_user_attr("fail_reason", f"{type(error).__name__}: {error}")
            raise

    last: list[FrozenTrial] = []
    fails_in_a_row = 0
    while True:
        taken = _taken(study)
        if taken >= job.n_trials or _rule_says_stop(study, job):
            return
        if job.population > 1 or job.seeds > 1:
            trials = _population_in_worker(study, data, job, job.n_trials - taken)
            failed = all(t.state == TrialState.FAIL for t in trials)
        else:
            study.optimize(
                recorded, n_trials=1, catch=(Exception,), callbacks=[lambda _, t: last.append(t)]
            )
            failed = last and last[-1].state == TrialState.FAIL
        fails_in_a_row = fails_in_a_row + 1 if failed else 0
        if fails_in_a_row >= MAX_FAILS_IN_A_ROW:
            sys.exit(FAILING_EXIT_CODE)


def rule_noise(study: optuna.Study, seeds: int) -> float | None:
    """The stopping rule's noise measured from a study run with ``seeds`` > 1: the median
    seed-to-seed spread of its complete trials over the square root of ``seeds`` (a trial's
    value is a mean over its seeds). ``None`` until a trial has it.

    Args:
        study: the study.
        seeds: training seeds per trial.

    Returns:
        The noise, or ``None``.
    """
    spreads = [
        t.user_attrs["seed_std"]
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "seed_std" in t.user_attrs
    ]
    return float(np.median(spreads)) / math.sqrt(seeds) if spreads and seeds > 1 else None


def _rule_says_stop(study: optuna.Study, job: StudySettings) -> bool:
    """Whether the job's stopping rule (if any) says the study is done."""
    if job.patience is None:
        return False
    noise = job.noise if job.noise is not None else rule_noise(study, job.seeds)
    if noise is None:
        return False
    startup = 0 if job.sampler == "random" else TPE_STARTUP_TRIALS
    return NoImprovementStopper(job.patience, noise, startup).should_stop(study)


def _population_in_worker(
    study: optuna.Study, data: JetData, job: StudySettings, left: int
) -> list[FrozenTrial]:
    """One population (at most ``left`` trials at once, asking no more once the study has its
    budget); an error fails this worker's running trials with the reason (as
    ``study.optimize(catch=...)`` does for one trial) instead of ending the worker."""
    size = min(population_size(study, job.population), left)
    try:
        return optimize_population(
            study,
            data,
            job.space,
            job.max_epochs,
            size,
            seeds=job.seeds,
            n_trials=TRIALS_PER_SHAPE * size,
            keep_asking=lambda: _taken(study) < job.n_trials,
            num_threads=1,
            artifacts=artifact_store(job.artifact_dir) if job.keep_models else None,
            accelerator=job.accelerator,
        )
    except Exception as error:  # noqa: BLE001 (recorded on the trials, as optimize's catch does)
        reason = f"{type(error).__name__}: {error}"
        storage = open_storage(job.storage)
        study_id = storage.get_study_id_from_name(study.study_name)
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial.user_attrs.get("worker", {}).get("pid") == os.getpid():
                _fail_trial(storage, study_id, trial.number, reason)
        return []
