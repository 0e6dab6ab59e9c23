"""run_study: its checks before any worker starts, and a study at its budget."""

from __future__ import annotations

import optuna
import pytest
from conftest import cli, one_line_error

from qgtools import search

optuna.logging.set_verbosity(optuna.logging.WARNING)


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
