"""search under failure: damaged journals, mixed settings, repeated seeds, secrets, bad input,
Ctrl-C, killed workers, and a quiet report. Real processes where the behaviour is about them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.storages.journal import JournalFileSymlinkLock
from optuna.trial import TrialState

from qgtools import search
from qgtools.search import cli as cli_module
from qgtools.search import storage as storage_module
from qgtools.search.recovery import _alive
from qgtools.search.samplers import _TrialSeededSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


def cli(*args: str, cwd: Path, wait: bool = True, **popen):
    """``python -m qgtools.search ARGS`` in a real process (output merged when not waited for)."""
    command = [sys.executable, "-m", "qgtools.search", *args]
    if not wait:
        return subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
        )
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)


def x_objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0.0, 2.0)


def journal_with_trials(path, n: int = 2, name: str = "toy") -> bytes:
    """A journal holding study ``name`` with ``n`` complete trials; returns its bytes."""
    study = optuna.create_study(
        study_name=name, storage=search.open_storage(path), direction="maximize"
    )
    study.optimize(x_objective, n_trials=n)
    return path.read_bytes()


# --------------------------------------------------------------------------- 1. damaged journal

CUT_SHORT = b'{"op_code":4,"worker_id":"w-1","study_id":0,"datetime_st'  # a write cut short


def test_a_partial_last_line_is_trimmed_with_a_backup_before_the_next_append(tmp_path, capfd):
    journal = tmp_path / "s.journal"
    good = journal_with_trials(journal)
    journal.write_bytes(good + CUT_SHORT)
    study = optuna.load_study(study_name="toy", storage=search.open_storage(journal))
    study.optimize(x_objective, n_trials=1)
    reloaded = optuna.load_study(study_name="toy", storage=search.open_storage(journal))
    assert [t.state for t in reloaded.trials] == [TrialState.COMPLETE] * 3
    assert journal.read_bytes().startswith(good) and CUT_SHORT not in journal.read_bytes()
    backups = list(tmp_path.glob("s.journal.bak-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == good + CUT_SHORT  # nothing lost
    said = [line for line in capfd.readouterr().err.splitlines() if str(journal) in line]
    assert len(said) == 1 and "partial last line" in said[0] and backups[0].name in said[0]


def test_the_repair_waits_for_optunas_journal_lock(tmp_path):
    journal = tmp_path / "s.journal"
    damaged = journal_with_trials(journal) + CUT_SHORT
    journal.write_bytes(damaged)
    study = optuna.load_study(study_name="toy", storage=search.open_storage(journal))
    lock = JournalFileSymlinkLock(str(journal))  # what another process's append holds
    lock.acquire()
    appender = threading.Thread(target=study.optimize, args=(x_objective,), kwargs={"n_trials": 1})
    try:
        appender.start()
        appender.join(timeout=1.0)
        assert appender.is_alive() and journal.read_bytes() == damaged  # it waits, untouched
    finally:
        lock.release()
    appender.join(timeout=60)
    assert not appender.is_alive()
    reloaded = optuna.load_study(study_name="toy", storage=search.open_storage(journal))
    assert len(reloaded.trials) == 3


def test_garbage_inside_a_journal_is_an_error_naming_the_file_and_line(tmp_path):
    journal = tmp_path / "s.journal"
    lines = journal_with_trials(journal).splitlines(keepends=True)
    damaged = b"".join(lines[:3] + [b"\x00\x00garbage\n"] + lines[3:])
    journal.write_bytes(damaged)
    with pytest.raises(ValueError, match=re.escape(f"{journal}") + r".* line 4\b") as info:
        search.open_storage(journal)
    message = str(info.value)
    assert "\n" not in message and "backup" in message
    assert journal.read_bytes() == damaged  # an error, not a repair: the file is left as it was


# --------------------------------------------------------------------------- 2. mixed settings


def study_at_its_budget(journal: Path, name: str = "toy") -> None:
    """A study with one complete trial and no recorded settings (as made before they were
    recorded): ``run_study`` with ``n_trials=1`` starts no worker on it."""
    study = optuna.create_study(
        study_name=name, storage=search.open_storage(journal), direction="maximize"
    )
    study.enqueue_trial({"x": 1.0})
    study.optimize(x_objective, n_trials=1)


def test_a_study_records_its_settings_and_refuses_runs_that_differ(tmp_path, toy_npz):
    journal = tmp_path / "s.journal"
    study_at_its_budget(journal)
    other = tmp_path / "other.npz"
    other.write_bytes(toy_npz.read_bytes())
    same = {"data": toy_npz, "jets": -1, "space": "cpu", "max_epochs": 1}
    summary = search.run_study("toy", n_trials=1, storage=journal, progress=False, **same)
    assert summary.status == "done"  # the first run's settings are adopted
    recorded = optuna.load_study(study_name="toy", storage=search.open_storage(journal)).user_attrs
    assert recorded["settings"] == {
        "data": "local file toy.npz",
        "jets": 6000,
        "split_seed": search.SPLIT_SEED,
        "space": "cpu",
        "max_epochs": 1,
        "population": 1,
        "seeds": 1,
        "max_flops": None,
    }
    resolved = {**same, "jets": 6000}  # -1 resolved to the jets it loads
    assert search.run_study("toy", n_trials=1, storage=journal, progress=False, **resolved).status
    for change, shown in [
        ({"jets": 3000}, "jets=6000 .*jets=3000"),
        ({"max_epochs": 2}, "max_epochs=1 .*max_epochs=2"),
        ({"space": "reference"}, "space='cpu' .*space='reference'"),
        ({"data": other}, "data='local file toy.npz' .*data='local file other.npz'"),
    ]:
        with pytest.raises(ValueError, match=f"Study 'toy' was run with {shown}") as info:
            search.run_study("toy", n_trials=1, storage=journal, progress=False, **same | change)
        assert "allow" in str(info.value) and "\n" not in str(info.value)
    mixed = search.run_study(
        "toy",
        n_trials=1,
        storage=journal,
        progress=False,
        allow_mismatch=True,
        **same | {"jets": 3000},
    )
    assert mixed.status == "done"
    reloaded = optuna.load_study(study_name="toy", storage=search.open_storage(journal))
    assert reloaded.user_attrs["settings"]["jets"] == 6000  # the study's own settings stay


def test_the_command_line_refuses_a_mismatch_in_one_line_unless_allowed(tmp_path, toy_npz, capsys):
    journal = tmp_path / "s.journal"
    study_at_its_budget(journal)
    args = ["run", "--study", "toy", "--storage", str(journal), "--data", str(toy_npz)]
    args += ["--max-epochs", "1", "--trials", "1"]
    assert search.main([*args, "--jets", "6000"]) == 0
    capsys.readouterr()
    assert search.main([*args, "--jets", "3000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "jets=3000" in err and "--allow-mismatch" in err
    assert search.main([*args, "--jets", "3000", "--allow-mismatch"]) == 0


# --------------------------------------------------------------------------- 3. repeated seeds


def params_of(journal: Path, name: str = "toy") -> list[dict]:
    study = optuna.load_study(study_name=name, storage=search.open_storage(journal))
    return [trial.params for trial in sorted(study.trials, key=lambda t: t.number)]


def all_different(params: list[dict]) -> bool:
    return all(a != b for i, a in enumerate(params) for b in params[i + 1 :])


def test_a_rerun_never_repeats_a_configuration_and_a_fresh_study_repeats_exactly(tmp_path, toy_npz):
    # TPE (the default) with 5 random start-up trials: all four trials here are start-up ones
    run = {"workers": 1, "data": toy_npz, "max_epochs": 1, "progress": False}
    first, second = tmp_path / "first.journal", tmp_path / "second.journal"
    for journal in (first, second):
        assert search.run_study("toy", n_trials=2, storage=journal, **run).status == "done"
    assert params_of(first) == params_of(second)  # a fresh study, run the same way: the same
    assert search.run_study("toy", n_trials=4, storage=first, **run).status == "done"
    params = params_of(first)
    assert len(params) == 4 and all_different(params)  # the top-up repeats nothing


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_two_runs_started_at_once_with_one_seed_do_not_repeat_each_other(tmp_path, sampler):
    """Two runs are two sampler objects made from the same --seed, asking in turn on one study
    (as their worker processes do); interleaved here in one process, so the test does not depend
    on which process starts first."""
    journal = tmp_path / "s.journal"
    storage = search.open_storage(journal)
    optuna.create_study(study_name="toy", storage=storage, direction="maximize")
    runs = [
        optuna.load_study(
            study_name="toy", storage=storage, sampler=_TrialSeededSampler(sampler, 0)
        )
        for _ in range(2)
    ]
    for _ in range(4):
        for run in runs:
            run.optimize(lambda t: t.suggest_float("lr", 1e-4, 1e-1, log=True), n_trials=1)
    params = params_of(journal)
    assert len(params) == 8 and all_different(params)


# --------------------------------------------------------------------------- 4. secrets


@pytest.mark.parametrize(
    ("url", "fragments"),
    [
        ("postgresql://:Xy7Qk9@127.0.0.1:9/db", ["Xy7Qk9"]),  # no user name
        ("postgresql://qg:Xy7@Qk9@127.0.0.1:9/db", ["Xy7", "Qk9"]),  # '@' in the password
        ("postgresql://qg:Xy7@Qk9:Zt4@127.0.0.1:9/db", ["Xy7", "Qk9", "Zt4"]),  # '@' and ':'
        ("postgresql://qg:Xy7:Qk9@127.0.0.1:9/db", ["Xy7", "Qk9"]),  # ':' in the password
        ("postgresql://qg:Xy7%40Qk9@127.0.0.1:9/db", ["Xy7", "Qk9"]),  # percent-encoded
        ("postgresql://qg:Xy7Qk9@127.0.0.1:notaport/db", ["Xy7Qk9"]),  # the parser fails
        ("postgresql://qg@127.0.0.1:9/db?password=Xy7Qk9", ["Xy7Qk9"]),  # in the query
        ("postgresql:/qg:Xy7Qk9@127.0.0.1:9/db", ["Xy7Qk9"]),  # not a URL: a slash missing
    ],
)
def test_a_password_never_appears_in_an_error_whatever_the_url(url, fragments):
    with pytest.raises(ValueError, match=r"\*\*\*") as info:
        search.open_storage(url)
    message = str(info.value)
    assert "\n" not in message and "127.0.0.1" in message
    assert [fragment for fragment in fragments if fragment in message] == []


def test_a_driver_error_that_shows_the_password_is_masked(monkeypatch):
    def talkative(url, **_):  # a driver that echoes what it was given
        raise RuntimeError(f"cannot connect with password=Xy7@Qk9 to {url} (Xy7%40Qk9)")

    monkeypatch.setattr(storage_module, "RDBStorage", talkative)
    with pytest.raises(ValueError, match="RuntimeError: cannot connect") as info:
        search.open_storage("postgresql://qg:Xy7%40Qk9@127.0.0.1:9/db")
    assert "Xy7" not in str(info.value) and "Qk9" not in str(info.value)


# --------------------------------------------------------------------------- 5. QG_STORAGE


def study_with_one_trial(storage, x: float, name: str = "toy") -> None:
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    study.enqueue_trial({"x": x})
    study.optimize(x_objective, n_trials=1)


def test_the_storage_url_can_come_from_QG_STORAGE(tmp_path, monkeypatch, toy_npz, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QG_STORAGE", str(tmp_path / "env.journal"))
    study_with_one_trial(search.open_storage(None), x=1.0)
    assert (tmp_path / "env.journal").exists() and not Path(search.DEFAULT_STORAGE).exists()
    summary = search.run_study("toy", n_trials=1, data=toy_npz, max_epochs=1, progress=False)
    assert summary.best_value == 1.0  # run_study found the study through QG_STORAGE
    search.main(["report", "--study", "toy", "--out", "plots"])
    assert "value 1 " in capsys.readouterr().out  # so did the command line
    explicit = tmp_path / "explicit.journal"
    study_with_one_trial(search.open_storage(explicit), x=2.0)
    search.main(["report", "--study", "toy", "--storage", str(explicit), "--out", "plots"])
    assert "value 2 " in capsys.readouterr().out  # --storage wins over QG_STORAGE
    assert not Path(search.DEFAULT_STORAGE).exists()
    with pytest.raises(SystemExit):
        search.main(["run", "--help"])
    assert "QG_STORAGE" in capsys.readouterr().out and "QG_STORAGE" in cli_module.__doc__


# --------------------------------------------------------------------------- 6. bad input


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("Error: "), err
    assert "Traceback" not in err and "again" not in err  # a rerun would not help
    return err


def test_bad_runs_are_one_line_errors_before_any_worker_or_file(tmp_path, toy_npz, capsys):
    journal = tmp_path / "s.journal"
    args = ["run", "--study", "toy", "--max-epochs", "1", "--trials", "1"]
    for bad, said in [
        (["--storage", str(journal), "--data", str(tmp_path / "nope.npz")], "No data file at"),
        (["--storage", str(journal), "--data", str(toy_npz), "--jets", "0"], "jets=0: use -1"),
        (["--storage", "sqlite://", "--data", str(toy_npz)], "in-memory database"),
        (["--storage", str(journal), "--data", str(toy_npz), "--study", "a/b"], "'/'"),
    ]:
        assert search.main([*args, *bad]) == 2
        assert said in one_line_error(capsys)
        assert list(tmp_path.iterdir()) == []  # no journal, no study


def test_a_report_on_a_missing_study_is_a_one_line_error_and_creates_nothing(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    journal = tmp_path / "s.journal"
    for storage in (str(journal), f"sqlite:///{tmp_path}/s.db"):
        assert search.main(["report", "--study", "ghost", "--storage", storage]) == 2
        assert "No study" in one_line_error(capsys)
        assert list(tmp_path.iterdir()) == []  # neither the storage nor the plots folder
    study_with_one_trial(search.open_storage(journal), x=1.0)
    before = journal.read_bytes()
    assert search.main(["report", "--study", "ghost", "--storage", str(journal)]) == 2
    assert "'toy'" in one_line_error(capsys)  # the studies there are named
    assert journal.read_bytes() == before and sorted(tmp_path.iterdir()) == [journal]


# --------------------------------------------------------------- 7-8. Ctrl-C and killed workers


def run_command(journal: Path, data: Path, trials: int, epochs: int, workers: int) -> list[str]:
    return [
        *("run", "--study", "toy", "--storage", str(journal), "--data", str(data), "--jets", "-1"),
        *("--max-epochs", str(epochs), "--trials", str(trials), "--workers", str(workers)),
    ]


def wait_for_running_trial(journal: Path, process: subprocess.Popen) -> optuna.trial.FrozenTrial:
    """The first trial a worker is running (its worker recorded), within two minutes."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.5)
        try:
            study = optuna.load_study(study_name="toy", storage=search.open_storage(journal))
        except KeyError:
            continue
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        running = [trial for trial in running if "worker" in trial.user_attrs]
        if running:
            return running[0]
    raise AssertionError(f"no trial was running after 2 minutes (exit code {process.poll()})")


