"""Repeated studies side by side."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from qgtools import search

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_run_studies_runs_each_plan_as_its_own_reproducible_study(tmp_path, toy_npz):
    plans = [
        search.StudyPlan("tpe", 3, 1, sampler="tpe", seed=5),
        search.StudyPlan("gp", 3, 1, sampler="gp", seed=5, keep_models=True),
        search.StudyPlan("flops", 2, 1, max_flops=1000),
    ]
    storage = tmp_path / "s.journal"
    studies = search.run_studies(plans, storage=storage, data=toy_npz, processes=2)
    assert list(studies) == ["tpe", "gp", "flops"]
    assert [t.params for t in studies["tpe"].trials] == [t.params for t in studies["gp"].trials]
    assert all(len(s.trials) == p.n_trials for s, p in zip(studies.values(), plans, strict=True))
    assert all("model_artifact" in t.user_attrs for t in studies["gp"].trials
               if t.state == TrialState.COMPLETE)  # fmt: skip
    assert not any("model_artifact" in t.user_attrs for t in studies["tpe"].trials)
    assert all(t.state == TrialState.PRUNED for t in studies["flops"].trials)  # 1000 is too few
    assert studies["tpe"].user_attrs["seconds"] > 0
    with pytest.raises(ValueError, match="already holds"):
        search.run_studies(plans[:1], storage=storage, data=toy_npz)
    with pytest.raises(ValueError, match="repeat"):
        search.run_studies([plans[0], plans[0]], storage=tmp_path / "t.journal", data=toy_npz)
