"""An ipywidgets explorer for manual search; used in notebook 04.

:class:`TrainingExplorer` holds sliders and dropdowns for a few hyperparameters, a Train
button, a live learning curve and the resulting rejection. Its logic (reading the controls,
training, recording results) is plain Python, so it is tested without a browser.
"""

from __future__ import annotations

import ipywidgets as w
import matplotlib.pyplot as plt
from IPython.display import display
from lightning.pytorch import Callback

from qgtools.data import JetData
from qgtools.model import ACTIVATIONS, CPU_HPARAMS, HParams
from qgtools.plots import learning_curves
from qgtools.preprocessing import PREPROCESSING_KINDS
from qgtools.train import TrainResult, fit


class LiveCurve(Callback):
    """Redraws the learning curve in an Output widget after every validation epoch."""

    def __init__(self, output: w.Output) -> None:
        self.output = output
        self.redraws = 0

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not pl_module.history:
            return
        with self.output:
            self.output.clear_output(wait=True)
            fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
            learning_curves(pl_module.history, axes)
            plt.show()
            plt.close(fig)
        self.redraws += 1


class TrainingExplorer:
    """Sliders for a few hyperparameters, a Train button, a live curve and the results table.

    Args:
        data: the jets to train on (split with ``split_seed`` inside ``fit``).
        base: values for the hyperparameters without a control (default ``CPU_HPARAMS``).
        max_epochs: the epochs slider's starting value.
        split_seed: passed to ``fit``.
        num_threads: torch threads while training; 1 (the default) is fastest for these small
            models, and two threads on a busy two-core machine can be many times slower
            (notebook 02). ``None`` leaves torch's setting.
    """

    def __init__(
        self,
        data: JetData,
        base: HParams | None = None,
        max_epochs: int = 5,
        split_seed: int = 0,
        num_threads: int | None = 1,
    ) -> None:
        self.data, self.split_seed, self.num_threads = data, split_seed, num_threads
        self.base = base or CPU_HPARAMS
        b = self.base
        self.controls: dict[str, w.ValueWidget] = {
            "n_layers": w.IntSlider(value=b.n_layers, min=1, max=6, description="layers"),
            "n_channels": w.Dropdown(
                options=[16, 32, 64, 128, 256], value=b.n_channels, description="channels"
            ),
            "lr": w.FloatLogSlider(
                value=b.lr, base=10, min=-4, max=-1, step=0.25, description="lr"
            ),
            "dropout": w.FloatSlider(
                value=b.dropout, min=0.0, max=0.5, step=0.05, description="dropout"
            ),
            "hidden_activation": w.Dropdown(
                options=ACTIVATIONS, value=b.hidden_activation, description="activation"
            ),
            "preprocessing": w.Dropdown(
                options=PREPROCESSING_KINDS, value=b.preprocessing, description="inputs"
            ),
            "max_epochs": w.IntSlider(value=max_epochs, min=1, max=30, description="epochs"),
        }
        self.button = w.Button(description="Train", button_style="primary")
        self.status = w.HTML("Set the hyperparameters and press Train.")
        self.curve = w.Output()
        self.live_curve = LiveCurve(self.curve)
        self.table = w.HTML()
        self.results: list[tuple[HParams, TrainResult]] = []
        self.button.on_click(lambda _: self.train())

    def hparams(self) -> HParams:
        """The configuration the controls show (validated)."""
        return self.base.replace(**{name: control.value for name, control in self.controls.items()})

    def train(self) -> TrainResult | None:
        """Train with the current controls, live curve on; record and show the result."""
        try:
            hp = self.hparams()
        except ValueError as error:
            self.status.value = f"<b>Invalid choice:</b> {error}"
            return None
        self.button.disabled = True
        self.status.value = (
            f"Training {hp.n_layers} x {hp.n_channels} for {hp.max_epochs} epochs..."
        )
        try:
            result = fit(
                hp,
                self.data,
                split_seed=self.split_seed,
                callbacks=[self.live_curve],
                progress=False,
                num_threads=self.num_threads,
            )
        finally:
            self.button.disabled = False
        self.results.append((hp, result))
        self.status.value = (
            f"Best validation rejection <b>{result.best_val_rejection:.1f}</b> "
            f"(epoch {result.best_epoch + 1}), AUC {result.best_val_auc:.3f}, "
            f"{result.wall_time_s:.0f} s, status {result.status}. Data: {self.data.source}."
        )
        self.table.value = self.results_html()
        return result

    def results_html(self) -> str:
        """All runs so far as an HTML table, best validation rejection first."""
        rows = sorted(self.results, key=lambda r: -r[1].best_val_rejection)
        cells = "".join(
            f"<tr><td>{hp.n_layers}x{hp.n_channels}</td><td>{hp.lr:.1e}</td><td>{hp.dropout:.2f}</td>"
            f"<td>{hp.hidden_activation}</td><td>{hp.preprocessing}</td><td>{hp.max_epochs}</td>"
            f"<td>{r.best_val_rejection:.1f}</td><td>{r.best_val_auc:.3f}</td></tr>"
            for hp, r in rows
        )
        head = (
            "<tr><th>net</th><th>lr</th><th>dropout</th><th>act.</th><th>inputs</th><th>epochs</th>"
            "<th>val rej.</th><th>val AUC</th></tr>"
        )
        return f"<table>{head}{cells}</table>"

    def widget(self) -> w.Widget:
        """The whole explorer as one widget."""
        controls = w.VBox(list(self.controls.values()) + [self.button])
        return w.VBox([w.HBox([controls, self.curve]), self.status, self.table])

    def _ipython_display_(self) -> None:
        display(self.widget())
