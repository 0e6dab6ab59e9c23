from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from conftest import make_jets
from optuna.trial import FrozenTrial, TrialState

from qgtools import search
from qgtools.model import HParams
from qgtools.stopping import FINISHED

optuna.logging.set_verbosity(optuna.logging.WARNING)


# --------------------------------------------------------------------------- spaces and objective


@pytest.mark.parametrize("name", ["cpu", "reference"])
def test_spaces_give_valid_hparams_with_conditional_parameters(name):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(40):
        trial = study.ask()
        hp = search.SPACES[name](trial)
        assert isinstance(hp, HParams)
        study.tell(trial, 0.0)
        if name == "cpu":
            assert ("dropout" in trial.params) == trial.params["use_dropout"]
            assert ("patience" in trial.params) == trial.params["lr_decay"]
            assert hp.factor == (trial.params["factor"] if trial.params["lr_decay"] else 1.0)
        else:
            assert 2 <= hp.input_channels <= 45 and 8 <= hp.n_channels <= 2048


def test_objective_stores_hparams_and_prunes(jets):
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=1),
        pruner=optuna.pruners.ThresholdPruner(upper=0.0),
    )  # prunes every reported epoch
    study.optimize(search.make_objective(jets, "cpu", max_epochs=2), n_trials=2)
    for trial in study.trials:
        assert trial.state == TrialState.PRUNED
        assert search.hparams_of(trial).max_epochs == 2
        assert trial.user_attrs["worker"]["pid"] == os.getpid()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(search.make_objective(jets, "cpu", max_epochs=2), n_trials=2)
    best = study.best_trial
    assert best.state == TrialState.COMPLETE and best.value > 1
    assert search.hparams_of(best).batch_size == best.params["batch_size"]


def test_multi_objective_returns_rejection_and_size(jets):
    study = optuna.create_study(
        directions=search.directions(("val_rejection", "n_params")),
        sampler=optuna.samplers.RandomSampler(seed=2),
    )
    study.optimize(
        search.make_objective(jets, "cpu", 1, metric=("val_rejection", "n_params")), n_trials=3
    )
    for trial in study.trials:
        assert trial.values[1] == trial.user_attrs["n_params"]
    assert study.directions[1] == optuna.study.StudyDirection.MINIMIZE


def test_a_diverged_trial_fails_with_its_reason_and_the_study_goes_on(jets):
    def wild(trial):
        return HParams(
            n_layers=2,
            n_channels=16,
            layer_norm=False,
            batch_norm=False,
            dropout=0.0,
            lr=trial.suggest_float("lr", 1e29, 1e30),
            hidden_activation="ReLU",
            batch_size=64,
        )

    study = optuna.create_study(direction="maximize")
    study.optimize(search.make_objective(jets, wild, max_epochs=4), n_trials=2)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]
    assert study.trials[0].user_attrs["fail_reason"].startswith("diverged")


def test_run_study_checks_its_arguments_before_starting_workers(tmp_path):
    journal = tmp_path / "s.journal"
    with pytest.raises(ValueError, match="n_trials=0"):
        search.run_study("x", n_trials=0, storage=journal)
    with pytest.raises(ValueError, match="Unknown space 'gpu'"):
        search.run_study("x", n_trials=1, storage=journal, space="gpu")
    with pytest.raises(ValueError, match="Unknown pruner"):
        search.run_study("x", n_trials=1, storage=journal, pruner="asha")
    assert not journal.exists() or "x" not in journal.read_text()


def test_a_study_already_at_its_budget_starts_no_worker(tmp_path, jets):
    journal = tmp_path / "s.journal"
    study = optuna.create_study(
        study_name="full", storage=search.open_storage(journal), direction="maximize"
    )
    study.enqueue_trial({"x": 1.0})
    study.optimize(lambda t: t.suggest_float("x", 0, 2), n_trials=1)
    summary = search.run_study("full", n_trials=1, storage=journal, data="sample", progress=False)
    assert (summary.status, summary.exit_codes, summary.best_value) == ("done", (), 1.0)


def test_unknown_names_are_errors():
    with pytest.raises(ValueError, match="Unknown metric"):
        search.directions("accuracy")
    with pytest.raises(ValueError, match="Unknown sampler 'cmaes'"):
        search.make_sampler("cmaes", 0)
    with pytest.raises(ValueError, match="Unknown pruner"):
        search.make_pruner("asha")


@pytest.mark.parametrize("n_startup_trials", [None, 0, 3])
def test_tpes_start_up_trials_are_the_random_samplers_draws_of_the_same_seed(n_startup_trials):
    def objective(trial):
        return trial.suggest_float("x", 0, 1) + trial.suggest_int("n", 1, 4)

    k = search.TPE_STARTUP_TRIALS if n_startup_trials is None else n_startup_trials
    given = {} if n_startup_trials is None else {"n_startup_trials": n_startup_trials}
    drawn = {}
    for name in ("tpe", "random"):
        study = optuna.create_study(sampler=search.make_sampler(name, 7, **given))
        study.optimize(objective, n_trials=k + 3)
        drawn[name] = [trial.params for trial in study.trials]
    assert drawn["tpe"][:k] == drawn["random"][:k]
    assert drawn["tpe"][k:] != drawn["random"][k:]  # then TPE models the results


