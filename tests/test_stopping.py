from __future__ import annotations

import math

import optuna
import pytest

from qgtools import stopping

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_a_step_counts_only_when_it_beats_the_record_by_more_than_the_noise():
    values = [10.0, 10.5, 11.2, None, 11.0, 12.3]
    assert stopping.trials_without_news(values, noise=1.0) == [0, 1, 0, 1, 2, 0]
    assert stopping.trials_without_news(values, noise=0.0) == [0, 0, 0, 1, 2, 0]


def test_small_steps_add_up_to_news_against_the_last_counted_record():
    # each step is 0.6, under the noise of 1; two of them together are news
    assert stopping.trials_without_news([10.0, 10.6, 11.2, 11.8], noise=1.0) == [0, 1, 0, 1]


def test_stop_point():
    values = [10.0, 10.5, 11.2, None, 11.0, 12.3]
    assert stopping.stop_point(values, noise=1.0, patience=2) == 5
    assert stopping.stop_point(values, noise=1.0, patience=3) is None
    assert stopping.stop_point([], noise=1.0, patience=1) is None


@pytest.mark.parametrize(
    ("patience", "noise", "named"),
    [(0, 1.0, "patience=0"), (True, 1.0, "patience=True"), (2.5, 1.0, "patience=2.5"),
     (3, -1.0, "noise=-1.0"), (3, math.nan, "noise=nan"), (3, math.inf, "noise=inf")],
)  # fmt: skip
def test_a_bad_rule_is_a_clear_error(patience, noise, named):
    with pytest.raises(ValueError, match=named):
        stopping.NoImprovementStopper(patience, noise)


def test_the_callback_stops_a_study_where_stop_point_says():
    values = [5.0, 8.0, 8.4, 7.0, 8.9, 9.5, 9.0, 9.2, 9.3, 9.1, 12.0]

    def replay(trial):
        trial.suggest_float("x", 0, 1)
        return values[trial.number]

    study = optuna.create_study(direction="maximize")
    study.optimize(
        replay, n_trials=len(values), callbacks=[stopping.NoImprovementStopper(3, noise=1.0)]
    )
    expected = stopping.stop_point(values, noise=1.0, patience=3)
    assert expected == 5  # 8.0 is news; 8.4, 7.0 and 8.9 (not above 9.0) are not
    assert len(study.trials) == expected
    assert stopping.finished_values(study) == values[:expected]


def test_pruned_trials_count_as_no_news_and_failed_ones_are_left_out():
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=3.0))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    assert stopping.finished_values(study) == [3.0, None]
    assert stopping.NoImprovementStopper(1, 0.5).should_stop(study)
    assert not stopping.NoImprovementStopper(2, 0.5).should_stop(study)


def test_the_stopper_needs_a_maximised_single_objective_study():
    study = optuna.create_study(directions=["maximize", "minimize"])
    with pytest.raises(ValueError, match="single-objective"):
        stopping.NoImprovementStopper(2, 1.0).should_stop(study)


def test_the_rule_never_judges_the_random_start_up_alone():
    values = [9.0, 7.0, 8.0, 6.0, 7.5, 8.5, 8.8, 8.1, 12.0]  # one good random draw first
    assert stopping.stop_point(values, noise=1.0, patience=3) == 4
    assert stopping.stop_point(values, noise=1.0, patience=3, startup=5) == 8  # 3 modelled trials
    assert stopping.stop_point(values[:7], noise=1.0, patience=3, startup=5) is None
    with pytest.raises(ValueError, match="startup=-1"):
        stopping.stop_point(values, noise=1.0, patience=3, startup=-1)
