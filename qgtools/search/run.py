"""``run_study``: create, join or top up a study and run it with W worker processes."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import optuna
from optuna.trial import TrialState

from qgtools.data import load
from qgtools.model import flops_per_jet
from qgtools.search.artifacts import artifact_store, artifacts_beside, model_file
from qgtools.search.recovery import (
    count_finished,
    fail_dead_workers_trials,
    fail_ended_slurm_trials,
)
from qgtools.search.samplers import make_pruner, make_sampler
from qgtools.search.settings import StudySettings, _check_settings
from qgtools.search.spaces import enqueue_known, extreme_network
from qgtools.search.storage import open_storage
from qgtools.search.summary import StudySummary, _best_trial
from qgtools.search.supervise import _run_workers
from qgtools.search.urls import _in_memory, _mask, storage_url
from qgtools.search.workers import FAILING_EXIT_CODE, _rule_says_stop


def run_study(
    study: str,
    *,
    n_trials: int,
    workers: int = 1,
    storage: str | os.PathLike | None = None,
    data: str | os.PathLike = "auto",
    jets: int = -1,
    space: str = "cpu",
    sampler: str = "tpe",
    pruner: str = "median",
    max_epochs: int = 5,
    seed: int = 0,
    progress: bool = True,
    allow_mismatch: bool = False,
    population: int = 1,
    seeds: int = 1,
    enqueue: Sequence[str] = (),
    max_flops: float | None = None,
    keep_models: bool = False,
    artifact_dir: str | os.PathLike | None = None,
    patience: int | None = None,
    noise: float | None = None,
    accelerator: str = "auto",
) -> StudySummary:
    """Create, join or top up a study and run it with ``workers`` processes until it has
    ``n_trials`` finished trials; what ``python -m qgtools.search run`` calls (notebook 06).

    Each worker is a spawned process with one torch thread that loads the data itself and
    samples seeded from ``seed`` and each trial's number (reruns and runs started at once never
    repeat a configuration; a fresh study run the same way with one worker gets the same
    trials). Trials of dead workers are failed, here and at the next run; a worker killed by a
    signal is replaced while the budget is not met. Workers that reach the end together may
    each start one last trial (up to ``workers - 1`` over, as with ``MaxTrialsCallback``). The
    study records the settings that make its trials comparable (:meth:`StudySettings.recorded`)
    when a run first meets it; a later run with others is refused unless ``allow_mismatch``.

    Args:
        study, n_trials, workers, storage, data, jets, space, sampler, pruner, max_epochs,
            seed, allow_mismatch: as :class:`StudySettings` has them.
        progress: show a progress bar of the finished trials.
        population: K > 1: each worker trains K trials at a time as one population of one
            shape (:func:`optimize_population`), for ``TRIALS_PER_SHAPE`` x K trials, a new
            trial taking each place a finished one frees (a recorded setting).
        seeds: S > 1: each trial's value is the mean over S training seeds (recorded).
        enqueue: names of ``KNOWN_CONFIGURATIONS`` to train first (a warm start, cpu space;
            queued once per study; notebook 09).
        max_flops: a FLOPs-per-jet budget as a constraint (recorded; the best trial is the best
            feasible one).
        keep_models: store each complete trial's model in ``artifact_dir`` (default
            :func:`artifacts_beside` the storage); with ``seeds`` > 1, the ensemble of its
            seeds' models (:func:`trial_model`).
        patience, noise: stop when ``patience`` finished trials in a row have not beaten the
            best by more than ``noise`` (given, or with ``seeds`` > 1 :func:`rule_noise`), never
            within the sampler's start-up (``TPE_STARTUP_TRIALS``; 0 for random search).
        accelerator: where the workers train (``auto``: a GPU if torch sees one); not recorded.

    Returns:
        A :class:`StudySummary`; its ``status`` says whether the budget was met.

    Raises:
        ValueError: bad settings (:class:`StudySettings`), data or storage, or settings the
            study did not record, before any worker starts.
        KeyboardInterrupt: on Ctrl-C, once the workers are stopped and their running trials
            failed ("interrupted").

    Example::

        summary = run_study("demo", n_trials=20, workers=2, data="sample", max_epochs=3)
    """
    given = {name: value for name, value in locals().items() if name != "progress"}
    return _run(StudySettings(**given), progress=progress)  # the keywords are its fields


def _run(settings: StudySettings, progress: bool = True) -> StudySummary:
    """Run a study with ``settings`` (see :func:`run_study`)."""
    url = storage_url(settings.storage)  # resolved once: the workers get it as it is
    if _in_memory(url):
        raise ValueError(
            f"Storage {_mask(url)!r} is an in-memory database, which the worker processes "
            "cannot share: use a file (sqlite:///studies.db) or a journal (studies.journal)."
        )
    loaded = load(num_data=settings.jets, source=settings.data)  # fails here, not per worker
    recorded, expected = settings.recorded(loaded), (loaded.origin, len(loaded))
    del loaded  # each worker loads its own copy
    _say_if_nothing_fits(settings)
    opened = open_storage(url)
    the_study = optuna.create_study(
        study_name=settings.study,
        storage=opened,
        load_if_exists=True,
        direction="maximize",
        sampler=make_sampler(settings.sampler, settings.seed),
        pruner=make_pruner(settings.pruner),
    )
    _check_settings(the_study, recorded, settings.allow_mismatch)
    artifacts = None
    if settings.keep_models:
        given = settings.artifact_dir
        artifacts = str(given if given is not None else artifacts_beside(url))
        artifact_store(artifacts)  # a bad folder fails here, not in every worker
    enqueue_known(the_study, settings.enqueue)
    recovered = fail_dead_workers_trials(the_study, opened)
    if os.environ.get("SLURM_JOB_ID"):  # a task of a job array: others may have been killed
        recovered += fail_ended_slurm_trials(the_study, opened)
    settings = dataclasses.replace(settings, storage=url, artifact_dir=artifacts)
    codes: list[int | None] = []
    if count_finished(the_study) < settings.n_trials and not _rule_says_stop(the_study, settings):
        codes = _run_workers(the_study, opened, settings, expected, progress)
    return _summary(the_study, settings, codes, recovered)


def _say_if_nothing_fits(settings: StudySettings) -> None:
    """One line, before any worker starts, when no network of the space fits ``max_flops``."""
    if settings.max_flops is None:
        return
    cheapest = flops_per_jet(extreme_network(settings.space, largest=False))
    if settings.max_flops < cheapest:
        print(
            f"Note: max_flops={settings.max_flops:,.0f} (--max-flops) is below the cheapest "
            f"network the {settings.space} space can draw ({cheapest:,} FLOPs per jet): every "
            "trial will be infeasible and pruned untrained. Raise the budget to search.",
            flush=True,
        )


def _summary(
    the_study: optuna.Study,
    settings: StudySettings,
    codes: list[int | None],
    recovered: list[int],
) -> StudySummary:
    """What the run leaves behind."""
    finished = count_finished(the_study)
    failed = the_study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    best = _best_trial(the_study)
    if FAILING_EXIT_CODE in codes:
        status = "failing"
    elif finished >= settings.n_trials:
        status = "done"
    else:
        status = "stopped" if _rule_says_stop(the_study, settings) else "incomplete"
    best_model = None
    artifacts = settings.artifact_dir if settings.keep_models else None
    if best is not None and artifacts and "model_artifact" in best.user_attrs:
        best_model = str(model_file(best, artifacts))
    return StudySummary(
        study=settings.study,
        n_trials=settings.n_trials,
        finished=finished,
        status=status,
        best_number=best.number if best else None,
        best_value=best.value if best else None,
        best_params=dict(best.params) if best else {},
        recovered=tuple(recovered),
        exit_codes=tuple(codes),
        last_fail_reason=failed[-1].user_attrs.get("fail_reason") if failed else None,
        best_model=best_model,
    )
