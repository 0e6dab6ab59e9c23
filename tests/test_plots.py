"""The pictures of the notebooks: feature labels (01), the search pictures of 05 (TPE's densities,
the median pruner, successive halving, a study's slices)."""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from qgtools import plots

pytestmark = pytest.mark.usefixtures("close_figures")


def labels(ax) -> list[str]:
    return [line.get_label() for line in ax.get_lines()]


# --------------------------------------------------------------------------- learning curves


def test_learning_curves_use_whole_epochs_and_labels_that_do_not_overlap():
    history = [
        {"epoch": e, "train_loss": 0.6 - e / 100, "val_loss": 0.55, "val_rejection": 12.0 + e}
        for e in range(2)
    ]
    axes = plots.learning_curves(history)
    assert axes[0].figure.get_layout_engine() is not None  # constrained: no overlapping labels
    for ax in axes:
        low, high = ax.get_xlim()
        assert [t for t in ax.get_xticks() if low <= t <= high] == [1, 2]  # not 1.0, 1.2, ...
    assert len(axes[1].get_ylabel()) <= 20  # fits beside a 3.2-inch panel; the title says more
    shown = plots.learning_curves(history, max_epochs=10)
    assert shown[0].get_xlim() == (0.5, 10.5)


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


# --------------------------------------------------------------------------- feature labels


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("tau_1^(0.5)", r"$\tau_{1}^{(0.5)}$"),
        ("tau_15^(2)", r"$\tau_{15}^{(2)}$"),
        ("tau_2^(1)/tau_1^(1)", r"$\tau_{2}^{(1)}/\tau_{1}^{(1)}$"),
    ],
)
def test_feature_label_is_mathtext_that_matplotlib_renders(name, label):
    from matplotlib.mathtext import MathTextParser

    assert plots.feature_label(name) == label
    MathTextParser("agg").parse(label)  # raises on mathtext matplotlib cannot draw


def test_every_feature_has_a_label_and_unknown_names_are_errors():
    from qgtools import data

    assert len({plots.feature_label(name) for name in data.FEATURE_NAMES}) == 45
    for bad in ("tau_16^(1)", "tau_1^1", "τ_1^(1)", "tau_2^(1)/tau_1^(1)/tau_1^(1)", ""):
        with pytest.raises(ValueError, match="data.FEATURE_NAMES"):
            plots.feature_label(bad)


# --------------------------------------------------------------------------- slice plot