@pytest.mark.parametrize("bad", [-1, 2.5, "5", True, None])
def test_make_sampler_refuses_a_bad_number_of_start_up_trials(bad):
    with pytest.raises(ValueError, match=f"n_startup_trials={bad!r}"):
        search.make_sampler("tpe", 0, n_startup_trials=bad)


def test_flops_per_jet():
    assert search.flops_per_jet(HParams(n_layers=2, n_channels=10, input_channels=5)) == 2 * (
        50 + 100 + 10
    )


# --------------------------------------------------------------------------- storages


def test_storage_urls(tmp_path):
    assert isinstance(search.open_storage(tmp_path / "a.journal"), optuna.storages.JournalStorage)
    assert isinstance(search.open_storage(f"sqlite:///{tmp_path}/a.db"), optuna.storages.RDBStorage)
    with pytest.raises(ValueError, match="neither a path ending in .journal nor a database URL"):
        search.open_storage("studies.db")
    with pytest.raises(ValueError, match="the folder .*nowhere does not exist"):
        search.open_storage(tmp_path / "nowhere" / "a.journal")


def test_broken_database_url_is_a_clear_error_without_the_password():
    with pytest.raises(
        ValueError, match=r"Cannot open storage postgresql://qg:\*\*\*@127.0.0.1:9/studies"
    ) as info:
        search.open_storage("postgresql://qg:secret@127.0.0.1:9/studies")
    assert "secret" not in str(info.value)


# ------------------------------------------------------- the command line, with real processes


def cli(*args: str, cwd: Path, wait: bool = True):
    command = [sys.executable, "-m", "qgtools.search", *args]
    if not wait:
        return subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
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


def finished(storage: str) -> int:
    return search.count_finished(
        optuna.load_study(study_name="toy", storage=search.open_storage(storage))
    )


def within_budget(n: int, budget: int, workers: int = 2) -> bool:
    """Workers that reach the end of the budget together may each start one last trial (as
    with Optuna's MaxTrialsCallback): a run finishes between budget and budget + workers - 1."""
    return budget <= n <= budget + workers - 1


def check_two_workers_then_top_up(storage: str, data: Path, tmp_path: Path) -> None:
    out = cli(*run_args(storage, data, trials=4, epochs=10), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert within_budget(finished(storage), 4)
    study = optuna.load_study(study_name="toy", storage=search.open_storage(storage))
    first_run = {t.user_attrs["worker"]["pid"] for t in study.trials}
    # which of a run's two workers takes how many trials depends on how fast each starts (one
    # may take them all on a busy machine): not asserted; the trials of both runs' processes
    # sharing one study is
    # the same study topped up through the plain function the command line calls
    summary = search.run_study(
        "toy", n_trials=6, workers=2, storage=storage, data=data, max_epochs=10, progress=False
    )  # the study's own settings (other max_epochs would be refused)
    assert (summary.status, summary.n_trials) == ("done", 6) and within_budget(summary.finished, 6)
    assert finished(storage) == summary.finished and len(summary.exit_codes) in (1, 2)
    pids = {t.user_attrs["worker"]["pid"] for t in study.get_trials()}
    assert len(pids - first_run) >= 1 and os.getpid() not in pids
    complete = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value)
    assert (summary.best_number, summary.best_value) == (best.number, best.value)
    # 6 or 7: two workers reaching the end of the budget together may each finish one more
    assert str(summary).startswith(f"Study 'toy': {summary.finished} finished trials; best #")
    report = cli(
        "report",
        "--study",
        "toy",
        "--storage",
        storage,
        "--out",
        str(tmp_path / "plots"),
        cwd=tmp_path,
    )
    assert report.returncode == 0 and "#" in report.stdout
    assert (tmp_path / "plots" / "toy-history.png").stat().st_size > 1000


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


def test_two_workers_on_the_default_journal_storage(toy_npz, tmp_path):
    check_two_workers_then_top_up(str(tmp_path / "qg-studies.journal"), toy_npz, tmp_path)


def test_sigkill_mid_trial_on_the_journal_storage(toy_npz, tmp_path):
    check_sigkill_recovery(str(tmp_path / "qg-studies.journal"), toy_npz, tmp_path)


def test_default_storage_is_the_journal_in_the_working_directory(toy_npz, tmp_path):
    out = cli(
        "run",
        "--study",
        "toy",
        "--data",
        str(toy_npz),
        "--max-epochs",
        "1",
        "--trials",
        "1",
        "--workers",
        "1",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "qg-studies.journal").stat().st_size > 0


def test_five_failed_trials_in_a_row_stop_the_run(tmp_path):
    jets = make_jets(2000)
    path = tmp_path / "quarks_only.npz"
    np.savez(path, X=jets.X, y=np.ones(2000, dtype=np.int64))  # no gluons: every validation fails
    out = cli(*run_args(str(tmp_path / "s.journal"), path, trials=3, workers=1), cwd=tmp_path)
    assert out.returncode == 3
    assert "5 failed trials in a row" in out.stderr and "both classes are needed" in out.stderr


def test_two_workers_on_postgresql(toy_npz, tmp_path, postgres_url):
    check_two_workers_then_top_up(postgres_url, toy_npz, tmp_path)


def test_sigkill_mid_trial_on_postgresql(toy_npz, tmp_path, postgres_url):
    check_sigkill_recovery(postgres_url, toy_npz, tmp_path)
