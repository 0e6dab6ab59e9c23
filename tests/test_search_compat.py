"""Studies made by qgtools 0.1.0 keep working: the same draws, and old journals top up."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pytest
from test_search import cli, run_args

from qgtools import search
from qgtools.search.samplers import _TrialSeededSampler

DATA = Path(__file__).parent / "data"


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


def test_a_journal_recorded_by_0_1_0_tops_up_without_allow_mismatch(tmp_path, toy_npz):
    """``data/study-0.1.0.journal``: study ``toy``, 2 trials of ``search run --data toy.npz
    --jets -1 --max-epochs 1 --sampler random --pruner none`` with qgtools 0.1.0."""
    journal = tmp_path / "old.journal"
    shutil.copy(DATA / "study-0.1.0.journal", journal)
    args = run_args(str(journal), toy_npz, trials=3, workers=1)
    out = cli(*args, "--sampler", "random", "--pruner", "none", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    study = optuna.load_study(study_name="toy", storage=search.open_storage(journal))
    assert search.count_finished(study) == 3
