from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from qgtools import metrics
from qgtools.metrics import background_rejection

# Hand-worked: y = 1 0 1 0 0 1 with falling scores gives ROC points (fpr, tpr)
# (0,0) (0,1/3) (1/3,1/3) (1/3,2/3) (2/3,2/3) (1,2/3) (1,1).
Y6 = np.array([1, 0, 1, 0, 0, 1])
S6 = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])


@pytest.mark.parametrize(
    "efficiency, expected",
    [
        (0.5, 3.0),  # on the horizontal segment from (0,1/3) to (1/3,1/3)... reached at (1/3, 2/3)
        (2 / 3, 3.0),  # vertical segment at tpr = 2/3: its lowest FPR (1/3) counts
        (5 / 6, 1.0),  # between (1, 2/3) and (1, 1)
        (1.0, 1.0),
        (0.2, math.inf),  # reached at (0, 1/3): no gluon passes
    ],
)
def test_hand_worked_rejection(efficiency, expected):
    assert background_rejection(Y6, S6, efficiency) == pytest.approx(expected)


def test_linear_interpolation_across_a_tie():
    # Tied middle scores make one diagonal step from (0, .5) to (.5, 1): at tpr .75, fpr .25.
    assert background_rejection([1, 0, 1, 0], [0.9, 0.5, 0.5, 0.1], 0.75) == pytest.approx(4.0)


def test_constant_scores_give_no_information():
    y = np.array([0, 1] * 50)
    assert background_rejection(y, np.full(100, 0.3)) == pytest.approx(2.0)
    assert background_rejection(y, np.full(100, 0.3), 0.25) == pytest.approx(4.0)


def test_perfect_separation_is_infinite():
    assert background_rejection([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == math.inf


def test_rejection_agrees_with_sklearn_roc():
    rng = np.random.default_rng(1)
    y = rng.permutation(np.arange(4000) % 2)
    scores = rng.normal(size=4000) + 0.8 * y
    fpr, tpr, _ = roc_curve(y, scores, drop_intermediate=False)
    expected = 1 / fpr[np.argmax(tpr >= 0.5)]  # 2000 quarks: a point sits exactly at tpr = 0.5
    assert background_rejection(y, scores) == pytest.approx(expected)
    assert metrics.roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores))
    assert metrics.roc_auc(y, scores.round(1)) == pytest.approx(roc_auc_score(y, scores.round(1)))


def test_rejection_curve_for_the_hep_plot():
    rng = np.random.default_rng(2)
    y = rng.permutation(np.arange(1000) % 2)
    scores = rng.normal(size=1000) + y
    efficiency, rejection = metrics.rejection_curve(y, scores)
    assert np.isfinite(rejection).all() and (np.diff(efficiency) >= 0).all()
    assert (np.diff(rejection) <= 0).all()
    assert rejection[-1] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "y, scores, kwargs, message",
    [
        ([1, 1, 1], [0.1, 0.2, 0.3], {}, "3 quarks and 0 gluons"),
        ([1, 0, 1], [0.1, np.nan, 0.3], {}, "1 NaN"),
        ([1, 0], [0.1, 0.2, 0.3], {}, "2 entries but scores has 3"),
        ([1, 0], [0.1, 0.2], {"signal_efficiency": 0.0}, r"must be in \(0, 1\]"),
        ([1, 0], [0.1, 0.2], {"signal_efficiency": 1.5}, r"must be in \(0, 1\]"),
        ([1, 2], [0.1, 0.2], {}, "only 1 .quark"),
    ],
)
def test_bad_input(y, scores, kwargs, message):
    with pytest.raises(ValueError, match=message):
        background_rejection(y, scores, **kwargs)


def test_bootstrap_interval_brackets_the_estimate():
    rng = np.random.default_rng(3)
    y = rng.permutation(np.arange(2000) % 2)
    scores = rng.normal(size=2000) + 1.2 * y
    estimate, low, high = metrics.bootstrap_interval(background_rejection, y, scores, n=300, seed=0)
    assert estimate == background_rejection(y, scores)
    assert low < estimate < high
    wider = metrics.bootstrap_interval(background_rejection, y, scores, n=300, seed=0, level=0.95)
    assert wider[1] <= low and wider[2] >= high
    assert metrics.bootstrap_interval(background_rejection, y, scores, n=300, seed=0) == (
        estimate,
        low,
        high,
    )


def test_bootstrap_redraws_resamples_missing_a_class_and_allows_inf():
    y = np.array([1] * 20 + [0, 0])
    scores = np.r_[np.linspace(0.5, 1, 20), 0.1, 0.2]
    estimate, low, high = metrics.bootstrap_interval(background_rejection, y, scores, n=200)
    assert estimate == math.inf and high == math.inf


