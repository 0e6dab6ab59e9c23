import matplotlib

matplotlib.use("Agg")

import ipywidgets as w
import pytest

from qgtools.model import HParams
from qgtools.widgets import TrainingExplorer, curve_figure, short_float


def test_controls_make_validated_hparams(jets):
    explorer = TrainingExplorer(jets, max_epochs=2)
    explorer.controls["n_layers"].value = 2
    explorer.controls["n_channels"].value = 16
    hp = explorer.hparams()
    assert isinstance(hp, HParams) and (hp.n_layers, hp.n_channels, hp.max_epochs) == (2, 16, 2)
    assert isinstance(explorer.widget(), w.VBox)


def test_train_button_records_results_and_redraws_each_epoch(jets):
    explorer = TrainingExplorer(jets, max_epochs=2)
    explorer.controls["n_channels"].value = 16
    explorer.button.click()
    explorer.controls["lr"].value = 1e-2
    explorer.train()
    assert len(explorer.results) == 2
    hp, result = explorer.results[-1]
    assert hp.lr == 1e-2 and len(result.history) == 2
    assert explorer.live_curve.redraws == 4  # two runs, two epochs each
    assert f"{result.best_val_rejection:.1f}" in explorer.status.value
    assert explorer.table.value.count("<tr>") == 3
    assert not explorer.button.disabled


def test_invalid_choice_is_reported_not_raised(jets):
    explorer = TrainingExplorer(jets, base=HParams(n_layers=1, n_channels=16, batch_size=64))
    explorer.controls["dropout"].max = 1.0
    explorer.controls["dropout"].value = 1.0
    assert explorer.train() is None
    assert "HParams.dropout=1.0" in explorer.status.value and explorer.results == []


def test_train_uses_one_torch_thread_by_default(jets, monkeypatch):
    from qgtools import widgets

    threads = []
    real_fit = widgets.fit

    def recording_fit(*args, **kwargs):
        threads.append(kwargs.get("num_threads", "not given"))
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(widgets, "fit", recording_fit)
    TrainingExplorer(jets, max_epochs=1).train()
    TrainingExplorer(jets, max_epochs=1, num_threads=None).train()
    assert threads == [1, None]


def test_a_typed_learning_rate_is_used_as_typed(jets):
    explorer = TrainingExplorer(jets, max_epochs=1)
    explorer.controls["lr"].value = 3.0e-4  # what a person types; a log slider made it 3.16e-4
    assert explorer.controls["lr"].value == 3.0e-4 and explorer.hparams().lr == 3.0e-4
    explorer.train()
    assert ">3.0e-4</td>" in explorer.table.value and explorer.results[0][0].lr == 3.0e-4


def test_a_learning_rate_that_is_not_positive_is_reported(jets):
    explorer = TrainingExplorer(jets, max_epochs=1)
    explorer.controls["lr"].value = -1e-3
    assert explorer.train() is None and "Invalid choice" in explorer.status.value


@pytest.mark.parametrize(("x", "text"), [(3e-4, "3.0e-4"), (1e-3, "1.0e-3"), (0.0316, "3.2e-2")])
def test_short_float(x, text):
    assert short_float(x) == text


def test_the_first_epoch_is_drawn_on_the_whole_epoch_axis():
    history = [{"epoch": 0, "train_loss": 0.6, "val_loss": 0.55, "val_rejection": 12.0}]
    fig = curve_figure(history, max_epochs=30)
    for ax in curve_figure(history, max_epochs=1).axes:  # one epoch: one tick, at 1
        low, high = ax.get_xlim()
        assert [t for t in ax.get_xticks() if low <= t <= high] == [1]
    for ax in fig.axes:
        assert ax.get_xlim() == (0.5, 30.5)
        assert all(tick == int(tick) for tick in ax.get_xticks())
        assert all(line.get_marker() not in ("None", None, "") for line in ax.get_lines())
    assert fig.get_layout_engine() is not None  # the two panels' labels do not overlap


def test_the_results_table_has_spaced_columns(jets):
    explorer = TrainingExplorer(jets, max_epochs=1)
    explorer.train()
    assert explorer.table.value.count("padding") == 2 * 8  # header and one row, 8 columns
