"""Optuna's gRPC storage proxy, run by the command line in front of PostgreSQL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import optuna
import pytest
from conftest import check_sigkill_recovery, cli, free_port, run_args, trials_in, within_budget
from optuna.trial import TrialState

from qgtools import search
from qgtools.search import storage as storage_module
from qgtools.stopping import FINISHED

optuna.logging.set_verbosity(optuna.logging.WARNING)


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
    # (BaseHeartbeat is private: Optuna exports no public type for a storage with one)
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