def test_ctrl_c_stops_the_workers_fails_their_trials_and_says_one_line(tmp_path, toy_npz):
    journal = tmp_path / "s.journal"
    command = run_command(journal, toy_npz, trials=4, epochs=2000, workers=2)
    process = cli(*command, cwd=tmp_path, wait=False, start_new_session=True)
    victim = wait_for_running_trial(journal, process)
    time.sleep(1.0)  # let the other worker start its trial too
    os.killpg(process.pid, signal.SIGINT)  # what a terminal does: the whole process group
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    said = [line for line in output.splitlines() if "nterrupted" in line]
    assert len(said) == 1 and said[0].startswith("Interrupted"), output
    study = optuna.load_study(study_name="toy", storage=search.open_storage(journal))
    assert study.get_trials(states=(TrialState.RUNNING,)) == []
    stopped = study.trials[victim.number]
    assert stopped.state == TrialState.FAIL
    assert stopped.user_attrs["fail_reason"].startswith("interrupted")
    workers = [trial.user_attrs["worker"] for trial in study.trials]
    assert not any(_alive(worker) for worker in workers)  # no worker left behind


def test_a_killed_worker_is_replaced_and_the_budget_met_in_the_same_run(tmp_path, toy_npz):
    journal = tmp_path / "s.journal"
    process = cli(
        *run_command(journal, toy_npz, trials=1, epochs=30, workers=1), cwd=tmp_path, wait=False
    )
    victim = wait_for_running_trial(journal, process)
    os.kill(victim.user_attrs["worker"]["pid"], signal.SIGKILL)  # its only worker
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    study = optuna.load_study(study_name="toy", storage=search.open_storage(journal))
    assert search.count_finished(study) == 1  # the budget, without a second run
    killed = study.trials[victim.number]
    assert killed.state == TrialState.FAIL and "died mid-trial" in killed.user_attrs["fail_reason"]


