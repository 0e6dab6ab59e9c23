"""The search pictures of notebook 05: TPE's densities, the median pruner, successive halving."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from qgtools import plots


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def labels(ax) -> list[str]:
    return [line.get_label() for line in ax.get_lines()]


# --------------------------------------------------------------------------- TPE


def test_tpe_split_takes_the_best_tenth_rounded_up_and_at_most_25():
    values = [3.0, 9.0, 1.0, 7.0, 5.0, 2.0, 8.0, 4.0, 6.0, 0.0, 1.5, 2.5, 3.5, 4.5, 5.5]
    good = plots.tpe_split(values)
    assert good.sum() == 2  # ceil(0.1 * 15), as Optuna's default gamma
    assert sorted(np.asarray(values)[good]) == [8.0, 9.0]
    assert plots.tpe_split(np.arange(400.0)).sum() == 25
    assert plots.tpe_split([1.0]).tolist() == [True]
    with pytest.raises(ValueError, match="gamma=0"):
        plots.tpe_split(values, gamma=0)
    with pytest.raises(ValueError, match="without NaN"):
        plots.tpe_split([1.0, np.nan])


def test_parzen_density_is_normalised_peaks_at_its_points_and_never_vanishes():
    grid = np.linspace(-4, -1, 301)
    density = plots.parzen_density([-3.0, -3.0], grid, -4, -1)
    area = np.sum((density[1:] + density[:-1]) / 2 * np.diff(grid))
    assert area == pytest.approx(1.0)
    assert grid[np.argmax(density)] == pytest.approx(-3.0, abs=0.05)
    assert density.min() > 0  # the broad prior kernel reaches the whole range
    with pytest.raises(ValueError, match="is empty"):
        plots.parzen_density([0.0], grid, 1, 1)


@pytest.mark.parametrize("n", [1, 2, 6, 14])
def test_parzen_density_is_optunas_estimator_for_a_log_scale_float(n):
    """The notebook says the densities are TPE's own: checked against Optuna's (private) class."""
    from optuna.distributions import FloatDistribution

    try:
        from optuna.samplers._tpe.parzen_estimator import (
            _ParzenEstimator,
            _ParzenEstimatorParameters,
        )
        from optuna.samplers._tpe.sampler import default_weights

        settings = _ParzenEstimatorParameters(
            prior_weight=1.0,
            consider_magic_clip=True,
            consider_endpoints=False,
            weights=default_weights,
            multivariate=False,
        )
    except (ImportError, TypeError) as error:  # private API: it may move between versions
        pytest.skip(f"Optuna's Parzen estimator is not where it was: {error}")
    low, high = 1e-4, 3e-2
    lr = 10 ** np.random.default_rng(n).uniform(np.log10(low), np.log10(high), n)
    estimator = _ParzenEstimator(
        {"lr": lr}, {"lr": FloatDistribution(low, high, log=True)}, settings
    )
    grid = np.linspace(np.log10(low), np.log10(high), 400)
    ours = plots.parzen_density(np.log10(lr), grid, np.log10(low), np.log10(high))
    theirs = np.exp(estimator.log_pdf({"lr": 10**grid})) * np.log(10)  # per log10 x, not ln x
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)


def test_tpe_model_puts_the_largest_ratio_where_the_good_trials_are():
    rng = np.random.default_rng(0)
    bad = 10 ** rng.uniform(-4, -1.5, 18)
    lr = np.concatenate([[1e-3, 1.1e-3], bad])
    values = np.concatenate([[30.0, 29.0], rng.uniform(10, 20, 18)])
    grid, below, above, best = plots.tpe_model(lr, values, 1e-4, 3e-2)
    assert len(grid) == len(below) == len(above) == 400
    assert grid[0] == pytest.approx(1e-4) and grid[-1] == pytest.approx(3e-2)
    assert 5e-4 < best < 2e-3
    with pytest.raises(ValueError, match="inside"):
        plots.tpe_model([1e-5, 1e-3], [1.0, 2.0], 1e-4, 3e-2)
    with pytest.raises(ValueError, match="at least two trials"):
        plots.tpe_model([1e-3], [1.0], 1e-4, 3e-2)


def test_tpe_densities_draws_the_trials_and_both_densities():
    lr, values = [2e-4, 1e-3, 5e-3, 2e-2], [12.0, 25.0, 20.0, 8.0]
    top, bottom = plots.tpe_densities(lr, values, 1e-4, 3e-2)
    assert len(top.collections) == 2  # bad and good trials
    assert [c.get_offsets().shape[0] for c in top.collections] == [3, 1]
    assert labels(bottom)[:2] == ["l(x): good trials", "g(x): bad trials"]
    assert labels(bottom)[2].startswith("largest l/g: ")
    assert bottom.get_xscale() == "log" and bottom.get_xlabel() == "learning rate"


# --------------------------------------------------------------------------- median pruning


def test_median_per_epoch_uses_the_curves_that_reached_each_epoch():
    assert plots.median_per_epoch([[1, 2, 3], [3, 4], [5]]).tolist() == [3.0, 3.0, 3.0]
    assert plots.median_per_epoch([[1, 2], [3, 6]]).tolist() == [2.0, 4.0]
    assert len(plots.median_per_epoch([])) == 0


def test_median_pruning_draws_earlier_trials_their_median_and_the_pruned_one():
    earlier = [[10, 14, 16], [12, 15, 17], [8, 11, 12]]
    ax = plots.median_pruning(earlier, [9, 10])
    assert len(ax.get_lines()) == len(earlier) + 2
    assert labels(ax)[0] == "complete trials before it" and labels(ax)[-2:] == [
        "their median",
        "pruned trial",
    ]
    assert ax.get_lines()[-2].get_ydata().tolist() == [10.0, 14.0, 16.0]
    assert ax.collections[-1].get_offsets().tolist() == [[2.0, 10.0]]  # the x where it stopped


# --------------------------------------------------------------------------- halving


def test_successive_halving_keeps_a_third_and_triples_the_epochs():
    assert plots.successive_halving(27, 1, 27) == [(27, 1), (9, 3), (3, 9), (1, 27)]
    assert plots.successive_halving(30, 1, 27) == [(30, 1), (10, 3), (3, 9), (1, 27)]
    assert plots.successive_halving(5, 1, 81) == [(5, 1), (1, 3)]
    assert plots.successive_halving(16, 2, 8, reduction_factor=2) == [(16, 2), (8, 4), (4, 8)]
    with pytest.raises(ValueError, match="reduction_factor=1"):
        plots.successive_halving(9, 1, 9, reduction_factor=1)
    with pytest.raises(ValueError, match="n_trials=0"):
        plots.successive_halving(0, 1, 9)
    with pytest.raises(ValueError, match="min_epochs=10"):
        plots.successive_halving(9, 10, 9)


def test_hyperband_brackets_match_the_papers_table_for_r_81():
    # Li et al. 2018 (JMLR 18), Table 1: R = 81, eta = 3
    assert plots.hyperband_brackets(81) == [
        [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        [(34, 3), (11, 9), (3, 27), (1, 81)],
        [(15, 9), (5, 27), (1, 81)],
        [(8, 27), (2, 81)],
        [(5, 81)],
    ]
    assert plots.hyperband_brackets(6, min_epochs=2) == [[(3, 2), (1, 6)], [(2, 6)]]
    with pytest.raises(ValueError, match="not min_epochs=1 times a power"):
        plots.hyperband_brackets(20)


def test_halving_rungs_draws_one_line_per_bracket():
    brackets = plots.hyperband_brackets(27)
    ax = plots.halving_rungs(brackets)
    assert len(ax.get_lines()) == len(brackets) == 4
    assert ax.get_lines()[0].get_xdata().tolist() == [1, 3, 9, 27]
    assert ax.get_lines()[0].get_ydata().tolist() == [27, 9, 3, 1]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert labels(plots.halving_rungs(brackets[:1], labels=["27 trials"])) == ["27 trials"]
    with pytest.raises(ValueError, match="2 labels for 4 brackets"):
        plots.halving_rungs(brackets, labels=["a", "b"])
