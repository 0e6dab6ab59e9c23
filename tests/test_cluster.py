"""The cluster path: Optuna's gRPC storage proxy in front of PostgreSQL, and the SLURM job-array
script run by a real SLURM (``scripts/slurm_cluster.sh`` starts one; ``.ci/run`` does in CI).

Without PostgreSQL or SLURM these tests skip, saying why; with ``CI=true`` they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import require
from optuna.trial import TrialState
from test_search import check_sigkill_recovery, cli, run_args, within_budget

from qgtools import search
from qgtools.search import storage as storage_module
from qgtools.stopping import FINISHED

ROOT = Path(__file__).resolve().parents[1]
ARRAY_SCRIPT = ROOT / "scripts" / "slurm_search.sh"
LIVE_NODE_STATES = ("idle", "mixed", "allocated", "completing")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def proxy(postgres_url, tmp_path):
    """``grpc://127.0.0.1:PORT``: a proxy (the command line's) in front of the CI's PostgreSQL."""
    port = free_port()
    log = open(tmp_path / "proxy.log", "w")  # the proxy writes it while it runs
    process = subprocess.Popen(
        [sys.executable, "-m", "qgtools.search", "proxy", "--port", str(port)],
        env={**os.environ, "QG_STORAGE": postgres_url},  # as users run it: no URL in argv
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"grpc://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while "on 127.0.0.1" not in (tmp_path / "proxy.log").read_text():
        assert process.poll() is None, (tmp_path / "proxy.log").read_text()
        assert time.monotonic() < deadline, "the proxy did not start in 2 minutes"
        time.sleep(0.2)
    yield url
    process.terminate()  # SIGTERM: the proxy stops cleanly
    assert process.wait(timeout=60) == 0, (tmp_path / "proxy.log").read_text()
    log.close()


def trials_in(storage: str, study: str = "toy") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=search.open_storage(storage)).trials


# --------------------------------------------------------------------------- the proxy


def test_eight_workers_through_the_proxy_lose_and_duplicate_nothing(
    toy_npz, tmp_path, proxy, postgres_url
):
    out = cli(*run_args(proxy, toy_npz, trials=16, epochs=1, workers=8), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    trials = trials_in(proxy)
    done = [t for t in trials if t.state in FINISHED]
    assert within_budget(len(done), 16, workers=8)
    assert [t.number for t in trials] == list(range(len(trials)))  # none lost, none twice
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.FAIL)]
    assert len({json.dumps(t.params, sort_keys=True) for t in done}) == len(done)
    assert len({t.user_attrs["worker"]["pid"] for t in done}) >= 2
    # what the workers wrote through the proxy is what the database holds
    direct = trials_in(postgres_url)
    assert [(t.number, t.state, t.value) for t in direct] == [
        (t.number, t.state, t.value) for t in trials
    ]


def test_a_killed_worker_s_trial_through_the_proxy_is_failed(toy_npz, tmp_path, proxy):
    # the proxy has no heartbeat: the run on the worker's host fails its trial (process check)
    assert not isinstance(search.open_storage(proxy), optuna.storages._heartbeat.BaseHeartbeat)
    check_sigkill_recovery(proxy, toy_npz, tmp_path, trials=3)


def test_proxy_addresses_and_storages_are_checked(monkeypatch, tmp_path, capsys):
    for bad in ("grpc://127.0.0.1", "grpc://:13000", "grpc://host:port", "grpc://h:1/db"):
        with pytest.raises(ValueError, match=r"grpc://HOST:PORT"):
            search.open_storage(bad)
    monkeypatch.setattr(storage_module, "PROXY_WAIT_S", 0.5)
    port = free_port()  # nothing listens there
    with pytest.raises(ValueError, match=rf"No gRPC storage proxy answers at 127.0.0.1:{port}"):
        search.open_storage(f"grpc://127.0.0.1:{port}")
    for storage in (str(tmp_path / "s.journal"), "grpc://127.0.0.1:13000", "sqlite://"):
        with pytest.raises(ValueError, match=r"database|in memory"):
            search.serve_proxy(storage, port=port)
    assert search.main(["proxy", "--storage", str(tmp_path / "s.journal")]) == 2  # the CLI's
    assert "The proxy fronts a database" in capsys.readouterr().err


