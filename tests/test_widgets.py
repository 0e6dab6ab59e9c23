import matplotlib

matplotlib.use("Agg")

import ipywidgets as w

from qgtools.model import HParams
from qgtools.widgets import TrainingExplorer


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
