"""The SLURM job-array script run by a real SLURM (``scripts/slurm_cluster.sh`` starts one;
``.ci/run`` does in CI)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import require, trials_in
from optuna.trial import TrialState

from qgtools.stopping import FINISHED

optuna.logging.set_verbosity(optuna.logging.WARNING)


ROOT = Path(__file__).resolve().parents[1]


ARRAY_SCRIPT = ROOT / "scripts" / "slurm_search.sh"


LIVE_NODE_STATES = ("idle", "mixed", "allocated", "completing")


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


def wait_for_array(job: str, timeout: float) -> dict[int, tuple[str, str]]:
    """Each task's (state, exit code) once job array ``job`` has left the queue, polled every
    0.25 s (``sbatch --wait`` polls at growing intervals, up to 10 s apart)."""
    deadline = time.monotonic() + timeout
    while subprocess.run(
        ["squeue", "--noheader", "--jobs", job], capture_output=True, text=True
    ).stdout.strip():
        assert time.monotonic() < deadline, f"job array {job} still queued after {timeout} s"
        time.sleep(0.25)
    shown = subprocess.run(
        ["scontrol", "show", "job", "-o", job], capture_output=True, text=True, check=True
    ).stdout
    states = {}
    for line in shown.splitlines():
        fields = dict(field.split("=", 1) for field in line.split() if "=" in field)
        states[int(fields["ArrayTaskId"])] = (fields["JobState"], fields["ExitCode"])
    return states


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
        "QG_EPOCHS": "8",  # with --pruner none: both tasks of the first pair run trials
        "QG_STUDY": "array",
    }
    out = subprocess.run(
        ["sbatch", "--parsable", f"--array=0-{tasks - 1}", str(ARRAY_SCRIPT), "--pruner", "none"],
        cwd=submit,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    job = out.stdout.strip().split(";")[0]
    states = wait_for_array(job, timeout=600)
    assert states == {task: ("COMPLETED", "0:0") for task in range(tasks)}, states
    logs = sorted(path.name for path in (submit / "logs").iterdir())
    assert logs == [f"qg-hpo-{job}_{task}.out" for task in range(tasks)]
    assert [path.name for path in submit.iterdir()] == ["logs"]  # SLURM's empty files removed
    for task in range(tasks):
        text = (submit / "logs" / logs[task]).read_text()
        assert f"Task {task} of job {job}" in text and "Traceback" not in text, text
        assert postgres_url.split("@")[0] not in text  # the password stays out of the logs
    trials = trials_in(postgres_url, "array")
    done = [t for t in trials if t.state in FINISHED]
    assert budget <= len(done) <= budget + tasks - 1
    assert [t.number for t in trials] == list(range(len(trials)))
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert {t.user_attrs["slurm"]["array_job_id"] for t in trials} == {job}
    assert len({t.user_attrs["slurm"]["array_task_id"] for t in done}) >= 2


def test_the_array_script_outside_slurm_keeps_the_user_s_output_file(tmp_path):
    """`bash scripts/slurm_search.sh > mine.log` off a cluster: only SLURM's own file is removed."""
    mine = tmp_path / "mine.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "QG_"))}
    env["QG_LOGS"] = str(tmp_path / "logs")
    with mine.open("w") as out:
        done = subprocess.run(["bash", str(ARRAY_SCRIPT)], stdout=out, env=env, timeout=60)
    assert done.returncode != 0  # no QG_STORAGE: refused, said in the task's log
    assert mine.exists(), "the script deleted the user's own output file"
    (log,) = (tmp_path / "logs").iterdir()
    assert "set QG_STORAGE" in log.read_text()
