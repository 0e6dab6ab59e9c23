"""Which worker runs a trial, and failing the trials of workers that died: dead processes on this
host, ended SLURM jobs, trials created but never claimed."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, Trial, TrialState

from qgtools.stopping import FINISHED


def record_worker(trial: Trial) -> None:
    """Note which host and process runs the trial (user attribute ``worker``) and, under SLURM,
    which job and array task (``slurm``), so a dead worker's trial can be failed.

    Args:
        trial: the trial this process runs.
    """
    import psutil

    pid = os.getpid()
    trial.set_user_attr(
        "worker",
        {"host": socket.gethostname(), "pid": pid, "started": psutil.Process(pid).create_time()},
    )
    if os.environ.get("SLURM_JOB_ID"):
        trial.set_user_attr(
            "slurm",
            {
                "job_id": os.environ["SLURM_JOB_ID"],
                "array_job_id": os.environ.get("SLURM_ARRAY_JOB_ID"),
                "array_task_id": os.environ.get("SLURM_ARRAY_TASK_ID"),
            },
        )


def _alive(worker: dict) -> bool:
    import psutil

    try:
        process = psutil.Process(worker["pid"])
        if process.status() == psutil.STATUS_ZOMBIE:  # killed, not yet reaped by its parent
            return False
        return abs(process.create_time() - worker["started"]) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError):
        return False


def fail_dead_workers_trials(
    study: optuna.Study, storage: BaseStorage, reasons: Mapping[int, str] | None = None
) -> list[int]:
    """Mark failed the running trials whose worker process on this host no longer exists.

    The journal storage has no heartbeat, so this is how it recovers from a killed worker.
    Trials of other hosts are left alone (their own runs recover them). ``storage`` is the one
    the study was opened with: Optuna's public ``Study`` cannot change a trial it did not ask
    for, but the public ``BaseStorage`` methods can, atomically (``set_trial_state_values``
    returns False when another process finished the trial first). ``reasons`` maps process ids
    to the ``fail_reason`` their trials get (default: the worker died mid-trial). Returns trial
    numbers.

    Args:
        study: the study.
        storage: the storage it was opened with.
        reasons: process id -> the ``fail_reason`` its trials get.

    Returns:
        The trial numbers failed.
    """
    host, failed = socket.gethostname(), []
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if worker and worker.get("host") == host and not _alive(worker):
            reason = (reasons or {}).get(
                worker["pid"], f"worker process {worker['pid']} on {host} died mid-trial"
            )
            if _fail_trial(storage, study_id, trial.number, reason):
                failed.append(trial.number)
    return failed


def _fail_trial(storage: BaseStorage, study_id: int, number: int, reason: str) -> bool:
    """Fail a running trial with ``reason``; False when another process finished it first."""
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    try:
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        return storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


SLURM_LIVE_STATES = {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "CONFIGURING", "SIGNALING"}
"""squeue's states of a job whose processes may still run."""


def slurm_jobs_running(job_ids: Sequence[str]) -> set[str] | None:
    """The ones of ``job_ids`` that SLURM still runs (one ``squeue`` call); ``None`` when squeue
    is missing or cannot say (the controller does not answer).

    Args:
        job_ids: SLURM job ids.

    Returns:
        The ones still running, or ``None``.
    """
    if not job_ids:
        return set()
    try:
        out = subprocess.run(
            ["squeue", "--noheader", "--jobs", ",".join(job_ids), "--format", "%A %T"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:  # "Invalid job id specified": none of them is known any more
        return set() if "Invalid job id" in out.stderr else None
    rows = [line.split() for line in out.stdout.splitlines()]
    return {row[0] for row in rows if len(row) == 2 and row[1] in SLURM_LIVE_STATES}


def fail_ended_slurm_trials(study: optuna.Study, storage: BaseStorage) -> list[int]:
    """Mark failed the running trials whose SLURM job (user attribute ``slurm``) has ended.

    What recovers, on a cluster, the trial of an array task that SLURM killed whole (time
    limit, ``scancel``, a lost node) when no heartbeat does (the gRPC proxy, a journal): each
    task calls it as it starts. Does nothing when squeue cannot answer. Returns trial numbers.

    Args:
        study: the study.
        storage: the storage it was opened with.

    Returns:
        The trial numbers failed.
    """
    mine = os.environ.get("SLURM_JOB_ID")
    running = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if "slurm" in t.user_attrs and t.user_attrs["slurm"].get("job_id") != mine
    ]
    live = slurm_jobs_running(sorted({t.user_attrs["slurm"]["job_id"] for t in running}))
    if live is None:
        return []
    study_id = storage.get_study_id_from_name(study.study_name)
    failed = []
    for trial in running:
        slurm = trial.user_attrs["slurm"]
        if slurm["job_id"] not in live:
            task = slurm.get("array_task_id")
            reason = f"SLURM job {slurm['job_id']}" + (f" (array task {task})" * bool(task))
            if _fail_trial(storage, study_id, trial.number, reason + " ended mid-trial"):
                failed.append(trial.number)
    return failed


def fail_unclaimed_trials(
    study: optuna.Study, storage: BaseStorage, before: set[int], reason: str, grace: float = 1.0
) -> list[int]:
    """Mark failed the running trials this run's workers created but never claimed.

    A worker creates its trial, then records itself on it (:func:`record_worker`); a worker
    stopped between the two leaves a running trial with no ``worker`` attribute, which
    :func:`fail_dead_workers_trials` cannot attribute. Called once every worker of this run has
    stopped: trials not in ``before`` (the trial numbers that existed when the run started)
    that are still running and unclaimed after ``grace`` seconds (a worker of another run
    claims its trial within milliseconds) are failed with ``reason``. Returns trial numbers.

    Args:
        study: the study.
        storage: the storage it was opened with.
        before: the trial numbers that existed when the run started.
        reason: the ``fail_reason`` the trials get.
        grace: seconds to wait before failing them.

    Returns:
        The trial numbers failed.
    """

    def unclaimed() -> list[FrozenTrial]:
        return [
            trial
            for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if trial.number not in before and "worker" not in trial.user_attrs
        ]

    if not unclaimed():
        return []
    time.sleep(grace)
    study_id = storage.get_study_id_from_name(study.study_name)
    return [t.number for t in unclaimed() if _fail_trial(storage, study_id, t.number, reason)]


def count_finished(study: optuna.Study) -> int:
    """Complete and pruned trials (failed ones do not count toward the budget).

    Args:
        study: the study.

    Returns:
        How many of its trials are complete or pruned.
    """
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def _taken(study: optuna.Study) -> int:
    """Finished plus running trials, from one read of the study: two reads could miss a trial
    that finished between them and start one trial too many."""
    states = [trial.state for trial in study.get_trials(deepcopy=False)]
    return sum(state in FINISHED or state == TrialState.RUNNING for state in states)
