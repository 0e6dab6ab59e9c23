"""The benchmark MLP: its hyperparameters, the torch network, and the trained model.

Explained in notebook 02. Three things, named for what they are:

* :class:`HParams`: a configuration. ``HParams()`` is the reference: 6 hidden layers of 1024,
  LayerNorm and BatchNorm, Tanh, dropout 0.2, AdamW (amsgrad) at lr 1e-3 with StepLR(15, 0.3),
  batch 100, 50 epochs, raw taus. ``CPU_HPARAMS`` and ``HAND_TUNED_HPARAMS`` are two more.
* :func:`make_mlp`: the torch network (logits out).
* :class:`Predictor`: a trained model (network, preprocessing, configuration, split), with
  :func:`save_model` and :func:`load_model`.

Needs torch, not Lightning: training lives in :mod:`qgtools.train`.
"""

from __future__ import annotations

import math
import os
import textwrap
import uuid
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from qgtools.data import DEFAULT_SPLIT, FEATURE_NAMES
from qgtools.preprocessing import PREPROCESSING_KINDS, Preprocessor

ACTIVATIONS = ("ReLU", "LeakyReLU", "SiLU", "GELU", "ELU", "Tanh")
MODEL_FORMAT = "qgtools-model-1"


@dataclass(frozen=True)
class HParams:
    """Hyperparameters of one training run, validated; defaults are the reference configuration.

    numpy scalars (``np.int64``, ``np.float32``, ``np.bool_``) are stored as the Python
    ``int``, ``float`` or ``bool`` of the same value, so training and saved files see plain
    Python values.

    Attributes:
        input_channels: use the first k of the 45 features (1..45).
        n_layers: hidden layers (the output layer is extra), >= 1.
        n_channels: width of each hidden layer, >= 1.
        layer_norm, batch_norm: add LayerNorm / BatchNorm1d after each hidden Linear.
        dropout: dropout probability, 0 <= p < 1.
        hidden_activation: a torch.nn class name from ``ACTIVATIONS``.
        lr: AdamW learning rate, > 0.
        patience, factor: StepLR(step_size=patience, gamma=factor), stepped per epoch.
        pos_weight: BCE-with-logits weight of the quark (positive) class, > 0.
        batch_size: training mini-batch size, >= 2 (BatchNorm needs two jets).
        max_epochs: training epochs, >= 1.
        preprocessing: one of ``PREPROCESSING_KINDS``; fitted on the training split.
        seed: training seed (initialisation, shuffling, dropout); not the split seed.
    """

    input_channels: int = 45
    n_layers: int = 6
    n_channels: int = 1024
    layer_norm: bool = True
    batch_norm: bool = True
    dropout: float = 0.2
    hidden_activation: str = "Tanh"
    lr: float = 1e-3
    patience: int = 15
    factor: float = 0.3
    pos_weight: float = 1.0
    batch_size: int = 100
    max_epochs: int = 50
    preprocessing: str = "none"
    seed: int = 0

    def __post_init__(self) -> None:
        def bad(name: str, allowed: str) -> ValueError:
            return ValueError(f"HParams.{name}={getattr(self, name)!r} is invalid: {allowed}.")

        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (np.integer, np.floating, np.bool_)):
                # np.int64 from a grid or a DataFrame: Lightning and torch.load want Python values
                value = value.item()
                object.__setattr__(self, f.name, value)
            if f.type in ("int", int) and (isinstance(value, bool) or not isinstance(value, int)):
                raise bad(f.name, "must be an integer")
            if f.type in ("bool", bool) and not isinstance(value, bool):
                raise bad(f.name, "must be True or False")
            if f.type in ("float", float) and (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise bad(f.name, "must be a finite number")
        checks = [
            (
                "input_channels",
                1 <= self.input_channels <= len(FEATURE_NAMES),
                "must be 1..45 (the first k features)",
            ),
            ("n_layers", self.n_layers >= 1, "must be >= 1 hidden layer"),
            ("n_channels", self.n_channels >= 1, "must be >= 1"),
            ("dropout", 0 <= self.dropout < 1, "must satisfy 0 <= dropout < 1"),
            (
                "hidden_activation",
                self.hidden_activation in ACTIVATIONS,
                f"allowed: {', '.join(ACTIVATIONS)}",
            ),
            ("lr", self.lr > 0, "must be > 0"),
            ("patience", self.patience >= 1, "must be >= 1 epoch (the StepLR step size)"),
            ("factor", 0 < self.factor <= 1, "must satisfy 0 < factor <= 1 (the StepLR gamma)"),
            ("pos_weight", self.pos_weight > 0, "must be > 0"),
            (
                "batch_size",
                self.batch_size >= 2,
                "must be >= 2 (BatchNorm needs two jets per batch)",
            ),
            ("max_epochs", self.max_epochs >= 1, "must be >= 1"),
            (
                "preprocessing",
                self.preprocessing in PREPROCESSING_KINDS,
                f"allowed: {', '.join(PREPROCESSING_KINDS)}",
            ),
            ("seed", self.seed >= 0, "must be >= 0"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise bad(name, allowed)

    def __str__(self) -> str:
        """The repr, broken between fields into lines of at most 88 characters: printed in a
        notebook it reads as whole ``name=value`` pairs, never split mid-word."""
        return textwrap.fill(
            repr(self), 88, subsequent_indent="    ", break_long_words=False, break_on_hyphens=False
        )

    def for_epochs(self, max_epochs: int) -> HParams:
        """This configuration for ``max_epochs`` epochs, its StepLR step scaled alike, so that the
        learning rate falls as far over the new epochs as it did over the old (notebook 05's
        retraining of a short trial's winner)."""
        patience = max(1, round(self.patience * max_epochs / self.max_epochs))
        return self.replace(max_epochs=max_epochs, patience=patience)

    def replace(self, **changes) -> HParams:
        """A copy with some fields changed (validated again)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(
                f"HParams has no field(s) {sorted(unknown)}; "
                f"fields: {[f.name for f in fields(self)]}."
            )
        return HParams(**{**asdict(self), **changes})


CPU_HPARAMS = HParams(
    n_layers=3, n_channels=64, batch_size=256, dropout=0.1, preprocessing="log+standardize"
)
"""The CPU-sized starting point of notebooks 02-04: 3 x 64, log-standardised taus, batch 256."""

HAND_TUNED_HPARAMS = CPU_HPARAMS.replace(lr=3e-4)
"""What notebook 04's manual search arrived at in full mode on the offline sample (grid winner:
lr 3e-4, 64 channels; validation 25.4). It was the first of a four-way exact tie at 25.4, kept by
the grid loop's order (``max`` returns the first maximum), and within the seed noise of its
neighbours: one pick among ties, not the grid's one best. Later notebooks compare to it."""


def make_mlp(
    input_channels: int = 45,
    n_layers: int = 6,
    n_channels: int = 1024,
    layer_norm: bool = True,
    batch_norm: bool = True,
    dropout: float = 0.2,
    hidden_activation: str = "Tanh",
) -> nn.Sequential:
    """The benchmark MLP: n_layers x [Linear, LayerNorm, BatchNorm, Dropout, activation], Linear(1).

    Returns logits (one per jet); ``sigmoid`` of them is the quark probability.
    """
    hp = HParams(
        input_channels=input_channels,
        n_layers=n_layers,
        n_channels=n_channels,
        layer_norm=layer_norm,
        batch_norm=batch_norm,
        dropout=dropout,
        hidden_activation=hidden_activation,
    )
    layers: list[nn.Module] = []
    width = hp.input_channels
    for _ in range(hp.n_layers):
        layers.append(nn.Linear(width, hp.n_channels))
        if hp.layer_norm:
            layers.append(nn.LayerNorm(hp.n_channels))
        if hp.batch_norm:
            layers.append(nn.BatchNorm1d(hp.n_channels))
        if hp.dropout > 0:
            layers.append(nn.Dropout(hp.dropout))
        layers.append(getattr(nn, hp.hidden_activation)())
        width = hp.n_channels
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


def mlp_from_hparams(hparams: HParams) -> nn.Sequential:
    """``make_mlp`` with the architecture fields of ``hparams``."""
    arch = (
        "input_channels",
        "n_layers",
        "n_channels",
        "layer_norm",
        "batch_norm",
        "dropout",
        "hidden_activation",
    )
    return make_mlp(**{name: getattr(hparams, name) for name in arch})


def count_parameters(network: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in network.parameters() if p.requires_grad)


# --------------------------------------------------------------------------- the trained model


@dataclass
class Predictor:
    """A trained network with everything needed to use it on raw taus.

    Attributes:
        network: the MLP (logits out), best epoch's weights.
        preprocessor: fitted on the training split of ``split_seed``.
        hparams: the configuration it was trained with.
        split_seed, split_sizes: how the data was split, so ``evaluate`` finds the same parts.
        source: which data it was trained on.
    """

    network: nn.Module
    preprocessor: Preprocessor
    hparams: HParams
    split_seed: int = 0
    split_sizes: tuple = DEFAULT_SPLIT
    source: str = ""

    def predict(self, X_raw: np.ndarray, batch_size: int = 65_536) -> np.ndarray:
        """Quark probabilities for raw features ``X_raw`` (n, 45); rows must be finite."""
        X_raw = np.asarray(X_raw)
        if X_raw.ndim != 2 or X_raw.shape[1] != len(FEATURE_NAMES):
            raise ValueError(
                f"X_raw has shape {X_raw.shape}; expected (n_jets, 45) raw N-subjettiness values."
            )
        bad_rows = np.flatnonzero(~np.isfinite(X_raw).all(axis=1))
        if len(bad_rows):
            raise ValueError(
                f"X_raw has {len(bad_rows)} row(s) with features that are not finite (NaN or "
                f"inf), first rows {bad_rows[:10].tolist()}: the network cannot score them. "
                "Drop them (keep X_raw[np.isfinite(X_raw).all(axis=1)]) or fix them first."
            )
        X = self.preprocessor.transform(X_raw)[:, : self.hparams.input_channels]
        self.network.eval()
        device = next(self.network.parameters()).device
        out = []
        with torch.no_grad():
            for start in range(0, len(X), batch_size):
                xb = torch.from_numpy(X[start : start + batch_size]).to(device)
                out.append(torch.sigmoid(self.network(xb)).squeeze(-1).cpu())
        return torch.cat(out).numpy().astype(np.float64)


def save_model(predictor: Predictor, path: str | Path) -> Path:
    """Save a trained :class:`Predictor` (weights, preprocessing, hparams, split seed).

    Writes a temporary file beside ``path`` and renames it onto ``path`` only when the save
    has succeeded, so a failed save (full disk, interrupt) leaves an earlier file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = {
        "format": MODEL_FORMAT,
        "hparams": asdict(predictor.hparams),
        "preprocessor": predictor.preprocessor.state_dict(),
        "split_seed": predictor.split_seed,
        "split_sizes": list(predictor.split_sizes),
        "source": predictor.source,
        "state_dict": predictor.network.state_dict(),
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "xb") as file:
            torch.save(saved, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def load_model(path: str | Path) -> Predictor:
    """Load a :class:`Predictor` saved by :func:`save_model`.

    Uses ``weights_only=True``: a file cannot run code when it is loaded.
    """
    path = Path(path)
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"No model file at {path}.") from None
    except Exception as error:  # torch raises many kinds for a bad file
        raise ValueError(
            f"{path} is not a model saved by qgtools.model.save_model ({error})."
        ) from error
    if not isinstance(saved, dict) or saved.get("format") != MODEL_FORMAT:
        raise ValueError(
            f"{path} is not a model saved by qgtools.model.save_model (format {MODEL_FORMAT})."
        )
    hparams = HParams(**saved["hparams"])
    network = mlp_from_hparams(hparams)
    try:
        network.load_state_dict(saved["state_dict"])
    except RuntimeError as error:  # missing, extra or differently shaped weights
        raise ValueError(
            f"{path}: the stored weights do not fit the stored hyperparameters "
            f"({_weights_mismatch(network, saved['state_dict'])}; {hparams}). The file was "
            "edited or damaged: save the model again with qgtools.model.save_model."
        ) from error
    return Predictor(
        network=network,
        preprocessor=Preprocessor.from_state_dict(saved["preprocessor"]),
        hparams=hparams,
        split_seed=saved["split_seed"],
        split_sizes=tuple(saved["split_sizes"]),
        source=saved["source"],
    )


def _weights_mismatch(network: nn.Module, state_dict: dict) -> str:
    """The first difference between the weights ``network`` needs and ``state_dict``."""
    needed = {name: tuple(value.shape) for name, value in network.state_dict().items()}
    stored = {name: tuple(getattr(value, "shape", ())) for name, value in state_dict.items()}
    for name, shape in needed.items():
        if name not in stored:
            return f"weight {name!r} {shape} is missing"
        if stored[name] != shape:
            return f"weight {name!r} is {stored[name]} in the file but must be {shape}"
    extra = sorted(set(stored) - set(needed))
    return f"weights {extra} are not in this network" if extra else "the weights differ"
