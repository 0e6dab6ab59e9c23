"""The newer surfaces under careless use: populations and seeds, the proxy, kept models, repeated
studies and the command line's one-line errors. Each test failed on the code before its fix."""

from __future__ import annotations

import math
import multiprocessing
import socket
import subprocess
import sys
import threading
import time

import optuna
import pytest
from conftest import free_port, journal_with_trials, make_jets, one_line_error, run_args
from optuna.trial import TrialState

from qgtools import search

optuna.logging.set_verbosity(optuna.logging.WARNING)


# ------------------------------------------------------------------ populations and seeds


def test_seeds_refuse_what_they_would_silently_drop(tmp_path, toy_npz, capsys):
    storage = tmp_path / "s.journal"
    extra = ["--max-flops", "1000"]
    assert (
        search.main([*run_args(str(storage), toy_npz, trials=1, workers=1), "--seeds", "2", *extra])
        == 2
    )
    line = one_line_error(capsys)
    assert "seeds=2" in line and extra[0] in line
    assert not storage.exists()
    with pytest.raises(ValueError, match="seeds"):
        search.run_study(
            "toy",
            n_trials=1,
            storage=storage,
            data=toy_npz,
            max_epochs=1,
            seeds=2,
            max_flops=1000,
        )


def test_a_reference_space_population_keeps_its_shape(jets):
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    first = {
        "input_channels": 10,
        "n_layers": 1,
        "n_channels": 8,
        "layer_norm": False,
        "batch_norm": False,
        "hidden_activation": "Tanh",
        "dropout": 0.1,
        "lr": 1e-3,
        "patience": 5,
        "factor": 0.5,
    }
    study.enqueue_trial(first)
    trials = search.optimize_population(
        study, jets, "reference", max_epochs=1, population=2, n_trials=4
    )
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4, [
        t.user_attrs.get("fail_reason") for t in study.trials
    ]
    assert {t.params["input_channels"] for t in trials} == {10}


def _separable_jets():
    return make_jets(600, seed=1, separation=8.0)  # rejection is infinite from the first epoch


def test_a_population_trial_of_infinite_rejection_completes_as_a_single_trial_does():
    jets = _separable_jets()

    def study() -> optuna.Study:
        return optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.RandomSampler(seed=0),
            pruner=search.make_pruner("none"),
        )

    single = study()
    single.optimize(search.make_objective(jets, "cpu", max_epochs=2), n_trials=1)
    assert single.trials[0].state == TrialState.COMPLETE and math.isinf(single.trials[0].value)
    population = study()
    search.optimize_population(population, jets, "cpu", max_epochs=2, population=2, n_trials=4)
    assert [t.state for t in population.trials] == [TrialState.COMPLETE] * 4
    assert any(math.isinf(t.value) for t in population.trials)


def test_seeds_that_cannot_fit_in_memory_are_refused_before_training(tmp_path, toy_npz):
    with pytest.raises(ValueError, match=r"seeds=100000.*GB") as info:
        search.run_study(
            "toy",
            n_trials=1,
            storage=tmp_path / "s.journal",
            data=toy_npz,
            max_epochs=1,
            seeds=100_000,
        )
    assert "memory" in str(info.value)
    assert not (tmp_path / "s.journal").exists()


# ------------------------------------------------------------------ repeated studies


def _no_process(*args, **kwargs):
    raise AssertionError("run_studies started a process before checking its plans")


@pytest.mark.parametrize(
    "plans, kwargs, message",
    [
        ("ok", {"data": "missing.npz"}, "missing.npz"),
        ("ok", {"jets": 0}, "jets=0"),
        ("ok", {"processes": 0}, "processes=0"),
        ("enqueue", {}, "enqueue='hand-tuned' is one string"),
        ("epochs", {}, "max_epochs='2'"),
        ("not a plan", {}, "StudyPlan"),
    ],
)
def test_run_studies_checks_everything_before_any_process(
    tmp_path, toy_npz, monkeypatch, plans, kwargs, message
):
    monkeypatch.setattr(multiprocessing.context.SpawnContext, "Pool", _no_process)
    plan = {
        "ok": [search.StudyPlan("a", 1, 1)],
        "enqueue": [search.StudyPlan("a", 1, 1, enqueue="hand-tuned")],
        "epochs": [search.StudyPlan("a", 1, "2")],
        "not a plan": ["a"],
    }[plans]
    storage = tmp_path / "r.journal"
    with pytest.raises(ValueError, match=message):
        search.run_studies(plan, storage=storage, **{"data": toy_npz, **kwargs})
    assert not storage.exists() or not optuna.get_all_study_names(search.open_storage(storage))


# ------------------------------------------------------------------ the proxy


