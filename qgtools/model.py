"""The benchmark MLP: its hyperparameters, the torch network, and the trained model.

Explained in notebook 02. Three things, named for what they are:

* :class:`HParams`: a configuration. ``HParams()`` is the reference: 6 hidden layers of 1024,
  LayerNorm and BatchNorm, Tanh, dropout 0.2, AdamW (amsgrad) at lr 1e-3 with StepLR(15, 0.3),
  batch 100, 50 epochs, raw taus. ``CPU_HPARAMS`` and ``HAND_TUNED_HPARAMS`` are two more.
* :func:`make_mlp`: the torch network (logits out).
* :class:`Predictor`: a trained model (network, preprocessing, configuration, split), with
  :func:`save_model` and :func:`load_model`.
* :class:`Ensemble`: trained predictors of the same data and split, their scores averaged; saved
  and loaded by the same two functions.

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
ENSEMBLE_FORMAT = "qgtools-ensemble-1"
COMBINE = ("probability", "logit")  # what an Ensemble averages


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


def flops_per_jet(model: HParams | Predictor | Ensemble) -> int:
    """Multiply-adds x 2 of one forward pass (Linear layers; norms and activations left out).

    Args:
        model: a configuration, a trained predictor (its configuration's), or an ensemble (the
            sum of its members').

    Returns:
        FLOPs per jet, an integer.
    """
    if isinstance(model, Ensemble):
        return sum(flops_per_jet(member) for member in model.members)
    hparams = model.hparams if isinstance(model, Predictor) else model
    widths = [hparams.input_channels] + [hparams.n_channels] * hparams.n_layers + [1]
    return 2 * sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))


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

    @property
    def n_parameters(self) -> int:
        """Trainable parameters of the network."""
        return count_parameters(self.network)

    def predict(self, X_raw: np.ndarray, batch_size: int = 65_536) -> np.ndarray:
        """Quark probabilities for raw features ``X_raw`` (n, 45); rows must be finite."""
        return self._forward(X_raw, batch_size, torch.sigmoid)

    def logits(self, X_raw: np.ndarray, batch_size: int = 65_536) -> np.ndarray:
        """The network's logits for raw features ``X_raw`` (n, 45); rows must be finite."""
        return self._forward(X_raw, batch_size, lambda logits: logits)

    def _forward(self, X_raw: np.ndarray, batch_size: int, last) -> np.ndarray:
        X = self.preprocessor.transform(_checked_features(X_raw))[:, : self.hparams.input_channels]
        self.network.eval()
        device = next(self.network.parameters()).device
        out = []
        with torch.no_grad():
            for start in range(0, len(X), batch_size):
                xb = torch.from_numpy(X[start : start + batch_size]).to(device)
                out.append(last(self.network(xb)).squeeze(-1).cpu())
        return torch.cat(out).numpy().astype(np.float64)


def _checked_features(X_raw: np.ndarray) -> np.ndarray:
    """``X_raw`` as an array of shape (n, 45) with finite rows, else a ``ValueError``."""
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
    return X_raw


@dataclass
class Ensemble:
    """Trained predictors whose scores are averaged: a model like :class:`Predictor`.

    Its members must have been trained on the same data (``source``) and split the same way
    (``split_seed``, ``split_sizes``): otherwise one member's test jets could be another's
    training jets. ``train.evaluate`` then finds the same parts for the ensemble as for each
    member. Its parameters and FLOPs per jet are the sums of its members'.

    Attributes:
        members: the predictors, at least one (not ensembles: pass their members).
        combine: ``"probability"`` (default) averages the members' quark probabilities,
            ``"logit"`` their logits (then the sigmoid).

    Raises:
        ValueError: no members, a member that is not a ``Predictor``, an unknown ``combine``,
            or members of different data or splits.
    """

    members: list[Predictor]
    combine: str = "probability"

    def __post_init__(self) -> None:
        self.members = list(self.members)
        if not self.members:
            raise ValueError("An Ensemble needs at least one member predictor.")
        for i, member in enumerate(self.members):
            if not isinstance(member, Predictor):
                raise ValueError(
                    f"Ensemble member {i} is a {type(member).__name__}, not a Predictor"
                    + (": pass its members instead." if isinstance(member, Ensemble) else ".")
                )
        if self.combine not in COMBINE:
            raise ValueError(f"combine={self.combine!r}: use one of {', '.join(COMBINE)}.")
        first = _data_of(self.members[0])
        for i, member in enumerate(self.members[1:], start=1):
            if _data_of(member) != first:
                raise ValueError(
                    f"Ensemble member {i} was trained on {_describe(_data_of(member))}, member 0 "
                    f"on {_describe(first)}: one member's test jets could be another's training "
                    "jets. Build an ensemble of members trained on the same data and split."
                )

    @property
    def source(self) -> str:
        return self.members[0].source

    @property
    def split_seed(self) -> int:
        return self.members[0].split_seed

    @property
    def split_sizes(self) -> tuple:
        return self.members[0].split_sizes

    @property
    def n_parameters(self) -> int:
        """Trainable parameters of all members."""
        return sum(member.n_parameters for member in self.members)

    def predict(self, X_raw: np.ndarray, batch_size: int = 65_536) -> np.ndarray:
        """Quark probabilities for raw features ``X_raw`` (n, 45): the members' mean probability,
        or the sigmoid of their mean logit (``combine``)."""
        X_raw = _checked_features(X_raw)
        if self.combine == "probability":
            return np.mean([m.predict(X_raw, batch_size) for m in self.members], axis=0)
        return 1 / (1 + np.exp(-np.mean([m.logits(X_raw, batch_size) for m in self.members], 0)))


def _data_of(predictor: Predictor) -> tuple:
    return predictor.source, predictor.split_seed, tuple(predictor.split_sizes)


def _describe(data: tuple) -> str:
    source, seed, sizes = data
    return f"{source!r} split with seed {seed} into {list(sizes)}"


def save_model(model: Predictor | Ensemble, path: str | Path) -> Path:
    """Save a trained :class:`Predictor` (weights, preprocessing, hparams, split) or an
    :class:`Ensemble` (each member so, and how they are combined) to one file.

    Writes a temporary file beside ``path`` and renames it onto ``path`` only when the save
    has succeeded, so a failed save (full disk, interrupt) leaves an earlier file intact.
    """
    if isinstance(model, Ensemble):
        saved = {
            "format": ENSEMBLE_FORMAT,
            "combine": model.combine,
            "members": [_state(member) for member in model.members],
        }
    elif isinstance(model, Predictor):
        saved = {"format": MODEL_FORMAT, **_state(model)}
    else:
        raise ValueError(
            f"save_model saves a Predictor or an Ensemble, not a {type(model).__name__}."
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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


def _state(predictor: Predictor) -> dict:
    return {
        "hparams": asdict(predictor.hparams),
        "preprocessor": predictor.preprocessor.state_dict(),
        "split_seed": predictor.split_seed,
        "split_sizes": list(predictor.split_sizes),
        "source": predictor.source,
        "state_dict": predictor.network.state_dict(),
    }


def load_model(path: str | Path) -> Predictor | Ensemble:
    """Load a :class:`Predictor` or an :class:`Ensemble` saved by :func:`save_model`.

    Uses ``weights_only=True``: a file cannot run code when it is loaded. An ensemble's members
    are checked as a single model's weights are, and must share their data and split.

    Raises:
        ValueError: no file, not a file of ``save_model``, or a damaged or mismatched one.
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
    kind = saved.get("format") if isinstance(saved, dict) else None
    if kind == MODEL_FORMAT:
        return _predictor_from(saved, path)
    if kind != ENSEMBLE_FORMAT:
        raise ValueError(
            f"{path} is not a model saved by qgtools.model.save_model (format {MODEL_FORMAT} "
            f"or {ENSEMBLE_FORMAT})."
        )
    members = saved.get("members")
    if not isinstance(members, list) or not members:
        raise ValueError(
            f"{path}: an ensemble file without members. The file was edited or damaged: save "
            "the ensemble again with qgtools.model.save_model."
        )
    predictors = [_predictor_from(m, path, f"member {i}") for i, m in enumerate(members)]
    try:
        return Ensemble(predictors, saved.get("combine", "probability"))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def _predictor_from(saved: dict, path: Path, member: str = "") -> Predictor:
    """The :class:`Predictor` stored in ``saved`` (one model's part of a file)."""
    where = f"{path} ({member})" if member else str(path)
    try:
        hparams = HParams(**saved["hparams"])
        state_dict = saved["state_dict"]
        preprocessor = Preprocessor.from_state_dict(saved["preprocessor"])
        split = saved["split_seed"], tuple(saved["split_sizes"]), saved["source"]
    except (KeyError, TypeError) as error:
        raise ValueError(
            f"{where}: a model's part is missing or damaged ({type(error).__name__}: {error}). "
            "Save the model again with qgtools.model.save_model."
        ) from None
    network = mlp_from_hparams(hparams)
    try:
        network.load_state_dict(state_dict)
    except RuntimeError as error:  # missing, extra or differently shaped weights
        raise ValueError(
            f"{where}: the stored weights do not fit the stored hyperparameters "
            f"({_weights_mismatch(network, state_dict)}; {hparams}). The file was "
            "edited or damaged: save the model again with qgtools.model.save_model."
        ) from error
    return Predictor(
        network=network,
        preprocessor=preprocessor,
        hparams=hparams,
        split_seed=split[0],
        split_sizes=split[1],
        source=split[2],
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