# --------------------------------------------------------------------------- 9. a quiet report


def test_report_prints_its_table_without_optunas_warnings(tmp_path, capfd):
    journal = tmp_path / "s.journal"
    study = optuna.create_study(
        study_name="toy", storage=search.open_storage(journal), direction="maximize"
    )
    for x in (0.5, 1.0, 1.5):  # 'kind' has one value: the plots warn about such a study
        study.enqueue_trial({"x": x, "kind": "a"})
    study.optimize(
        lambda t: t.suggest_float("x", 0, 2) + 0 * len(t.suggest_categorical("kind", ["a", "b"])),
        n_trials=3,
    )
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = search.report("toy", storage=journal, out=tmp_path / "plots")
    out, err = capfd.readouterr()
    assert written and "#2" in out  # the table and the plots are there
    leaked = [w for w in caught if "optuna" in f"{w.filename} {w.category.__module__}"]
    assert leaked == [] and err == ""  # no warnings, no Optuna log lines ("[W ...")
    assert optuna.logging.get_verbosity() == optuna.logging.WARNING  # the caller's, restored


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


# --------------------------------------------------------------------------- 10. a readable report

PARAMS = {
    "lr": 0.00123456,
    "n_channels": 64,
    "n_layers": 2,
    "layer_norm": True,
    "batch_norm": False,
    "hidden_activation": "SiLU",
    "use_dropout": True,
    "dropout": 0.123456,
    "lr_decay": False,
    "batch_size": 256,
    "preprocessing": "log+standardize",
}


