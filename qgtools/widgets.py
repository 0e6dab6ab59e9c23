"""An ipywidgets explorer for manual search; used in notebook 04.

:class:`TrainingExplorer` holds controls for a few hyperparameters, a Train button, a live
learning curve and the resulting rejection. Its logic (reading the controls, training,
recording results) is plain Python, so it is tested without a browser; tests/test_browser.py
checks what it looks like in JupyterLab.
"""

from __future__ import annotations

import ipywidgets as w
import matplotlib.pyplot as plt
from IPython.display import display
from lightning.pytorch import Callback
from matplotlib.figure import Figure

from qgtools.data import JetData
from qgtools.model import ACTIVATIONS, CPU_HPARAMS, HParams
from qgtools.plots import learning_curves
from qgtools.preprocessing import PREPROCESSING_KINDS
from qgtools.train import TrainResult, fit


def curve_figure(history: list[dict], max_epochs: int) -> Figure:
    """The learning curves so far, on an epoch axis from 1 to ``max_epochs`` from the first
    epoch on (one point is a marker on the run's whole axis, not a point on a 0.96-1.04 axis)."""
    return learning_curves(history, max_epochs=max_epochs)[0].figure


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
            fig = curve_figure(pl_module.history, trainer.max_epochs)
            plt.show()
            plt.close(fig)
        self.redraws += 1


def short_float(x: float) -> str:
    """``3.0e-4`` for 0.0003: two significant digits, no padded exponent."""
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


CONTROL_LAYOUT = {"width": "320px"}
CONTROL_STYLE = {"description_width": "95px"}
CELL_STYLE = "padding: 2px 12px; text-align: right"


class TrainingExplorer:
    """Controls for a few hyperparameters, a Train button, a live curve and the results table.

    The learning rate is typed, not slid: a log slider snaps 3.0e-4 to 3.16e-4 and sends that
    back, so the next run would use a value nobody chose.

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
        look = {"layout": w.Layout(**CONTROL_LAYOUT), "style": CONTROL_STYLE}
        self.controls: dict[str, w.ValueWidget] = {
            "n_layers": w.IntSlider(value=b.n_layers, min=1, max=6, description="layers", **look),
            "n_channels": w.Dropdown(
                options=[16, 32, 64, 128, 256], value=b.n_channels, description="channels", **look
            ),
            "lr": w.FloatText(value=b.lr, description="learning rate", **look),
            "dropout": w.FloatSlider(
                value=b.dropout, min=0.0, max=0.5, step=0.05, description="dropout", **look
            ),
            "hidden_activation": w.Dropdown(
                options=ACTIVATIONS, value=b.hidden_activation, description="activation", **look
            ),
            "preprocessing": w.Dropdown(
                options=PREPROCESSING_KINDS, value=b.preprocessing, description="inputs", **look
            ),
            "max_epochs": w.IntSlider(
                value=max_epochs, min=1, max=30, description="epochs", **look
            ),
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
            f"Training {hp.n_layers} x {hp.n_channels} at learning rate {short_float(hp.lr)}, "
            f"epochs: {hp.max_epochs}..."
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
            f"{result.wall_time_s:.0f} s, status {result.status}.<br>Data: {self.data.source}."
        )
        self.table.value = self.results_html()
        return result

    def results_html(self) -> str:
        """All runs so far as an HTML table, best validation rejection first."""
        rows = sorted(self.results, key=lambda r: -r[1].best_val_rejection)
        head = ("net", "lr", "dropout", "activation", "inputs", "epochs", "val rej.", "val AUC")
        body = [
            (
                f"{hp.n_layers} x {hp.n_channels}",
                short_float(hp.lr),
                f"{hp.dropout:.2f}",
                hp.hidden_activation,
                hp.preprocessing,
                hp.max_epochs,
                f"{r.best_val_rejection:.1f}",
                f"{r.best_val_auc:.3f}",
            )
            for hp, r in rows
        ]
        th = "".join(f'<th style="{CELL_STYLE}">{h}</th>' for h in head)
        trs = "".join(
            "<tr>" + "".join(f'<td style="{CELL_STYLE}">{v}</td>' for v in row) + "</tr>"
            for row in body
        )
        return f'<table style="border-collapse: collapse"><tr>{th}</tr>{trs}</table>'

    def widget(self) -> w.Widget:
        """The whole explorer as one widget: controls in two columns, then button and status,
        the curve and the table (a column beside a 9-inch curve would not fit a notebook)."""
        controls = list(self.controls.values())
        half = (len(controls) + 1) // 2
        columns = w.HBox([w.VBox(controls[:half]), w.VBox(controls[half:])])
        return w.VBox([columns, w.HBox([self.button, self.status]), self.curve, self.table])

    def _ipython_display_(self) -> None:
        display(self.widget())
