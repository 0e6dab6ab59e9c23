"""The worker process: failures in a row, errors inside a population."""

from __future__ import annotations

import numpy as np
import optuna
from conftest import cli, make_jets, run_args

from qgtools import search

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_five_failed_trials_in_a_row_stop_the_run(tmp_path):
    jets = make_jets(2000)
    path = tmp_path / "quarks_only.npz"
    np.savez(path, X=jets.X, y=np.ones(2000, dtype=np.int64))  # no gluons: every validation fails
    out = cli(*run_args(str(tmp_path / "s.journal"), path, trials=3, workers=1), cwd=tmp_path)
    assert out.returncode == 3
    assert "5 failed trials in a row" in out.stderr and "both classes are needed" in out.stderr


def test_an_error_in_a_population_fails_the_workers_trials_with_the_reason(
    data, tmp_path, monkeypatch
):
    import optuna

    from qgtools.search.workers import _population_in_worker

    def breaks_at_the_second_trial(trial):
        if trial.number == 3:
            raise RuntimeError("disk full")
        return search.cpu_space(trial)

    monkeypatch.setitem(search.SPACES, "breaks", breaks_at_the_second_trial)
    journal = str(tmp_path / "s.journal")
    study = optuna.create_study(
        study_name="s", storage=search.open_storage(journal), direction="maximize"
    )
    job = search.StudySettings(
        study="s", storage=journal, n_trials=10, data="sample", jets=len(data), space="breaks",
        sampler="random", pruner="none", max_epochs=1, seed=0, population=4,
    )  # fmt: skip
    for value in (1.0, 2.0):  # two complete trials: a population of 2 may start
        study.tell(study.ask(), value)
    assert _population_in_worker(study, data, job, left=10) == []
    failed = optuna.load_study(study_name="s", storage=search.open_storage(journal)).trials[2:]
    assert [t.state for t in failed] == [optuna.trial.TrialState.FAIL] * 2  # asked, and asking
    assert {t.user_attrs["fail_reason"] for t in failed} == {"RuntimeError: disk full"}
