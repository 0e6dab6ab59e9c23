"""Search spaces and known configurations: what a trial's hyperparameters can be (notebook 05),
and the configurations a study can start from (notebook 09)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import optuna
from optuna.trial import FrozenTrial, Trial

from qgtools.model import CPU_HPARAMS, HAND_TUNED_HPARAMS, HParams

Space = Callable[[Trial], HParams]

ACTIVATIONS = ("ReLU", "SiLU", "Tanh")
"""The hidden activations the reference and cpu spaces choose from, in the samplers' order."""

CPU_RANGES: dict[str, tuple[int | float, int | float, bool]] = {
    "n_layers": (1, 4, False),
    "n_channels": (16, 256, True),
    "lr": (1e-4, 3e-2, True),
    "dropout": (0.01, 0.5, False),
    "patience": (2, 10, False),
    "factor": (0.1, 0.5, False),
}
"""The cpu space's numeric parameters: ``(low, high, log)``, integers where ``low`` is one. What
:func:`cpu_space` draws from and :func:`cpu_space_params` checks against."""

CPU_CHOICES: dict[str, tuple[object, ...]] = {
    "batch_size": (128, 256, 512, 1024),
    "preprocessing": ("none", "standardize", "log+standardize"),
    "hidden_activation": ACTIVATIONS,
}
"""The cpu space's choices (besides its yes/no ones), each in the samplers' order."""

CPU_FIXED: dict[str, object] = {"input_channels": 45, "pos_weight": 1.0}
"""What the cpu space leaves at ``HParams``' defaults and a configuration must therefore keep."""


def reference_space(trial: Trial) -> HParams:
    """The reference sweep: input channels 2-45, 1-10 layers of 8-2048, LN/BN, ReLU/SiLU/Tanh,
    dropout 0.01-0.5, lr 1e-5-1e-1 (log), StepLR patience 4-25 and factor 0.1-0.5;
    batch 100, raw taus.

    A GPU-sized space: a trial with 10 x 2048 takes hours on a laptop CPU.

    Args:
        trial: the trial that draws the configuration.

    Returns:
        The configuration, an :class:`~qgtools.model.HParams`.
    """
    return HParams(
        input_channels=trial.suggest_int("input_channels", 2, 45),
        n_layers=trial.suggest_int("n_layers", 1, 10),
        n_channels=trial.suggest_int("n_channels", 8, 2048, log=True),
        layer_norm=trial.suggest_categorical("layer_norm", [True, False]),
        batch_norm=trial.suggest_categorical("batch_norm", [True, False]),
        hidden_activation=trial.suggest_categorical("hidden_activation", list(ACTIVATIONS)),
        dropout=trial.suggest_float("dropout", 0.01, 0.5),
        lr=trial.suggest_float("lr", 1e-5, 1e-1, log=True),
        patience=trial.suggest_int("patience", 4, 25),
        factor=trial.suggest_float("factor", 0.1, 0.5),
    )


def cpu_space(trial: Trial) -> HParams:
    """A space a laptop searches in minutes: 1-4 layers of 16-256, batch 128-1024, preprocessing.

    Conditional parameters: ``dropout`` only when ``use_dropout``; the StepLR ``patience`` and
    ``factor`` only when ``lr_decay`` (else the learning rate stays constant).

    Args:
        trial: the trial that draws the configuration (from ``CPU_RANGES`` and
            ``CPU_CHOICES``).

    Returns:
        The configuration, an :class:`~qgtools.model.HParams`.
    """
    use_dropout = trial.suggest_categorical("use_dropout", [True, False])
    lr_decay = trial.suggest_categorical("lr_decay", [True, False])
    return HParams(
        n_layers=_suggest(trial, "n_layers"),
        n_channels=_suggest(trial, "n_channels"),
        layer_norm=trial.suggest_categorical("layer_norm", [True, False]),
        batch_norm=trial.suggest_categorical("batch_norm", [True, False]),
        hidden_activation=_choose(trial, "hidden_activation"),
        dropout=_suggest(trial, "dropout") if use_dropout else 0.0,
        lr=_suggest(trial, "lr"),
        patience=_suggest(trial, "patience") if lr_decay else 1,
        factor=_suggest(trial, "factor") if lr_decay else 1.0,
        batch_size=_choose(trial, "batch_size"),
        preprocessing=_choose(trial, "preprocessing"),
    )


def _suggest(trial: Trial, name: str) -> int | float:
    """A draw of the cpu space's numeric parameter ``name`` (``CPU_RANGES``)."""
    low, high, log = CPU_RANGES[name]
    if isinstance(low, int):
        return trial.suggest_int(name, low, high, log=log)
    return trial.suggest_float(name, low, high, log=log)


def _choose(trial: Trial, name: str) -> object:
    """A draw of the cpu space's choice ``name`` (``CPU_CHOICES``)."""
    return trial.suggest_categorical(name, list(CPU_CHOICES[name]))


def continuous_space(trial: Trial) -> HParams:
    """A small all-continuous space (notebook 09): learning rate, dropout, StepLR factor and width
    (an integer, searched on a log scale); the rest as ``CPU_HPARAMS``, with the learning rate
    stepped every 2 epochs so that the factor matters in short trials.

    Args:
        trial: the trial that draws the configuration.

    Returns:
        The configuration, an :class:`~qgtools.model.HParams`.
    """
    return CPU_HPARAMS.replace(
        lr=trial.suggest_float("lr", 1e-4, 3e-2, log=True),
        dropout=trial.suggest_float("dropout", 0.0, 0.5),
        factor=trial.suggest_float("factor", 0.1, 1.0),
        n_channels=trial.suggest_int("n_channels", 16, 256, log=True),
        patience=2,
    )


