"""Populations through ask-and-tell (notebook 08)."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from conftest import curves, make_jets

from qgtools import metrics, model, search, train
from qgtools.population import fit_population

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def data():
    return make_jets(
        4000, seed=3
    )  # 400 validation jets: an AUC that float noise cannot move by 1e-3


def test_a_population_of_trials_shares_the_sampled_shape_and_is_told_its_values(data):
    import optuna

    from qgtools.population import SHARED_FIELDS

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=search.make_sampler("random", 3))
    trials = search.optimize_population(study, data, "cpu", max_epochs=2, population=4)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    shapes = {tuple(getattr(search.hparams_of(t), f) for f in SHARED_FIELDS) for t in trials}
    assert len(shapes) == 1  # one shape, drawn once
    assert len({t.params["lr"] for t in trials}) == 4  # the rest drawn per member
    for t in trials:
        curve = [t.intermediate_values[e] for e in sorted(t.intermediate_values)]
        assert len(curve) == 2 and t.value == max(curve)
        assert t.user_attrs["population"] == {"first": 0, "size": 4, "seeds": 1}
        assert "worker" in t.user_attrs


def test_freed_places_take_new_trials_of_the_same_shape(data):
    import optuna

    from qgtools.population import SHARED_FIELDS

    study = optuna.create_study(
        direction="maximize",
        sampler=search.make_sampler("random", 1),
        pruner=optuna.pruners.ThresholdPruner(lower=1e9, n_warmup_steps=1),  # prunes at epoch 1
    )
    seen = []  # the trials' states each time a new trial is about to be asked
    trials = search.optimize_population(
        study,
        data,
        "cpu",
        max_epochs=3,
        population=2,
        n_trials=5,
        keep_asking=lambda: seen.append([t.state for t in study.trials]) or len(study.trials) < 4,
    )
    assert len(trials) == 4  # two first, then two more, then keep_asking said no
    pruned = optuna.trial.TrialState.PRUNED
    assert seen[1] == [pruned, pruned]  # the first two were told before their places were refilled
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in trials)
    assert [len(t.intermediate_values) for t in trials] == [2, 2, 2, 2]
    shapes = {tuple(getattr(search.hparams_of(t), f) for f in SHARED_FIELDS) for t in trials}
    assert len(shapes) == 1


def test_a_trial_with_seeds_is_the_mean_of_its_seeds(data):
    import optuna

    study = optuna.create_study(direction="maximize", sampler=search.make_sampler("random", 2))

    def without_dropout(trial):  # dropout draws other random numbers in another population
        return search.cpu_space(trial).replace(dropout=0.0)

    trials = search.optimize_population(
        study, data, without_dropout, max_epochs=2, population=2, seeds=3
    )
    assert len(trials) == 2 and {t.user_attrs["population"]["seeds"] for t in trials} == {3}
    for t in trials:
        hp = search.hparams_of(t)
        alone = fit_population([hp.replace(seed=s) for s in range(3)], data, num_threads=1)
        values = [r.best_val_rejection for r in alone]
        assert np.allclose(t.user_attrs["seed_values"], values, atol=0.05)
        assert math.isclose(t.value, np.mean(t.user_attrs["seed_values"]), rel_tol=1e-3)
        assert math.isclose(t.user_attrs["seed_std"], np.std(values, ddof=1), abs_tol=0.05)
        curve = [t.intermediate_values[e] for e in sorted(t.intermediate_values)]
        means = np.mean([curves(r, "val_rejection") for r in alone], axis=0)
        assert np.allclose(curve, means, atol=0.05)


def test_pruned_members_of_a_population_are_pruned_trials(data):
    import optuna

    study = optuna.create_study(
        direction="maximize",
        sampler=search.make_sampler("random", 0),
        pruner=optuna.pruners.ThresholdPruner(lower=1e9),  # prunes every trial at its first report
    )
    trials = search.optimize_population(study, data, "cpu", max_epochs=3, population=3)
    assert [t.state for t in trials] == [optuna.trial.TrialState.PRUNED] * 3
    assert [len(t.intermediate_values) for t in trials] == [1, 1, 1]


def test_populations_run_until_the_trials_are_asked(data):
    import optuna

    study = optuna.create_study(direction="maximize", sampler=search.make_sampler("random", 4))
    trials = search.search_populations(study, data, "cpu", max_epochs=1, population=2, n_trials=5)
    assert [t.number for t in trials] == [0, 1, 2, 3, 4] and len(study.trials) == 5
    firsts = [t.user_attrs["population"]["first"] for t in trials]
    # no trial complete: a population of one (2 trials of its shape); then of two (up to 4)
    assert firsts == [0, 0, 2, 2, 2]
    assert [t.user_attrs["population"]["size"] for t in trials] == [1, 1, 2, 2, 2]
    assert search.search_populations(study, data, "cpu", 1, 2, timeout=0) == []
    with pytest.raises(ValueError, match="n_trials or timeout"):
        search.search_populations(study, data, "cpu", 1, 2)


def test_a_population_is_never_larger_than_the_completed_trials():
    import optuna

    study = optuna.create_study(direction="maximize")
    assert search.population_size(study, 16) == 1  # nothing to compare with yet
    for value in (1.0, 2.0, 3.0):
        study.tell(study.ask(), value)
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)  # not a reference
    assert search.population_size(study, 16) == 3
    assert search.population_size(study, 2) == 2


def test_bad_population_settings_are_refused_with_the_reason(data, tmp_path):
    import optuna

    study = optuna.create_study(direction="maximize")
    with pytest.raises(ValueError, match="population=0 and seeds=1 must be at least 1"):
        search.optimize_population(study, data, "cpu", 1, population=0)
    with pytest.raises(ValueError, match="population=2 and seeds=0 must be at least 1"):
        search.optimize_population(study, data, "cpu", 1, population=2, seeds=0)
    two = optuna.create_study(directions=["maximize", "minimize"])
    with pytest.raises(ValueError, match="maximises one value"):
        search.optimize_population(two, data, "cpu", 1, population=2)
    with pytest.raises(ValueError, match="seeds=0 must be positive"):
        search.run_study("s", n_trials=1, storage=str(tmp_path / "j"), seeds=0, progress=False)
    assert study.trials == [] and two.trials == []  # nothing asked before the refusal


@pytest.mark.parametrize(("population", "seeds"), [(2, 1), (1, 2)])
def test_a_population_and_a_trial_of_seeds_keep_loadable_models(data, tmp_path, population, seeds):
    study = optuna.create_study(direction="maximize", sampler=search.make_sampler("random", 5))
    store = search.artifact_store(tmp_path)
    trials = search.optimize_population(
        study, data, "cpu", 1, population, seeds=seeds, num_threads=1, artifacts=store
    )
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * population
    for t in trials:
        kept = search.trial_model(t, tmp_path)
        assert isinstance(kept, model.Ensemble if seeds > 1 else model.Predictor)
        members = kept.members if seeds > 1 else [kept]
        hp = search.hparams_of(t)
        assert [m.hparams for m in members] == [hp.replace(seed=hp.seed + s) for s in range(seeds)]
        values = [metrics.background_rejection(*train.evaluate(m, data)[::-1]) for m in members]
        assert values == pytest.approx(t.user_attrs.get("seed_values", [t.value]), abs=1e-3)
