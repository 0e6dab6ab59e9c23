"""The objective: what a trial stores, pruning, failures, the FLOPs constraint."""

from __future__ import annotations

import os

import optuna
import pytest
from conftest import make_jets
from optuna.trial import TrialState

from qgtools import search
from qgtools.model import HParams
from qgtools.search import objective as objective_module

optuna.logging.set_verbosity(optuna.logging.WARNING)


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