def test_the_reference_mistakes_are_not_the_rejection():
    """Thresholded predictions and per-batch averages miss the rejection by a lot."""
    rng = np.random.default_rng(4)
    y = rng.permutation(np.arange(20_000) % 2)
    scores = 1 / (1 + np.exp(-(rng.normal(size=20_000) + 1.6 * (y - 0.5))))
    right = background_rejection(y, scores)
    thresholded = metrics.thresholded_rejection(y, scores)
    per_batch = metrics.per_batch_mean_rejection(y, scores, batch_size=100)
    assert 15 < right < 25  # about 20
    assert thresholded < 0.5 * right  # about 7: a straight line through one ROC point
    assert per_batch > 1.1 * right  # about 25: small batches are biased high


def _quark_gluon_scores(n: int = 400):
    rng = np.random.default_rng(5)
    y = rng.permutation(np.arange(n) % 2)
    return y, 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * (y - 0.5))))


@pytest.mark.parametrize(
    "shape_y, shape_s, message",
    [
        pytest.param("one-hot", "two-column", r"y_true has shape \(400, 2\).*argmax", id="one-hot"),
        pytest.param(
            "1-D", "two-column", r"scores has shape \(400, 2\).*scores\[:, 1\]", id="two-column"
        ),
        pytest.param("column", "column", r"y_true has shape \(400, 1\)", id="columns"),
        pytest.param("1-D", "column", r"scores has shape \(400, 1\).*ravel", id="score-column"),
    ],
)
@pytest.mark.parametrize(
    "metric",
    [background_rejection, metrics.roc_auc, metrics.rejection_curve, metrics.thresholded_rejection],
)
def test_only_one_score_and_one_label_per_jet(metric, shape_y, shape_s, message):
    """One-hot labels or class-probability columns are refused, not flattened into nonsense."""
    y, s = _quark_gluon_scores()
    ys = {"1-D": y, "one-hot": np.eye(2, dtype=np.int64)[y], "column": y[:, None]}[shape_y]
    ss = {"two-column": np.c_[1 - s, s], "column": s[:, None]}[shape_s]
    with pytest.raises(ValueError, match=message):
        metric(ys, ss)
    metric(y, s)  # the same jets, one label and one score each, are fine


def test_nan_scores_are_refused_everywhere():
    y, s = _quark_gluon_scores()
    s[[10, 20]] = np.nan
    for call in (
        lambda: background_rejection(y, s),
        lambda: metrics.roc_auc(y, s),
        lambda: metrics.bootstrap_interval(background_rejection, y, s, n=5),
    ):
        with pytest.raises(ValueError, match="2 NaN values"):
            call()


# ------------------------------------------------------------------- paired differences


def _two_models(seed: int = 0, n: int = 4000):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    shared = rng.normal(size=n)  # what both models see: the jet-to-jet noise they share
    a = 1.2 * y + shared + 0.3 * rng.normal(size=n)
    b = 1.0 * y + shared + 0.3 * rng.normal(size=n)
    return y, a, b


def test_paired_difference_is_the_difference_and_narrower_than_unpaired():
    y, a, b = _two_models()
    diff, low, high = metrics.paired_difference(background_rejection, y, a, b, n=300)
    assert diff == pytest.approx(background_rejection(y, a) - background_rejection(y, b))
    assert low <= diff <= high
    # Unpaired: the two single-model intervals, added in quadrature, are much wider.
    _, la, ha = metrics.bootstrap_interval(background_rejection, y, a, n=300)
    _, lb, hb = metrics.bootstrap_interval(background_rejection, y, b, n=300)
    unpaired = np.hypot(ha - la, hb - lb)
    assert high - low < 0.7 * unpaired


def test_paired_difference_of_a_model_with_itself_is_exactly_zero():
    y, a, _ = _two_models(1)
    assert metrics.paired_difference(background_rejection, y, a, a, n=50) == (0.0, 0.0, 0.0)


def test_paired_difference_averages_seed_rows_and_covers_seed_noise():
    y, a, b = _two_models(2)
    rng = np.random.default_rng(5)
    weak = 0.4 * y + rng.normal(size=len(y))  # a second "seed" that trained much worse
    seeds_a = np.stack([a, weak])
    diff, low, high = metrics.paired_difference(background_rejection, y, seeds_a, b, n=300)
    per_seed = [background_rejection(y, row) for row in seeds_a]
    assert diff == pytest.approx(np.mean(per_seed) - background_rejection(y, b))
    # Drawing the seeds again gives both-good and both-bad resamples: the interval spans most of
    # the seed-to-seed gap, which the jets alone (one seed) never would.
    gap = per_seed[0] - per_seed[1]
    _, low1, high1 = metrics.paired_difference(background_rejection, y, a, b, n=300)
    assert high - low > 0.6 * gap > 3 * (high1 - low1)


@pytest.mark.parametrize(
    ("scores_b", "message"),
    [(np.zeros(10), "expected one score per jet"), (np.full(4000, np.nan), "NaN")],
)
def test_paired_difference_refuses_mismatched_or_nan_scores(scores_b, message):
    y, a, _ = _two_models()
    with pytest.raises(ValueError, match=message):
        metrics.paired_difference(background_rejection, y, a, scores_b, n=5)


# ------------------------------------------------------------------------ the verdict rule


