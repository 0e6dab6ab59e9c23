"""plots.pareto_front: the trials, the Pareto-optimal ones joined, the chosen one (notebook 07)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from qgtools import plots

# (validation rejection, FLOPs per jet); trials 1, 3 and 4 are Pareto-optimal
VALUES = np.array([[20.0, 9e4], [24.0, 5e4], [18.0, 3e4], [22.0, 8e3], [26.0, 4e5]])
FRONT = [4, 1, 3]


pytestmark = pytest.mark.usefixtures("close_figures")


def line(ax, label):
    (found,) = [artist for artist in ax.get_lines() if artist.get_label() == label]
    return found


def test_log_flops_axis_and_labels():
    ax = plots.pareto_front(VALUES, FRONT, chosen=1)
    assert ax.get_xscale() == "log"
    assert "FLOPs" in ax.get_xlabel() and "rejection" in ax.get_ylabel()
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert sorted(labels) == ["Pareto-optimal", "all trials", "chosen"]


def test_the_front_is_joined_in_order_of_flops():
    ax = plots.pareto_front(VALUES, FRONT)
    front = line(ax, "Pareto-optimal")
    assert list(front.get_xdata()) == [8e3, 5e4, 4e5]  # cheapest first, so the line is a staircase
    assert list(front.get_ydata()) == [22.0, 24.0, 26.0]
    (everything,) = ax.collections
    assert np.array_equal(everything.get_offsets(), VALUES[:, ::-1])  # every trial, front too


def test_the_chosen_trial_is_marked_and_optional():
    ax = plots.pareto_front(VALUES, FRONT, chosen=3)
    marked = line(ax, "chosen")
    assert (list(marked.get_xdata()), list(marked.get_ydata())) == ([8e3], [22.0])
    ax = plots.pareto_front(VALUES, FRONT)
    assert "chosen" not in [text.get_text() for text in ax.get_legend().get_texts()]


def test_draws_on_the_axes_given():
    _, ax = plt.subplots()
    assert plots.pareto_front(VALUES, np.array(FRONT), chosen=4, ax=ax) is ax


@pytest.mark.parametrize(
    ("values", "front", "chosen", "named"),
    [
        (VALUES[:, 0], FRONT, None, "shape"),
        (VALUES, [5], None, "front=[5]"),
        (VALUES, [], None, "front=[]"),
        (VALUES, FRONT, -1, "chosen=-1"),
        (np.array([[20.0, 0.0]]), [0], None, "positive"),
    ],
)
def test_bad_input_is_named(values, front, chosen, named):
    with pytest.raises(ValueError, match=named.replace("[", r"\[").replace("]", r"\]")):
        plots.pareto_front(values, front, chosen=chosen)


def test_closing_rows_against_flops_mark_the_ensembles():
    rows = {"single": (3_000.0, 20.0, 19.0, 21.5), "ensemble": (15_000.0, 22.0, 21.0, 23.0)}
    ax = plots.rejection_against_flops(rows, marked=["ensemble"])
    assert ax.get_xscale() == "log" and "(test)" in ax.get_ylabel()
    drawn = {c.get_label(): c.lines[0] for c in ax.containers}  # one errorbar per row
    assert {name: line.get_marker() for name, line in drawn.items()} == {
        "single": "o",
        "ensemble": "*",
    }
    assert {name: (line.get_xdata()[0], line.get_ydata()[0]) for name, line in drawn.items()} == {
        "single": (3_000.0, 20.0),
        "ensemble": (15_000.0, 22.0),
    }
    with pytest.raises(ValueError, match="not in rows"):
        plots.rejection_against_flops(rows, marked=["trees"])
    with pytest.raises(ValueError, match="FLOPs per jet > 0"):
        plots.rejection_against_flops({"trees": (0.0, 20.0, 19.0, 21.0)})


def test_the_variance_of_a_mean_falls_to_what_members_share():
    ax = plots.ensemble_variance({"seeds": 0.9, "independent": 0.0}, max_members=4)
    curves = {line.get_label().split(" (")[0]: line.get_ydata() for line in ax.get_lines()}
    np.testing.assert_allclose(curves["independent"], [1, 1 / 2, 1 / 3, 1 / 4])
    np.testing.assert_allclose(curves["seeds"], [1, 0.95, 0.9 + 0.1 / 3, 0.925])
    assert "rho = 0.900" in [line.get_label() for line in ax.get_lines()][0]
    with pytest.raises(ValueError, match="-1..1"):
        plots.ensemble_variance({"bad": 1.5})
