"""Shared fixtures and helpers: small jet data made here (so tests need no network and no
sample), the command-line runner and its arguments, a free port, and the checks that several
test modules share."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from qgtools import search, train
from qgtools.data import JetData
from qgtools.search.storage import _with_installed_driver
from qgtools.stopping import FINISHED


def make_jets(n: int = 2000, seed: int = 0, separation: float = 0.6) -> JetData:
    """Toy N-subjettiness-like data: positive, falling with N, gluons wider than quarks."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    width = np.exp(rng.normal(-1.6 + separation * (0.5 - y), 0.35))
    n_axes = np.arange(1, 16)
    decay = np.exp(-0.45 * (n_axes - 1))[None, :] * rng.uniform(0.8, 1.0, size=(n, 15)).cumprod(
        axis=1
    )
    taus = width[:, None] * decay
    X = np.stack([taus ** (beta**0.3) * beta for beta in (0.5, 1.0, 2.0)], axis=2).reshape(n, 45)
    X[rng.random(n) < 0.02, 42:] = 0.0  # a few jets with too few constituents for 15 axes
    return JetData(X.astype(np.float32), y, origin="toy jets (tests)")


@pytest.fixture
def close_figures():
    """Close every matplotlib figure after the test (``pytest.mark.usefixtures``)."""
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


@pytest.fixture
def jets() -> JetData:
    return make_jets()


@pytest.fixture(scope="module")
def toy_npz(tmp_path_factory) -> Path:
    """6,000 toy jets in an .npz file, for runs of real worker processes."""
    jets = make_jets(6000, seed=5)
    path = tmp_path_factory.mktemp("data") / "toy.npz"
    np.savez(path, X=jets.X, y=jets.y)
    return path


def require(missing: str | None, provider: str) -> None:
    """The rule for a prerequisite a test needs (PostgreSQL, Chromium, SLURM): when ``missing``
    says what is missing, fail in CI (``CI`` set; ``provider`` says what should have provided it),
    else skip saying why."""
    if missing is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must provide it ({provider}): {missing}")
    pytest.skip(missing)


@pytest.fixture
def postgres_url() -> str:
    """The CI's PostgreSQL (QG_TEST_POSTGRES_URL) with a clean schema; skipped without one, except
    in CI, where it fails."""
    url = os.environ.get("QG_TEST_POSTGRES_URL")
    require(
        None if url else "QG_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against",
        ".ci/run starts PostgreSQL",
    )
    import sqlalchemy

    engine = sqlalchemy.create_engine(_with_installed_driver(url))
    with engine.begin() as connection:  # a clean schema for each test
        connection.execute(sqlalchemy.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public;"))
    engine.dispose()
    return url


def trials_in(storage: str, study: str = "toy") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=search.open_storage(storage)).trials


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("Error: "), err
    assert "Traceback" not in err and "again" not in err  # a rerun would not help
    return err


def study_with_one_trial(storage, x: float, name: str = "toy") -> None:
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    study.enqueue_trial({"x": x})
    study.optimize(x_objective, n_trials=1)


def curves(result: train.TrainResult, key: str) -> np.ndarray:
    return np.array([h[key] for h in result.history])


def cli(*args: str, cwd: Path, wait: bool = True, **popen):
    """``python -m qgtools.search ARGS`` in a real process (output merged when not waited for)."""
    command = [sys.executable, "-m", "qgtools.search", *args]
    if not wait:
        return subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
        )
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


def run_args(storage: str, data: Path, trials: int, epochs: int = 1, workers: int = 2) -> list[str]:
    return [
        "run",
        "--study",
        "toy",
        "--storage",
        storage,
        "--data",
        str(data),
        "--jets",
        "-1",
        "--max-epochs",
        str(epochs),
        "--trials",
        str(trials),
        "--workers",
        str(workers),
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def finished(storage: str) -> int:
    return search.count_finished(
        optuna.load_study(study_name="toy", storage=search.open_storage(storage))
    )


def within_budget(n: int, budget: int, workers: int = 2) -> bool:
    """Workers that reach the end of the budget together may each start one last trial (as
    with Optuna's MaxTrialsCallback): a run finishes between budget and budget + workers - 1."""
    return budget <= n <= budget + workers - 1


def running_trial_of_a_stopped_worker(study: optuna.Study, pid: int) -> FrozenTrial | None:
    """Freeze worker `pid` (SIGSTOP) and return its running trial, or resume it and return None.

    Read from a frozen worker, the trial cannot finish between the read and the kill (CI once
    killed a worker whose trial had completed a moment after it was seen running).
    """
    os.kill(pid, signal.SIGSTOP)
    mine = [
        t
        for t in study.get_trials(states=(TrialState.RUNNING,))
        if t.user_attrs.get("worker", {}).get("pid") == pid
    ]
    if mine:
        return mine[0]
    os.kill(pid, signal.SIGCONT)  # between two trials: try again later
    return None


def check_sigkill_recovery(storage: str, data: Path, tmp_path: Path, trials: int = 5) -> None:
    process = cli(*run_args(storage, data, trials=trials, epochs=30), cwd=tmp_path, wait=False)
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            study = optuna.load_study(study_name="toy", storage=search.open_storage(storage))
        except KeyError:
            continue
        running = [
            t for t in study.get_trials(states=(TrialState.RUNNING,)) if "worker" in t.user_attrs
        ]
        if running and search.count_finished(study) >= 1:
            victim = running_trial_of_a_stopped_worker(
                study, running[0].user_attrs["worker"]["pid"]
            )
    assert victim is not None, "no trial was running after 2 minutes"
    before = {t.number for t in study.get_trials(states=FINISHED)}
    os.kill(victim.user_attrs["worker"]["pid"], signal.SIGKILL)
    process.wait(timeout=600)
    study = optuna.load_study(study_name="toy", storage=search.open_storage(storage))
    killed = study.trials[victim.number]
    assert killed.state == TrialState.FAIL
    assert "died mid-trial" in killed.user_attrs["fail_reason"]
    assert before <= {
        t.number for t in study.get_trials(states=FINISHED)
    }  # nothing finished was lost
    assert process.returncode == 0 and within_budget(finished(storage), trials)  # in the same run
    out = cli(*run_args(storage, data, trials=trials, epochs=30), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"already has {finished(storage)} finished trials" in out.stdout


def x_objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0.0, 2.0)


def journal_with_trials(path, n: int = 2, name: str = "toy") -> bytes:
    """A journal holding study ``name`` with ``n`` complete trials; returns its bytes."""
    study = optuna.create_study(
        study_name=name, storage=search.open_storage(path), direction="maximize"
    )
    study.optimize(x_objective, n_trials=n)
    return path.read_bytes()


@pytest.fixture(scope="module")
def data():
    return make_jets(
        4000, seed=3
    )  # 400 validation jets: an AUC that float noise cannot move by 1e-3
