"""Warm starts, the GP sampler, the FLOPs constraint, the stopping rule, kept models and
importances over repeats (notebook 09)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import optuna
import pytest
from conftest import make_jets
from optuna.trial import TrialState
from test_search import cli, run_args

from qgtools import metrics, model, search, train
from qgtools.search import objective as objective_module
from qgtools.search.settings import _check_settings

optuna.logging.set_verbosity(optuna.logging.WARNING)


# --------------------------------------------------------------------------- warm start


@pytest.mark.parametrize("name", sorted(search.KNOWN_CONFIGURATIONS))
def test_a_known_configuration_goes_through_the_cpu_space_unchanged(name):
    hp = search.KNOWN_CONFIGURATIONS[name]
    again = search.cpu_space(optuna.trial.FixedTrial(search.cpu_space_params(hp)))
    assert again == hp


def test_the_reference_on_cpu_is_the_issue_s_configuration():
    hp = search.REFERENCE_ON_CPU
    assert (hp.n_layers, hp.n_channels, hp.layer_norm, hp.batch_norm) == (4, 256, True, True)
    assert (hp.hidden_activation, hp.dropout, hp.lr, hp.patience, hp.factor) == (
        "Tanh", 0.2, 1e-3, 10, 0.3
    )  # fmt: skip
    assert (hp.batch_size, hp.preprocessing) == (128, "none")


def test_a_configuration_outside_the_cpu_space_is_refused_by_name():
    with pytest.raises(ValueError, match=r"n_layers=6 is outside 1-4.*n_channels=1024"):
        search.cpu_space_params(model.HParams())
    with pytest.raises(ValueError, match="batch_size=100 is not one of"):
        search.cpu_space_params(search.REFERENCE_ON_CPU.replace(batch_size=100))


def test_enqueued_configurations_come_first_and_only_once():
    study = optuna.create_study(direction="maximize", sampler=search.make_sampler("tpe", 0))
    assert search.enqueue_known(study, ["reference", "hand-tuned"]) == ["reference", "hand-tuned"]
    search.enqueue_known(study, ["hand-tuned"])  # a rerun queues nothing new
    for _ in range(3):
        trial = study.ask()
        study.tell(trial, float(search.cpu_space(trial).lr))
    hps = [search.cpu_space(optuna.trial.FixedTrial(t.params)) for t in study.trials]
    assert hps[:2] == [search.KNOWN_CONFIGURATIONS[n] for n in ("reference", "hand-tuned")]
    assert [t.user_attrs.get("enqueued") for t in study.trials] == ["reference", "hand-tuned", None]
    search.enqueue_known(study, ["reference"])  # tried already: not queued again
    assert study.ask().user_attrs.get("enqueued") is None
    with pytest.raises(ValueError, match="Unknown configuration"):
        search.enqueue_known(study, ["best"])


# --------------------------------------------------------------------------- the GP sampler


def test_gp_starts_with_the_random_draws_and_says_nothing_about_conditional_parameters(caplog):
    def objective(trial):
        x = trial.suggest_float("x", 0, 1)
        if trial.suggest_categorical("extra", [True, False]):
            x += trial.suggest_float("y", 0, 1)  # conditional: GP samples it independently
        return -((x - 0.3) ** 2)

    drawn = {}
    with caplog.at_level(logging.WARNING, logger="optuna"):
        for name in ("gp", "random"):
            study = optuna.create_study(direction="maximize", sampler=search.make_sampler(name, 3))
            study.optimize(objective, n_trials=search.TPE_STARTUP_TRIALS + 3)
            drawn[name] = [t.params for t in study.trials]
    k = search.TPE_STARTUP_TRIALS
    assert isinstance(search.make_sampler("gp", 0), optuna.samplers.GPSampler)
    assert drawn["gp"][:k] == drawn["random"][:k]
    assert drawn["gp"][k:] != drawn["random"][k:]
    assert not [r for r in caplog.records if "independent" in r.getMessage().lower()]


# --------------------------------------------------------------------------- the FLOPs budget


def test_an_infeasible_trial_is_pruned_untrained_and_the_best_trial_is_feasible(monkeypatch):
    jets = make_jets(1500, seed=2)
    small = search.cpu_space_params(search.KNOWN_CONFIGURATIONS["hand-tuned"])  # 22,272 FLOPs
    big = search.cpu_space_params(search.REFERENCE_ON_CPU)  # 416,768
    budget = 100_000
    study = optuna.create_study(direction="maximize")
    trained = []
    real_fit = objective_module.fit
    monkeypatch.setattr(
        objective_module, "fit", lambda hp, *a, **k: trained.append(hp) or real_fit(hp, *a, **k)
    )
    objective = search.make_objective(jets, "cpu", 1, num_threads=1, max_flops=budget)
    for params in (big, small):
        study.enqueue_trial(params)
    study.optimize(objective, n_trials=2)
    infeasible, feasible = study.trials
    assert infeasible.state == TrialState.PRUNED and feasible.state == TrialState.COMPLETE
    assert infeasible.constraints == {"flops_per_jet": 416_768 - budget}
    assert feasible.constraints == {"flops_per_jet": 22_272 - budget}
    assert [hp.n_channels for hp in trained] == [64]  # the infeasible one never trained
    assert study.best_trial.number == feasible.number
    # a better infeasible value never becomes the best trial
    study.add_trial(
        optuna.trial.create_trial(
            value=feasible.value + 100, params={}, distributions={},
            system_attrs={"constraints:flops_per_jet": 1.0},
        )
    )  # fmt: skip
    assert study.best_trial.number == feasible.number


@pytest.mark.parametrize("bad", [0, -5.0, float("nan"), True, "1e5"])
def test_a_bad_flops_budget_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="max_flops="):
        search.make_objective(make_jets(200), "cpu", 1, max_flops=bad)


# --------------------------------------------------------------------------- kept models


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
    import json
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

    status, body = get(f"/api/studies/{study._study_id}")
    assert status.startswith("200")
    shown = json.loads(body)["trials"][0]["artifacts"]
    assert [a["artifact_id"] for a in shown] == [trial.user_attrs["model_artifact"]]
    assert shown[0]["filename"] == "trial-0-model.pt"
    status, body = get(f"/artifacts/{study._study_id}/{trial._trial_id}/{shown[0]['artifact_id']}")
    assert status.startswith("200")
    assert body == search.model_file(trial, tmp_path / "s.journal.artifacts").read_bytes()


def test_where_the_models_go():
    assert search.artifacts_beside("runs/a.journal") == Path("runs/a.journal.artifacts")
    assert search.artifacts_beside("sqlite:///x/s.db") == Path("x/s.db.artifacts")
    with pytest.raises(ValueError, match="--artifact-dir") as error:
        search.artifacts_beside("postgresql://me:secret@db/studies")
    assert "secret" not in str(error.value)


# --------------------------------------------------------------------------- importances


def test_importances_over_repeats_rank_the_parameter_that_matters_first():
    def objective(trial):
        return 10 * trial.suggest_float("matters", 0, 1) + 0.1 * trial.suggest_float("noise", 0, 1)

    studies = []
    for seed in range(3):
        study = optuna.create_study(
            direction="maximize", sampler=search.make_sampler("random", seed)
        )
        study.optimize(objective, n_trials=search.MIN_TRIALS_FOR_IMPORTANCES + 12)
        studies.append(study)
    table = search.importance_spread(studies)
    assert list(table) == ["matters", "noise"]
    assert all(len(values) == 3 for values in table.values())
    assert np.all(table["matters"] > table["noise"])
    short = optuna.create_study(direction="maximize")
    short.optimize(objective, n_trials=3)
    with pytest.raises(ValueError, match="fewer than"):
        search.importance_spread([short])


# --------------------------------------------------------------------------- several studies


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


# --------------------------------------------------------------------------- the command line


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
     (["--keep-models", "--population", "2"], "population"),
     (["--enqueue", "reference", "--space", "reference"], "cpu-space")],
)  # fmt: skip
def test_the_command_line_refuses_bad_settings_in_one_line(tmp_path, toy_npz, capsys, extra, said):
    assert search.main([*run_args(str(tmp_path / "s.journal"), toy_npz, 2, workers=1), *extra]) == 2
    error = capsys.readouterr().err
    assert said in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "s.journal").exists()  # refused before any storage was touched


def test_a_flops_budget_is_a_recorded_setting_and_old_studies_had_none():
    study = optuna.create_study(direction="maximize")
    old = {"data": "toy", "jets": 10, "split_seed": 0, "space": "cpu", "max_epochs": 1}
    study.set_user_attr("settings", old)  # recorded before budgets existed
    _check_settings(study, {**old, "max_flops": None}, allow_mismatch=False)
    with pytest.raises(ValueError, match=r"max_flops=None.*max_flops=20000"):
        _check_settings(study, {**old, "max_flops": 20000}, allow_mismatch=False)