def space_trials(n: int) -> list:
    """``n`` complete trials of a four-parameter space like notebook 05's, plus a pruned one."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.trial import TrialState, create_trial

    distributions = {
        "lr": FloatDistribution(1e-4, 3e-2, log=True),
        "n_channels": IntDistribution(16, 256, log=True),
        "batch_size": CategoricalDistribution([128, 256, 512, 1024]),
        "preprocessing": CategoricalDistribution(["none", "standardize", "log+standardize"]),
        "dropout": FloatDistribution(0.0, 0.5),
    }
    rng = np.random.default_rng(n)
    trials = []
    for number in range(n + 1):
        params = {
            "lr": float(10 ** rng.uniform(-4, -1.6)),
            "n_channels": int(2 ** rng.uniform(4, 8)),
            "batch_size": [128, 256, 512, 1024][number % 4],
            "preprocessing": ["none", "standardize", "log+standardize"][number % 3],
            "dropout": float(rng.uniform(0, 0.5)),
        }
        last = number == n
        trial = create_trial(
            params=params,
            distributions=distributions,
            value=None if last else float(rng.uniform(10, 25)),
            state=TrialState.PRUNED if last else TrialState.COMPLETE,
        )
        trial.number = number
        trials.append(trial)
    return trials


def overlapping(ax: plt.Axes) -> bool:
    """Whether two neighbouring x tick labels of a drawn axes overlap: their boxes, or for
    labels turned by the same angle (parallel strips) their distance across the text."""
    labels = [label for label in ax.get_xticklabels() if label.get_text()]
    for a, b in itertools.pairwise(labels):
        angle = np.radians(a.get_rotation())
        if angle == 0:
            if a.get_window_extent().overlaps(b.get_window_extent()):
                return True
            continue
        x_a, x_b = (ax.transData.transform((label.get_position()[0], 0))[0] for label in (a, b))
        line_height = 1.2 * a.get_fontsize() * ax.figure.dpi / 72
        if abs(x_b - x_a) * np.sin(angle) < line_height:
            return True
    return False


@pytest.mark.parametrize("n", [2, 40])
def test_slice_plot_has_one_readable_panel_per_parameter(n):
    params = ["lr", "n_channels", "batch_size", "preprocessing", "dropout"]
    axes = plots.slice_plot(space_trials(n), params, "gluon rejection (val)")
    assert [ax.get_xlabel() for ax in axes] == params
    assert axes[0].get_ylabel() == "gluon rejection (val)"
    assert axes[4].get_ylabel() == "gluon rejection (val)"  # the first panel of the second row
    assert [len(ax.collections[0].get_offsets()) for ax in axes] == [n] * 5  # the pruned one: out
    lr, channels, batch, preprocessing, dropout = axes
    assert lr.get_xscale() == channels.get_xscale() == "log" and dropout.get_xscale() == "linear"
    assert channels.get_xticks().tolist() == [16, 64, 256]  # powers of 2, at most four
    assert lr.get_xticks().tolist() == pytest.approx([1e-4, 1e-3, 1e-2])
    assert [t.get_text() for t in batch.get_xticklabels()] == ["128", "256", "512", "1024"]
    names = [t.get_text() for t in preprocessing.get_xticklabels()]
    assert names == ["none", "standardize", "log+standardize"]  # one tick each, never merged
    assert preprocessing.get_xticks().tolist() == [0, 1, 2]
    x = preprocessing.collections[0].get_offsets()[:, 0]
    assert np.all(np.abs(x - np.round(x)) <= 0.15)  # jittered around their own tick
    axes[0].figure.canvas.draw()
    for ax in axes:
        assert not overlapping(ax), ax.get_xlabel()
    colour_bar = axes[0].figure.axes[-1]
    assert colour_bar.get_ylabel() == "trial number"
    assert all(float(tick).is_integer() for tick in colour_bar.get_yticks())


def test_slice_plot_takes_a_study_and_names_unknown_parameters():
    class Study:
        trials = space_trials(3)

    (ax,) = plots.slice_plot(Study(), ["lr"], "objective")
    assert ax.get_ylabel() == "objective"
    with pytest.raises(ValueError, match=r"\['momentum'\].*'lr'"):
        plots.slice_plot(space_trials(3), ["lr", "momentum"], "objective")
    with pytest.raises(ValueError, match="at least one complete trial"):
        plots.slice_plot(space_trials(0), ["lr"], "objective")
    with pytest.raises(ValueError, match="2 axes for 1 parameters"):
        plots.slice_plot(space_trials(3), ["lr"], "objective", axes=plt.subplots(1, 2)[1])


def test_population_curves_draw_one_line_per_member_coloured_by_its_value():
    histories = [
        [{"epoch": e, "val_rejection": 10 + e * k} for e in range(3 if k else 1)] for k in range(4)
    ]
    ax = plots.population_curves(histories, [1e-4, 1e-3, 1e-2, 1e-1], "lr")
    lines = ax.get_lines()
    assert len(lines) == 4 and list(lines[0].get_xdata()) == [1]  # stopped after one epoch
    colours = {tuple(line.get_color()) for line in lines}
    assert len(colours) == 4  # one colour per value
    assert ax.figure.axes[1].get_ylabel() == "lr"  # the colour bar names the parameter
    with pytest.raises(ValueError, match="one per member"):
        plots.population_curves(histories, [1.0], "lr")
    plt.close("all")


def test_rejection_curves_ratio_panel_divides_by_the_named_curve():
    rng = np.random.default_rng(0)
    y = rng.permutation(np.arange(4000) % 2)
    weak, strong = rng.normal(size=4000) + 0.8 * y, rng.normal(size=4000) + 1.2 * y
    ax = plots.rejection_curves({"weak": (y, weak), "strong": (y, strong)}, ratio_to="weak")
    main, ratio = ax.figure.axes
    assert main is ax and ratio.get_xlabel() == "quark efficiency (TPR)"
    to_weak, to_strong = (line.get_ydata() for line in ratio.get_lines()[:2])
    assert np.allclose(to_weak, 1.0)  # the curve itself
    assert (to_strong[30:60] > 1).all()  # the stronger tagger rejects more at 40-70% efficiency
    plt.close("all")
    with pytest.raises(ValueError, match="not one of the curves"):
        plots.rejection_curves({"weak": (y, weak)}, ratio_to="trees")