def test_format_params_wraps_whole_pairs_at_the_width():
    text = search.format_params(PARAMS, width=60)
    lines = text.split("\n")
    assert len(lines) > 1 and all(len(line) <= 60 and line.startswith("    ") for line in lines)
    assert lines[0].startswith("    lr=0.00123, n_channels=64, ")  # 3 significant digits
    pairs = [pair.strip() for pair in text.replace("\n", "").split(",")]
    assert pairs[7] == "dropout=0.123" and pairs[-1] == "preprocessing=log+standardize"
    assert len(pairs) == len(PARAMS)  # no pair cut across two lines
    assert all(line.endswith(",") for line in lines[:-1]) and not lines[-1].endswith(",")
    assert search.format_params({"x": 1.0}, indent="  ") == "  x=1"
    assert search.format_params({}) == ""


def test_a_summary_keeps_its_first_line_and_wraps_its_parameters():
    summary = search.StudySummary("toy", 2, 2, "done", 1, 12.345, dict(PARAMS))
    lines = str(summary).split("\n")
    assert lines[0] == "Study 'toy': 2 finished trials; best #1: validation rejection 12.3 with"
    assert lines[1:] == search.format_params(PARAMS).split("\n")
    assert max(map(len, lines)) <= 88
    one = search.StudySummary("toy", 1, 1, "done", 0, 12.345, {"lr": 0.01})
    assert (
        str(one)
        == "Study 'toy': 1 finished trial; best #0: validation rejection 12.3 with\n    lr=0.01"
    )
    assert str(search.StudySummary("toy", 1, 0, "incomplete")).startswith(
        "Study 'toy': 0 finished trials;"
    )


