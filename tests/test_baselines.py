import numpy as np
import pytest

from qgtools import baselines, metrics
from qgtools.data import split


def test_baselines_on_the_validation_split(jets):
    results = baselines.run_baselines(jets)
    assert [r.name.split(" (")[0] for r in results] == [
        "best single observable",
        "tau_2/tau_1",
        "boosted trees",
    ]
    val = split(jets)[1]
    for r in results:
        assert r.split == "val" and len(r.scores) == len(val)
        assert r.rejection == metrics.background_rejection(val.y, r.scores)
        assert 0.0 < r.auc <= 1.0
    single, _, trees = results
    assert (
        single.auc > 0.7 and trees.auc > 0.7
    )  # the toy jets differ in width, which tau_2/tau_1 ignores


def test_single_observable_is_chosen_on_train_with_gluons_wider(jets):
    train = split(jets)[0]
    j, sign = baselines.best_single_observable(train)
    assert sign == -1.0
    aucs = [metrics.roc_auc(train.y, -train.X[:, k]) for k in range(45)]
    assert aucs[j] == pytest.approx(max(aucs))


def test_tau21_handles_zero_tau1():
    X = np.ones((3, 45), dtype=np.float32)
    X[1, baselines.TAU1_BETA1] = 0
    assert baselines.tau21(X).tolist() == [1.0, 0.0, 1.0]


def test_test_split_only_when_named_and_errors(jets):
    (trees,) = baselines.run_baselines(jets, evaluate_on="test", include=("trees",))
    assert trees.split == "test" and len(trees.scores) == len(split(jets)[2])
    with pytest.raises(ValueError, match="evaluate_on='holdout'"):
        baselines.run_baselines(jets, evaluate_on="holdout")
    with pytest.raises(ValueError, match="Unknown baseline"):
        baselines.run_baselines(jets, include=("bdt",))
