"""Kept models in Optuna's artifact store."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from conftest import make_jets
from optuna.trial import TrialState

from qgtools import metrics, search, train

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_a_kept_model_loads_back_and_scores_as_its_trial(tmp_path):
    jets = make_jets(2000, seed=4)
    store = search.artifact_store(tmp_path / "models")
    study = optuna.create_study(direction="maximize", sampler=search.make_sampler("random", 1))
    study.optimize(
        search.make_objective(jets, "cpu", 2, num_threads=1, artifacts=store), n_trials=2
    )
    for trial in study.trials:
        if trial.state != TrialState.COMPLETE:
            with pytest.raises(ValueError, match="kept no model"):
                search.model_file(trial, tmp_path / "models")
            continue
        predictor = search.trial_model(trial, tmp_path / "models")
        assert predictor.hparams == search.hparams_of(trial)
        scores, labels = train.evaluate(predictor, jets, split="val")
        assert metrics.background_rejection(labels, scores) == pytest.approx(trial.value)
    with pytest.raises(ValueError, match="is not in"):
        search.model_file(study.trials[0], tmp_path)


def test_optuna_dashboard_lists_and_serves_the_kept_models(tmp_path):
    """What ``optuna-dashboard STORAGE --artifact-dir DIR`` shows, through its WSGI app."""
    import io
    from wsgiref.util import setup_testing_defaults

    from optuna_dashboard import wsgi

    storage = search.open_storage(tmp_path / "s.journal")
    store = search.artifact_store(tmp_path / "s.journal.artifacts")
    study = optuna.create_study(study_name="kept", storage=storage, direction="maximize")
    objective = search.make_objective(
        make_jets(1500, seed=6), "cpu", 1, num_threads=1, artifacts=store
    )
    study.enqueue_trial(search.cpu_space_params(search.KNOWN_CONFIGURATIONS["hand-tuned"]))
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    app = wsgi(storage, artifact_store=store)

    def get(path: str) -> tuple[str, bytes]:
        environ, answer = {"PATH_INFO": path, "wsgi.input": io.BytesIO()}, {}
        setup_testing_defaults(environ)
        body = b"".join(
            app(environ, lambda status, headers, *exc_info: answer.setdefault("status", status))
        )
        return answer["status"], body

    study_id = storage.get_study_id_from_name("kept")  # the ids the dashboard's URLs use
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
    status, body = get(f"/api/studies/{study_id}")
    assert status.startswith("200")
    shown = json.loads(body)["trials"][0]["artifacts"]
    assert [a["artifact_id"] for a in shown] == [trial.user_attrs["model_artifact"]]
    assert shown[0]["filename"] == "trial-0-model.pt"
    status, body = get(f"/artifacts/{study_id}/{trial_id}/{shown[0]['artifact_id']}")
    assert status.startswith("200")
    assert body == search.model_file(trial, tmp_path / "s.journal.artifacts").read_bytes()


def test_where_the_models_go():
    assert search.artifacts_beside("runs/a.journal") == Path("runs/a.journal.artifacts")
    assert search.artifacts_beside("sqlite:///x/s.db") == Path("x/s.db.artifacts")
    with pytest.raises(ValueError, match="--artifact-dir") as error:
        search.artifacts_beside("postgresql://me:secret@db/studies")
    assert "secret" not in str(error.value)
