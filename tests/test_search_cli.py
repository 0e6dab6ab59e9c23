"""The command line end to end: beyond the defaults, populations, bad settings."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from conftest import cli, run_args
from optuna.trial import TrialState

from qgtools import search

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_the_command_line_warm_starts_keeps_models_stops_and_reports_the_best_model(
    tmp_path, toy_npz, monkeypatch
):
    args = run_args("s.journal", toy_npz, trials=9, workers=1)
    rule = ["--patience", "2", "--noise", "1000"]  # nothing beats the first trial by 1000
    done = cli(*args, *rule, "--enqueue", "reference", "--enqueue", "hand-tuned",
               "--keep-models", "--sampler", "gp", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Stopped by the rule: 2 finished trials in a row" in done.stdout
    assert "Its model: s.journal.artifacts/" in done.stdout
    study = optuna.load_study(study_name="toy", storage=search.open_storage(tmp_path / "s.journal"))
    # the first trial is news, nothing after it is; the rule waits out the GP's random start-up
    assert search.count_finished(study) == search.TPE_STARTUP_TRIALS + 2
    assert [t.user_attrs.get("enqueued") for t in study.trials[:2]] == ["reference", "hand-tuned"]
    best = search.trial_model(study.best_trial, tmp_path / "s.journal.artifacts")
    assert best.hparams == search.hparams_of(study.best_trial)
    kept = list((tmp_path / "s.journal.artifacts").iterdir())
    assert len(kept) == sum(t.state == TrialState.COMPLETE for t in study.trials)
    shown = cli("report", "--study", "toy", "--storage", "s.journal", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"Best trial #{study.best_trial.number}'s model: s.journal.artifacts/" in shown.stdout
    monkeypatch.chdir(tmp_path)  # a second run finds the rule still met and starts no worker
    assert search.main([*args, *rule]) == 0
    assert search.count_finished(study) == search.TPE_STARTUP_TRIALS + 2


@pytest.mark.parametrize(
    ("extra", "said"),
    [(["--patience", "2"], "needs the noise"),
     (["--patience", "0", "--noise", "1"], "patience=0"),
     (["--max-flops", "-3"], "max_flops=-3"),
     (["--max-flops", "1000", "--population", "2"], "population"),
     (["--enqueue", "reference", "--space", "reference"], "cpu-space")],
)  # fmt: skip
def test_the_command_line_refuses_bad_settings_in_one_line(tmp_path, toy_npz, capsys, extra, said):
    assert search.main([*run_args(str(tmp_path / "s.journal"), toy_npz, 2, workers=1), *extra]) == 2
    error = capsys.readouterr().err
    assert said in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "s.journal").exists()  # refused before any storage was touched


def test_the_command_line_runs_populations_and_records_their_size(toy_npz, tmp_path):
    import optuna

    from qgtools import search

    journal = str(tmp_path / "s.journal")
    out = cli(
        *run_args(journal, toy_npz, trials=6, epochs=2, workers=1),
        "--population",
        "4",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    study = optuna.load_study(study_name="toy", storage=search.open_storage(journal))
    assert search.count_finished(study) == 6 and study.user_attrs["settings"]["population"] == 4
    firsts = [t.user_attrs["population"]["first"] for t in study.trials]
    sizes = [t.user_attrs["population"]["size"] for t in study.trials]
    # one place while no trial is complete, then two (not yet four), until the budget is met
    assert firsts == [0, 0, 2, 2, 2, 2] and sizes == [1, 1, 2, 2, 2, 2]
    again = cli(*run_args(journal, toy_npz, trials=8, epochs=2, workers=1), cwd=tmp_path)
    assert again.returncode == 2 and "population" in again.stderr  # one at a time: refused


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_workers_run_populations_with_seeds_on_a_database(kind, toy_npz, tmp_path, request):
    import optuna

    from qgtools import search

    url = (
        f"sqlite:///{tmp_path / 's.db'}"
        if kind == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    args = run_args(url, toy_npz, trials=6, epochs=2, workers=2)
    kept = ["--keep-models", "--artifact-dir", str(tmp_path / "models")]
    out = cli(*args, "--population", "3", "--seeds", "2", *kept, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    study = optuna.load_study(study_name="toy", storage=search.open_storage(url))
    assert 6 <= search.count_finished(study) <= 7  # up to workers - 1 over, as any run
    assert study.user_attrs["settings"]["seeds"] == 2
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert len(t.user_attrs["seed_values"]) == 2
            assert math.isclose(t.value, np.mean(t.user_attrs["seed_values"]), abs_tol=1e-3)
            seeds = search.trial_model(t, tmp_path / "models")  # each seed's model, kept
            hp = search.hparams_of(t)
            assert [m.hparams for m in seeds.members] == [hp, hp.replace(seed=hp.seed + 1)]


def test_bad_input_is_one_line_and_exit_2_but_a_programming_error_shows_its_traceback(
    monkeypatch, capsys, tmp_path
):
    from qgtools.search import cli as cli_module

    args = ["run", "--study", "s", "--storage", str(tmp_path / "s.journal"), "--trials", "0"]
    assert search.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: n_trials=0") and err.count("\n") == 1

    def broken(settings, progress=True):
        raise KeyError("hparams")

    monkeypatch.setattr(cli_module, "_run", broken)
    with pytest.raises(KeyError, match="hparams"):
        search.main(args[:-1] + ["2"])