def conditional_study(journal, n: int, **attrs) -> optuna.Study:
    """A study of ``n`` complete trials whose ``dropout`` exists only when ``use_dropout``."""
    study = optuna.create_study(
        study_name="toy", storage=search.open_storage(journal), direction="maximize"
    )
    for key, value in attrs.items():
        study.set_user_attr(key, value)

    def objective(trial: optuna.Trial) -> float:
        value = trial.suggest_float("lr", 1e-4, 1e-2, log=True) * 100
        value += trial.suggest_int("n_channels", 16, 256, log=True) / 256
        if trial.suggest_categorical("use_dropout", [True, False]):
            value -= trial.suggest_float("dropout", 0.0, 0.5)
        return value + len(trial.suggest_categorical("preprocessing", ["none", "standardize"]))

    study.optimize(objective, n_trials=n)
    return study


def report_figures(monkeypatch, *args, **kwargs) -> tuple[list[Path], dict[str, dict]]:
    """Run ``search.report``, recording the labels and font sizes of each figure it saves."""
    from matplotlib.figure import Figure

    seen, save = {}, Figure.savefig

    def recording(figure, path, **options):
        seen[Path(path).stem.split("-")[-1]] = {
            "ylabels": [ax.get_ylabel() for ax in figure.axes],
            "legends": [
                t.get_text()
                for ax in figure.axes
                if ax.get_legend()
                for t in ax.get_legend().get_texts()
            ],
            "xlabel size": figure.axes[0].xaxis.label.get_fontsize(),
        }
        return save(figure, path, **options)

    monkeypatch.setattr(Figure, "savefig", recording)
    return search.report(*args, **kwargs), seen


