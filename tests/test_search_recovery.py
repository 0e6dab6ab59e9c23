"""Failing the trials of dead workers, ended SLURM jobs and unclaimed trials."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from qgtools import search
from qgtools.search.recovery import _alive

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_a_trial_records_its_slurm_task(monkeypatch):
    study = optuna.create_study()
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    plain = study.ask()
    search.record_worker(plain)
    monkeypatch.setenv("SLURM_JOB_ID", "12")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "10")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    task = study.ask()
    search.record_worker(task)
    assert "slurm" not in study.trials[plain.number].user_attrs
    assert study.trials[task.number].user_attrs["slurm"] == {
        "job_id": "12",
        "array_job_id": "10",
        "array_task_id": "2",
    }


def fake_squeue(folder: Path, stdout: str, stderr: str = "", code: int = 0) -> Path:
    """An ``squeue`` that logs its arguments and answers as told."""
    folder.mkdir(exist_ok=True)
    script = folder / "squeue"
    script.write_text(
        f'#!/bin/sh\necho "$@" >> {folder / "calls"}\nprintf "{stdout}"\n'
        f'printf "{stderr}" >&2\nexit {code}\n'
    )
    script.chmod(0o755)
    return folder


@pytest.mark.parametrize(
    "answer, failed",
    [
        (("78 RUNNING\\n",), {77}),  # 77 has ended (squeue no longer lists it)
        (("", "slurm_load_jobs error: Invalid job id specified\\n", 1), {77, 78}),
        (("", "squeue: error: Unable to contact slurm controller\\n", 1), set()),  # cannot say
    ],
)
def test_trials_of_ended_slurm_jobs_are_failed(tmp_path, monkeypatch, answer, failed):
    bin_dir = fake_squeue(tmp_path / "bin", *answer)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "80")  # this task's own trial is never touched
    storage = search.open_storage(str(tmp_path / "s.journal"))
    study = optuna.create_study(study_name="s", storage=storage)
    jobs = {}
    for job in ("77", "78", "80", None):
        trial = study.ask()
        if job:
            trial.set_user_attr("slurm", {"job_id": job, "array_task_id": "1"})
        jobs[trial.number] = job
    numbers = search.fail_ended_slurm_trials(study, storage)
    assert {int(jobs[n]) for n in numbers} == failed
    assert (bin_dir / "calls").read_text().split() == [
        "--noheader",
        "--jobs",
        "77,78",
        "--format",
        "%A",
        "%T",
    ]  # one call, for the other jobs' trials only
    for trial in study.trials:
        if trial.number in numbers:
            assert trial.state == TrialState.FAIL
            assert trial.user_attrs["fail_reason"] == (
                f"SLURM job {jobs[trial.number]} (array task 1) ended mid-trial"
            )
        else:
            assert trial.state == TrialState.RUNNING


def test_a_killed_worker_not_yet_reaped_counts_as_dead():
    """A SIGKILLed child stays a zombie until its parent reaps it: it must not look alive,
    or the run would end with the dead worker's trial still RUNNING."""
    import psutil

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    worker = {"pid": child.pid, "started": psutil.Process(child.pid).create_time()}
    assert _alive(worker)
    os.kill(child.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the killed child never became a zombie"
        time.sleep(0.05)
    assert not _alive(worker)
    child.wait()


def test_a_trial_created_but_never_claimed_by_this_runs_workers_is_failed(tmp_path):
    # A worker stopped between creating its trial and recording itself on it (Ctrl-C or kill -9
    # at that moment) left a running trial nothing could attribute; CI once caught one.
    storage = search.open_storage(tmp_path / "s.journal")
    study = optuna.create_study(study_name="toy", storage=storage, direction="maximize")
    older = study.ask()  # running before this run started: another run's, left alone
    claimed = study.ask()
    claimed.set_user_attr("worker", {"host": "elsewhere", "pid": 1})  # another run's worker
    orphan = study.ask()
    before = {older.number}
    failed = search.fail_unclaimed_trials(study, storage, before, "stopped early", grace=0.0)
    assert failed == [orphan.number]
    states = {t.number: t.state for t in study.trials}
    assert states == {
        older.number: TrialState.RUNNING,
        claimed.number: TrialState.RUNNING,
        orphan.number: TrialState.FAIL,
    }
    assert study.trials[orphan.number].user_attrs["fail_reason"] == "stopped early"
    assert search.fail_unclaimed_trials(study, storage, before, "again", grace=0.0) == []