def test_a_second_proxy_on_a_taken_port_is_refused(tmp_path):
    # the first: the server `search proxy` runs, started here without blocking (as in serve_proxy)
    from optuna.storages._grpc.server import make_server

    port = free_port()
    db = f"sqlite:///{tmp_path / 'p.db'}"
    first = make_server(optuna.storages.get_storage(search.open_storage(db)), "127.0.0.1", port)
    first.start()
    try:
        with pytest.raises(ValueError, match=rf"127.0.0.1:{port}: another process.*another proxy"):
            search.serve_proxy(db, port=port)
    finally:
        first.stop(grace=None).wait()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "0"], "--port 0"),
        (["--port", "-1"], "--port -1"),
        (["--port", "70000"], "--port 70000"),
        (["--host", "999.1.1.1"], "999.1.1.1"),
    ],
)
def test_proxy_addresses_that_cannot_work_are_refused(tmp_path, capsys, args, message):
    assert search.main(["proxy", "--storage", f"sqlite:///{tmp_path / 'p.db'}", *args]) == 2
    line = one_line_error(capsys)
    assert message in line and ("host" in line) == ("--host" in args)
    assert "another proxy" not in line


# ------------------------------------------------------------------ kept models


@pytest.mark.parametrize("artifact_dir", ["", "FILE"])
def test_a_bad_artifact_dir_is_refused_before_anything_is_created(
    tmp_path, toy_npz, capsys, artifact_dir
):
    (tmp_path / "FILE").write_text("not a folder")
    storage = tmp_path / "s.journal"
    folder = artifact_dir and str(tmp_path / artifact_dir)
    args = [*run_args(str(storage), toy_npz, trials=1, workers=1), "--keep-models"]
    assert search.main([*args, "--artifact-dir", folder]) == 2
    assert "--artifact-dir" in one_line_error(capsys)
    assert not storage.exists()
    assert (tmp_path / "FILE").read_text() == "not a folder"


# ------------------------------------------------------------------ the command line


@pytest.mark.parametrize("command", ["run", "report"])
def test_a_bad_qg_fast_is_one_line(tmp_path, toy_npz, capsys, monkeypatch, command):
    storage = str(tmp_path / "s.journal")
    monkeypatch.setenv("QG_FAST", "maybe")
    args = (
        run_args(storage, toy_npz, trials=1, workers=1)
        if command == "run"
        else ["report", "--study", "toy", "--storage", storage]
    )
    assert search.main(args) == 2
    assert "QG_FAST='maybe'" in one_line_error(capsys)


def test_noise_without_patience_is_refused(tmp_path, toy_npz, capsys):
    args = run_args(str(tmp_path / "s.journal"), toy_npz, trials=1, workers=1)
    assert search.main([*args, "--noise", "1.0"]) == 2
    line = one_line_error(capsys)
    assert "--noise" in line and "--patience" in line


def test_a_budget_below_every_network_is_said_before_training(tmp_path, toy_npz, capsys):
    storage = tmp_path / "s.journal"
    journal_with_trials(storage, n=2)  # the budget is met: no worker starts
    args = run_args(str(storage), toy_npz, trials=2, workers=1)
    assert search.main([*args, "--max-flops", "100"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "max_flops=100 (--max-flops) is below the cheapest network" in first
    assert "(1,472 FLOPs per jet)" in first  # 1 x 16, the cpu space's smallest


def test_a_report_of_failed_trials_gives_their_reasons(tmp_path, capsys):
    storage = search.open_storage(tmp_path / "f.journal")
    study = optuna.create_study(study_name="failed", storage=storage, direction="maximize")
    for reason in ("out of memory", "out of memory", "the data file vanished"):
        trial = study.ask()
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=TrialState.FAIL)
    search.report("failed", storage=tmp_path / "f.journal", out=tmp_path / "reports")
    out = capsys.readouterr().out
    assert "out of memory (2 trials)" in out and "the data file vanished (1 trial)" in out


def test_a_proxy_killed_mid_run_is_said_in_one_line(tmp_path, toy_npz, capfd):
    port, db = free_port(), f"sqlite:///{tmp_path / 'p.db'}"
    proxy = subprocess.Popen(
        [sys.executable, "-m", "qgtools.search", "proxy", "--storage", db, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def kill_once_a_trial_runs() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            names = optuna.get_all_study_names(search.open_storage(db))
            if names and optuna.load_study(study_name="toy", storage=db).trials:
                proxy.kill()
                return
            time.sleep(0.3)

    try:
        with socket.socket() as probe:  # the proxy answers
            deadline = time.monotonic() + 60
            while probe.connect_ex(("127.0.0.1", port)) and time.monotonic() < deadline:
                time.sleep(0.2)
        killer = threading.Thread(target=kill_once_a_trial_runs)
        killer.start()
        with pytest.raises(ValueError, match="stopped answering mid-run.*start it again"):
            search.run_study(
                "toy",
                n_trials=50,
                storage=f"grpc://127.0.0.1:{port}",
                data=toy_npz,
                max_epochs=20,
                progress=False,
            )
        killer.join()
    finally:
        proxy.kill()
    assert "Traceback" not in capfd.readouterr().err  # neither the run's nor its worker's