@pytest.mark.parametrize(
    "estimate, i68, i95, word",
    [
        (2.0, (1.0, 3.0), (0.5, 3.5), "ahead"),
        (-2.0, (-3.0, -1.0), (-3.5, -0.5), "behind"),
        (1.7, (0.8, 3.4), (-0.4, 5.6), "a hint"),  # notebook 07's line that called it a lead
        (-1.0, (-2.0, -0.1), (-3.0, 0.5), "a hint"),
        (0.3, (-0.5, 1.1), (-1.0, 1.6), "level"),
        (0.0, (0.0, 0.0), (0.0, 0.0), "level"),  # fast mode: every pair equal
    ],
)
def test_judge_has_three_tiers(estimate, i68, i95, word):
    assert metrics.judge(estimate, i68, i95, "test").word == word


def test_verdict_words_name_the_leader():
    assert metrics.judge(1.7, (0.8, 3.4), (-0.4, 5.6), "e").says("TPE", "random") == (
        "a hint that TPE is ahead of random"
    )
    assert metrics.judge(-1.0, (-2, -0.1), (-3, 0.5), "e").says("TPE", "random") == (
        "a hint that random is ahead of TPE"
    )
    assert metrics.judge(-2, (-3, -1), (-4, -0.5), "e").says("A", "B") == "A behind B"
    assert metrics.judge(2, (1, 3), (0.5, 4), "e").says("A", "B") == "A ahead of B"
    line = metrics.judge(0.3, (-0.5, 1.1), (-1, 1.6), "3 paired repeats").line("A", "B")
    assert (
        line == "A - B: +0.3, 68% [-0.5, +1.1], 95% [-1.0, +1.6] (3 paired repeats): A level with B"
    )


@pytest.mark.parametrize(
    "i68, i95",
    [((1.0, 0.0), (-1.0, 2.0)), ((-2.0, 1.0), (-1.0, 2.0)), ((np.nan, 1.0), (-1.0, 2.0))],
)
def test_judge_refuses_malformed_intervals(i68, i95):
    with pytest.raises(ValueError, match="interval|NaN"):
        metrics.judge(0.5, i68, i95, "e")


def test_repeats_verdict_is_a_student_t_interval():
    # differences 1, 2, 3: mean 2, standard error 1/sqrt(3); t quantiles for 2 degrees of freedom
    v = metrics.repeats_verdict([11.0, 12.0, 13.0], [10.0, 10.0, 10.0], "repeats of a search")
    sem = 1 / math.sqrt(3)
    assert v.estimate == pytest.approx(2.0)
    assert v.interval_68 == pytest.approx((2 - 1.3117 * sem, 2 + 1.3117 * sem), abs=1e-3)
    assert v.interval_95 == pytest.approx((2 - 4.3027 * sem, 2 + 4.3027 * sem), abs=1e-3)
    assert v.word == "a hint"  # a one-standard-error rule would have called it a clear lead
    assert v.evidence == "3 paired repeats of a search"
    assert metrics.repeats_verdict([5, 6, 7, 8, 9], [1, 2, 3, 4, 5.5]).word == "ahead"
    assert metrics.repeats_verdict([1.0, 2.0], [1.0, 2.0]).word == "level"


@pytest.mark.parametrize(
    "a, b, message",
    [
        ([1.0], [0.0], "at least two pairs"),
        ([1, 2], [1, 2, 3], "shapes"),
        ([1, np.nan], [0, 0], "NaN"),
    ],
)
def test_repeats_verdict_refuses_bad_repeats(a, b, message):
    with pytest.raises(ValueError, match=message):
        metrics.repeats_verdict(a, b)


def test_bootstrap_verdict_uses_one_set_of_resamples():
    rng = np.random.default_rng(5)
    y = rng.permutation(np.arange(2000) % 2)
    a = rng.normal(size=(3, 2000)) + 1.0 * y
    b = rng.normal(size=2000) + 0.9 * y
    v = metrics.bootstrap_verdict(background_rejection, y, a, b, n=200, seed=3)
    d68 = metrics.paired_difference(background_rejection, y, a, b, n=200, seed=3)
    d95 = metrics.paired_difference(background_rejection, y, a, b, n=200, seed=3, level=0.95)
    assert (v.estimate, *v.interval_68) == d68
    assert v.interval_95 == d95[1:]
    assert v.evidence == "200 paired resamples of jets and seeds"
    assert metrics.bootstrap_verdict(background_rejection, y, b, b, n=20).word == "level"
    assert "of jets" in metrics.bootstrap_verdict(background_rejection, y, b, a[0], n=20).evidence


def test_noise_verdict_scales_with_the_noise():
    assert metrics.noise_verdict(3.0, 1.0, "seed noise").word == "ahead"
    assert metrics.noise_verdict(1.5, 1.0, "seed noise").word == "a hint"
    assert metrics.noise_verdict(-0.5, 1.0, "seed noise").word == "level"
    with pytest.raises(ValueError, match="noise"):
        metrics.noise_verdict(1.0, float("nan"), "seed noise")
