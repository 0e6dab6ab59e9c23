"""Hyperparameter importances over repeated studies."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from qgtools import search

optuna.logging.set_verbosity(optuna.logging.WARNING)


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