def test_report_draws_history_importances_and_slices_named_after_the_objective(
    tmp_path, monkeypatch, capfd
):
    journal = tmp_path / "s.journal"
    conditional_study(journal, n=search.MIN_TRIALS_FOR_IMPORTANCES + 4, settings={"space": "x"})
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written, seen = report_figures(monkeypatch, "toy", storage=journal, out=tmp_path / "plots")
    out, err = capfd.readouterr()
    assert [path.name for path in written] == [
        "toy-history.png",
        "toy-importances.png",
        "toy-slice.png",
    ]
    assert all(path.stat().st_size > 1000 for path in written)  # no contour plot
    assert seen["history"]["ylabels"] == ["validation rejection"]  # a run_study study's metric
    assert "validation rejection" in seen["importances"]["legends"]
    assert seen["slice"]["ylabels"][0] == "validation rejection"
    assert {figure["xlabel size"] for figure in seen.values()} == {12.0}  # readable at PNG size
    assert [w for w in caught if "optuna" in f"{w.filename} {w.category.__module__}"] == []
    assert err == "" and max(map(len, out.splitlines())) <= 100
    assert "    lr=" in out and "{" not in out.split("\n", 1)[1]  # wrapped pairs, not dicts


def test_report_of_a_small_study_says_why_it_draws_no_importances(tmp_path, monkeypatch, capfd):
    journal = tmp_path / "s.journal"
    conditional_study(journal, n=3)
    capfd.readouterr()
    written, seen = report_figures(monkeypatch, "toy", storage=journal, out=tmp_path / "plots")
    out, err = capfd.readouterr()
    assert [path.name for path in written] == ["toy-history.png", "toy-slice.png"]
    assert f"3 complete trials, fewer than {search.MIN_TRIALS_FOR_IMPORTANCES}" in out
    assert seen["history"]["ylabels"] == ["objective value"]  # a study of unknown origin
    assert err == ""
    assert search.importances_skipped(search.MIN_TRIALS_FOR_IMPORTANCES) is None
