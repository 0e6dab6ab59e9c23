"""Samplers and pruners by name, and the per-trial seeded sampler."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import optuna
import pytest

from qgtools import search
from qgtools.search.samplers import _TrialSeededSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


DATA = Path(__file__).parent / "data"


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


def objective_of(space):
    """A value from the configuration alone, so TPE's draws depend on nothing else."""

    def objective(trial: optuna.Trial) -> float:
        hp = space(trial)
        return hp.lr * 100 + hp.n_layers + hp.n_channels / 64 + hp.dropout + hp.factor

    return objective


@pytest.mark.parametrize("name", ["cpu/tpe", "cpu/random", "reference/tpe", "continuous/tpe"])
def test_a_seeded_study_draws_the_first_20_trials_of_0_1_0(name):
    """``data/first_trials.json`` holds the first 20 trials of these studies as qgtools 0.1.0
    drew them: the order of the ``suggest_*`` calls, their ranges, log flags and choice lists
    are what a seeded study's draws depend on."""
    space, sampler = name.split("/")
    study = optuna.create_study(
        direction="maximize",
        sampler=_TrialSeededSampler(sampler, 0),
        pruner=search.make_pruner("none"),
    )
    study.optimize(objective_of(search.SPACES[space]), n_trials=20)
    recorded = json.loads((DATA / "first_trials.json").read_text())[name]
    assert [trial.params for trial in study.trials] == recorded


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


def test_the_pruners_are_one_table_the_command_line_offers():
    from qgtools.search.cli import _parser

    run = _parser()._subparsers._group_actions[0].choices["run"]
    (pruner,) = [action for action in run._actions if action.dest == "pruner"]
    assert pruner.choices == list(search.PRUNERS)
    for name in search.PRUNERS:
        assert isinstance(search.make_pruner(name), optuna.pruners.BasePruner)
    with pytest.raises(ValueError, match="use 'median', 'hyperband' or 'none'"):
        search.make_pruner("asha")