SPACES: dict[str, Space] = {
    "reference": reference_space,
    "cpu": cpu_space,
    "continuous": continuous_space,
}
"""The spaces by the names ``--space`` takes."""


REFERENCE_ON_CPU = HParams(n_layers=4, n_channels=256, patience=10, batch_size=128)
"""The reference configuration reduced to the cpu space: 4 x 256 instead of 6 x 1024, LayerNorm and
BatchNorm, Tanh, dropout 0.2, lr 1e-3, StepLR every 10 epochs by 0.3, batch 128, raw taus."""


KNOWN_CONFIGURATIONS: dict[str, HParams] = {
    "reference": REFERENCE_ON_CPU,
    "hand-tuned": HAND_TUNED_HPARAMS.replace(patience=1, factor=1.0),
}
"""Configurations a study can start from (``--enqueue``, notebook 09), by name. The hand-tuned one
of notebook 04 without learning-rate decay: its grid trained 10 epochs, so its StepLR step of 15
epochs never came, which is what ``lr_decay=False`` says in the cpu space."""


def cpu_space_params(hparams: HParams) -> dict[str, object]:
    """The :func:`cpu_space` parameters that make ``hparams`` (what ``study.enqueue_trial`` takes).

    ``dropout=0`` is ``use_dropout=False``, and ``factor=1`` (the learning rate never changes)
    is ``lr_decay=False``; only the parameters the space then asks for are given.

    Args:
        hparams: a configuration the cpu space can make.

    Raises:
        ValueError: a value the cpu space cannot make, named with the space's range.

    Returns:
        The parameters, by name, in the order the space asks for them.
    """
    use_dropout, lr_decay = hparams.dropout > 0, hparams.factor != 1.0
    used = ["n_layers", "n_channels", "lr"] + ["dropout"] * use_dropout
    used += ["patience", "factor"] * lr_decay
    problems = [
        f"{name}={getattr(hparams, name)} is outside {low}-{high}"
        for name, (low, high, _) in CPU_RANGES.items()
        if name in used and not low <= getattr(hparams, name) <= high
    ]
    problems += [
        f"{name}={getattr(hparams, name)!r} is not {value!r}"
        for name, value in CPU_FIXED.items()
        if getattr(hparams, name) != value
    ]
    problems += [
        f"{name}={getattr(hparams, name)!r} is not one of {list(allowed)}"
        for name, allowed in CPU_CHOICES.items()
        if getattr(hparams, name) not in allowed
    ]
    if problems:
        raise ValueError(
            f"The cpu space cannot make this configuration: {'; '.join(problems)}. Change "
            "those values, or search a space that holds them."
        )
    params: dict[str, object] = {"use_dropout": use_dropout, "lr_decay": lr_decay}
    params.update({name: getattr(hparams, name) for name in used})
    params.update(
        layer_norm=hparams.layer_norm,
        batch_norm=hparams.batch_norm,
        **{name: getattr(hparams, name) for name in CPU_CHOICES},
    )
    return params


class _Extreme:
    """A stand-in trial that draws every parameter at one end of its range: the largest network
    a space can make (highs, the largest numeric choice, yes) or the smallest."""

    def __init__(self, largest: bool) -> None:
        self.largest, self.params = largest, {}

    def suggest_int(self, name: str, low: int, high: int, **_) -> int:
        self.params[name] = high if self.largest else low
        return self.params[name]

    suggest_float = suggest_int

    def suggest_categorical(self, name: str, choices: Sequence) -> object:
        numbers = [c for c in choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
        if numbers:
            value = max(numbers) if self.largest else min(numbers)
        elif all(isinstance(c, bool) for c in choices):
            value = self.largest
        else:
            value = choices[0]
        self.params[name] = value
        return value


def extreme_network(space: Space | str, largest: bool = True) -> HParams:
    """The largest (or smallest) network ``space`` can draw: every range at its top (bottom).

    Args:
        space: a space or a name of ``SPACES``.
        largest: the largest network; ``False``: the smallest.

    Returns:
        Its configuration.
    """
    return (SPACES[space] if isinstance(space, str) else space)(_Extreme(largest))


def _check_known(names: Sequence[str]) -> None:
    """A ``ValueError`` naming the names that are not in ``KNOWN_CONFIGURATIONS``."""
    unknown = [name for name in names if name not in KNOWN_CONFIGURATIONS]
    if unknown:
        raise ValueError(
            f"Unknown configuration(s) {unknown}: use any of {sorted(KNOWN_CONFIGURATIONS)}."
        )


def enqueue_known(study: optuna.Study, names: Sequence[str]) -> list[str]:
    """Put ``KNOWN_CONFIGURATIONS[name]`` first in the study's queue for each name (a warm start,
    notebook 09): the next trials train them, whatever the sampler. A configuration the study
    has already tried or queued is not queued again, so a rerun or a second worker adds nothing.

    Args:
        study: the study to queue them in.
        names: names of ``KNOWN_CONFIGURATIONS``.

    Returns:
        The names, in order.

    Raises:
        ValueError: an unknown name.
    """
    _check_known(names)
    for name in names:
        study.enqueue_trial(
            cpu_space_params(KNOWN_CONFIGURATIONS[name]),
            user_attrs={"enqueued": name},
            skip_if_exists=True,
        )
    return list(names)


def hparams_of(trial: FrozenTrial) -> HParams:
    """Rebuild a trial's configuration from its ``hparams`` user attribute.

    Args:
        trial: a trial of :func:`make_objective` or :func:`optimize_population`.

    Returns:
        Its :class:`~qgtools.model.HParams`.

    Raises:
        KeyError: a trial without the attribute (not run by ``qgtools``).
    """
    return HParams(**trial.user_attrs["hparams"])
