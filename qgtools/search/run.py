"""``run_study``: create, join or top up a study and run it with W worker processes."""

from __future__ import annotations

import os
from collections.abc import Sequence

import optuna
from optuna.trial import TrialState

from qgtools.data import load
from qgtools.search.artifacts import artifact_store, artifacts_beside, model_file
from qgtools.search.objective import SPLIT_SEED, check_max_flops
from qgtools.search.recovery import (
    count_finished,
    fail_dead_workers_trials,
    fail_ended_slurm_trials,
)
from qgtools.search.samplers import make_pruner, make_sampler
from qgtools.search.settings import _check_settings
from qgtools.search.spaces import SPACES, _check_known, enqueue_known
from qgtools.search.storage import open_storage
from qgtools.search.summary import StudySummary, _best_trial
from qgtools.search.supervise import _run_workers
from qgtools.search.urls import _in_memory, _mask, storage_url
from qgtools.search.workers import FAILING_EXIT_CODE, _Job, _rule_says_stop
from qgtools.stopping import check_rule


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
) -> StudySummary:
    """Create, join or top up a study and run it with ``workers`` processes until it has
    ``n_trials`` finished trials.

    Each worker is a spawned process with one torch thread that loads the data itself
    (``data``, first ``jets`` jets), trains configurations of ``space`` for ``max_epochs`` and
    samples with ``sampler`` seeded from ``seed`` and the trial's number (so reruns and runs
    started at once never repeat a configuration, and a fresh study run the same way with one
    worker gets the same trials). Trials of workers that died are marked failed (here and at
    the next run), and a worker killed by a signal is replaced while the budget is not met.
    Workers that reach the end of the budget together may each start one last trial, so a run
    can finish up to ``workers - 1`` trials more than ``n_trials`` (as with Optuna's
    ``MaxTrialsCallback``). Ctrl-C stops the workers, marks their running trials failed
    ("interrupted") and raises ``KeyboardInterrupt``. Bad arguments and data are
    ``ValueError`` before any worker starts or any storage is touched. What ``python -m
    qgtools.search run`` calls.

    The study records the settings that make its trials comparable (the data's origin and jet
    count, the split seed, the space and ``max_epochs``) in its user attribute ``settings``
    when a run first meets it; a later run with other settings is refused (``ValueError``)
    unless ``allow_mismatch``.

    With ``population`` K > 1 each worker trains K trials at a time as one population
    (:func:`optimize_population`): one shape, drawn by the sampler, for ``TRIALS_PER_SHAPE`` x K
    trials, a new trial taking each place that a finished or pruned one frees. With ``seeds``
    S > 1 each trial's value is the mean over S training seeds (S members each). Both are
    recorded settings.

    Beyond the defaults (notebook 09): ``enqueue`` names configurations of
    ``KNOWN_CONFIGURATIONS`` to train first (a warm start, cpu space; queued once per study);
    ``max_flops`` makes a FLOPs-per-jet budget a constraint (a recorded setting; the best trial
    is the best feasible one); ``keep_models`` stores each complete trial's model in
    ``artifact_dir`` (default :func:`artifacts_beside` the storage); ``patience`` stops the
    study early, when that many finished trials in a row have not improved the best value by
    more than ``noise`` (given, or with ``seeds`` > 1 measured, see :func:`rule_noise`), never
    within the sampler's random start-up (``qgtools.stopping.stop_point``'s ``startup``:
    ``TPE_STARTUP_TRIALS`` for TPE and the GP, 0 for random search).

    Returns:
        A :class:`StudySummary`; ``status`` says whether the budget was met.
    """
    if min(n_trials, workers, max_epochs, population, seeds) < 1:
        raise ValueError(
            f"n_trials={n_trials}, workers={workers}, max_epochs={max_epochs}, "
            f"population={population} and seeds={seeds} must be positive."
        )
    if seed < 0:
        raise ValueError(f"seed={seed}: use a seed of 0 or more.")
    if space not in SPACES:
        raise ValueError(f"Unknown space {space!r}: use one of {sorted(SPACES)}.")
    make_pruner(pruner)  # unknown names fail here, not in every worker
    make_sampler(sampler, seed)
    if enqueue and space != "cpu":
        raise ValueError(f"enqueue={list(enqueue)}: the known configurations are cpu-space ones.")
    if population > 1 and (enqueue or max_flops is not None or keep_models):
        raise ValueError(
            "A population (population > 1) shares one shape per population: it takes no "
            "enqueued configurations, FLOPs budget or kept models. Run with population=1."
        )
    _check_known(enqueue)
    check_max_flops(max_flops)
    if patience is not None:
        if noise is None and seeds == 1:
            raise ValueError(
                f"patience={patience} needs the noise of a trial's value: give noise (--noise, "
                "the seed-to-seed spread of one configuration), or run with seeds > 1 "
                "(--seeds 3) to have it measured."
            )
        check_rule(patience, 0.0 if noise is None else noise)
    if isinstance(jets, bool) or not isinstance(jets, int) or jets == 0 or jets < -1:
        raise ValueError(f"jets={jets!r}: use -1 for all jets or a positive number of jets.")
    if "/" in study or "\\" in study or not study.strip():
        raise ValueError(
            f"Study name {study!r}: use a non-empty name without '/' or '\\' (the report "
            "names its plot files after the study)."
        )
    url = storage_url(storage)  # resolved once: the workers get it as it is
    if _in_memory(url):
        raise ValueError(
            f"Storage {_mask(url)!r} is an in-memory database, which the worker processes "
            "cannot share: use a file (sqlite:///studies.db) or a journal (studies.journal)."
        )
    loaded = load(num_data=jets, source=data)  # bad data fails here once, not in every worker
    settings = {
        "data": loaded.origin,
        "jets": len(loaded),
        "split_seed": SPLIT_SEED,
        "space": space,
        "max_epochs": max_epochs,
        "population": population,
        "seeds": seeds,
        "max_flops": max_flops,
    }
    del loaded  # each worker loads its own copy
    opened = open_storage(url)
    the_study = optuna.create_study(
        study_name=study,
        storage=opened,
        load_if_exists=True,
        direction="maximize",
        sampler=make_sampler(sampler, seed),
        pruner=make_pruner(pruner),
    )
    _check_settings(the_study, settings, allow_mismatch)
    artifacts = None
    if keep_models:
        artifacts = str(artifact_dir if artifact_dir is not None else artifacts_beside(url))
        artifact_store(artifacts)  # a bad folder fails here, not in every worker
    enqueue_known(the_study, enqueue)
    recovered = fail_dead_workers_trials(the_study, opened)
    if os.environ.get("SLURM_JOB_ID"):  # a task of a job array: others may have been killed
        recovered += fail_ended_slurm_trials(the_study, opened)
    job = _Job(
        study=study,
        storage=url,
        n_trials=n_trials,
        data=str(data),
        jets=jets,
        space=space,
        sampler=sampler,
        pruner=pruner,
        max_epochs=max_epochs,
        seed=seed,
        expected_data=(settings["data"], settings["jets"]),
        population=population,
        seeds=seeds,
        max_flops=max_flops,
        artifacts=artifacts,
        patience=patience,
        noise=noise,
    )
    codes: list[int | None] = []
    if count_finished(the_study) < n_trials and not _rule_says_stop(the_study, job):
        codes = _run_workers(the_study, opened, job, workers, progress)
    finished = count_finished(the_study)
    failed = the_study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    best = _best_trial(the_study)
    if FAILING_EXIT_CODE in codes:
        status = "failing"
    elif finished >= n_trials:
        status = "done"
    else:
        status = "stopped" if _rule_says_stop(the_study, job) else "incomplete"
    best_model = None
    if best is not None and artifacts and "model_artifact" in best.user_attrs:
        best_model = str(model_file(best, artifacts))
    return StudySummary(
        study=study,
        n_trials=n_trials,
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