def test_a_taken_port_is_said(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=rf"cannot listen on 127.0.0.1:{port}.*another --port"):
            search.serve_proxy(f"sqlite:///{tmp_path / 's.db'}", port=port)


# --------------------------------------------------------------------------- SLURM tasks


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


def slurm_missing() -> str | None:
    """Why no SLURM cluster can take a job here, or None."""
    if shutil.which("sbatch") is None:
        return (
            "SLURM is not installed: apt install slurm-wlm munge, then "
            "`sudo scripts/slurm_cluster.sh start` and export the SLURM_CONF it prints"
        )
    conf = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))
    if not conf.is_file():
        return (
            f"no SLURM configuration at {conf}: `sudo scripts/slurm_cluster.sh start` starts a "
            "cluster on this machine; export the SLURM_CONF it prints"
        )
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return f"sinfo did not answer in 30 s (configuration {conf}): is slurmctld running?"
    if out.returncode != 0 or not any(s.startswith(LIVE_NODE_STATES) for s in out.stdout.split()):
        said = (out.stderr.strip() or out.stdout.strip() or "no node").splitlines()[0]
        return (
            f"no SLURM cluster answers ({said}): `sudo scripts/slurm_cluster.sh start` starts one "
            "on this machine; export the SLURM_CONF it prints"
        )
    return None


@pytest.fixture
def slurm() -> None:
    require(slurm_missing(), ".ci/run starts SLURM")


def test_the_job_array_script_meets_the_budget_on_slurm(toy_npz, tmp_path, postgres_url, slurm):
    submit = tmp_path / "elsewhere"  # not the project: the script must work from any folder
    submit.mkdir()
    budget, tasks = 8, 4
    env = {
        **os.environ,
        "QG_STORAGE": postgres_url,  # in the environment, never on a command line
        "QG_PYTHON": sys.executable,
        "QG_DATA": str(toy_npz),
        "QG_TRIALS": str(budget),
        "QG_EPOCHS": "20",  # with --pruner none, trials long enough for two tasks to overlap
        "QG_STUDY": "array",
    }
    out = subprocess.run(
        ["sbatch", f"--array=0-{tasks - 1}", "--wait", str(ARRAY_SCRIPT), "--pruner", "none"],
        cwd=submit,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    job = out.stdout.split()[-1]  # "Submitted batch job 12"
    logs = sorted(path.name for path in (submit / "logs").iterdir())
    assert logs == [f"qg-hpo-{job}_{task}.out" for task in range(tasks)]
    assert [path.name for path in submit.iterdir()] == ["logs"]  # SLURM's empty files removed
    for task in range(tasks):
        text = (submit / "logs" / logs[task]).read_text()
        assert f"Task {task} of job {job}" in text and "Traceback" not in text, text
    trials = trials_in(postgres_url, "array")
    done = [t for t in trials if t.state in FINISHED]
    assert budget <= len(done) <= budget + tasks - 1
    assert [t.number for t in trials] == list(range(len(trials)))
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert {t.user_attrs["slurm"]["array_job_id"] for t in trials} == {job}
    assert len({t.user_attrs["slurm"]["array_task_id"] for t in done}) >= 2
    assert postgres_url.split("@")[0] not in out.stdout + out.stderr


def _open_after(barrier, url: str, results) -> None:
    barrier.wait()
    try:
        search.open_storage(url)
        results.put("ok")
    except ValueError as error:
        results.put(str(error))


def test_tasks_that_open_a_fresh_database_at_once_all_get_it(postgres_url):
    # a job array's first tasks start together, and each creates Optuna's tables if missing
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(6), context.Queue()
    processes = [
        context.Process(target=_open_after, args=(barrier, postgres_url, results)) for _ in range(6)
    ]
    for process in processes:
        process.start()
    said = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert said == ["ok"] * 6, said
