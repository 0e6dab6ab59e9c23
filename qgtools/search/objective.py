"""The objective: one trial trains one configuration; its metrics and the FLOPs constraint."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict

import optuna
from optuna.trial import Trial

from qgtools.data import JetData
from qgtools.model import CPU_HPARAMS, HParams, flops_per_jet
from qgtools.search.artifacts import keep_model
from qgtools.search.recovery import record_worker
from qgtools.search.spaces import SPACES, Space
from qgtools.train import TrainResult, fit

SPLIT_SEED = 0  # every trial of every study is judged on the same split

_MEASURES: dict[str, tuple[str, Callable[[TrainResult, HParams], float]]] = {
    "val_rejection": ("maximize", lambda result, _: result.best_val_rejection),
    "val_auc": ("maximize", lambda result, _: result.best_val_auc),
    "n_params": ("minimize", lambda result, _: result.n_params),
    "flops_per_jet": ("minimize", lambda _, hparams: flops_per_jet(hparams)),
    "wall_time_s": ("minimize", lambda result, _: result.wall_time_s),
}
"""Each metric an objective can return: its direction, and how a trained trial measures it."""

METRICS = {name: direction for name, (direction, _) in _MEASURES.items()}
"""Optuna's direction of each metric, by name."""


def directions(metric: str | Sequence[str]) -> list[str]:
    """Optuna directions for a metric name or a tuple of them.

    Args:
        metric: a name of ``METRICS``, or several.

    Returns:
        Their directions, in order.

    Raises:
        ValueError: an unknown name.
    """
    names = [metric] if isinstance(metric, str) else list(metric)
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"Unknown metric(s) {unknown}: use any of {list(METRICS)}.")
    return [METRICS[name] for name in names]


def check_max_flops(max_flops: float | None) -> None:
    """A ``ValueError`` naming the value unless ``max_flops`` is ``None`` or a positive number.

    Args:
        max_flops: the budget, or ``None``.

    Raises:
        ValueError: anything but ``None`` or a positive finite number.
    """
    if max_flops is not None and not (
        isinstance(max_flops, (int, float))
        and not isinstance(max_flops, bool)
        and math.isfinite(max_flops)
        and max_flops > 0
    ):
        raise ValueError(
            f"max_flops={max_flops!r}: use a positive number of FLOPs per jet (for example "
            f"{flops_per_jet(CPU_HPARAMS):,}, notebook 02's 3 x 64 network)."
        )


def make_objective(
    data: JetData,
    space: Space | str,
    max_epochs: int,
    metric: str | Sequence[str] = "val_rejection",
    num_threads: int | None = None,
    split_seed: int = SPLIT_SEED,
    max_flops: float | None = None,
    artifacts: optuna.artifacts.FileSystemArtifactStore | None = None,
    accelerator: str = "auto",
) -> Callable[[Trial], object]:
    """An Optuna objective that trains one configuration from ``space`` (notebook 05).

    Each trial stores ``asdict(hparams)`` as the user attribute ``hparams`` and its worker as
    ``worker``, and is pruned through Optuna's Lightning callback when single-objective. A
    diverged run returns NaN, so Optuna fails the trial and the study goes on (``fail_reason``).

    Args:
        data: the jets, split with ``split_seed`` as every trial splits them.
        space: a space or a name of ``SPACES``.
        max_epochs: epochs per trial.
        metric: a name of ``METRICS``, or several for a multi-objective study (no pruning).
        num_threads: torch threads per trial; ``None`` leaves them.
        split_seed: the split's seed, the same for every trial.
        max_flops: a FLOPs-per-jet budget: each trial gets the constraint ``flops_per_jet -
            max_flops`` (feasible when <= 0; notebook 09), and one over it is pruned untrained.
        artifacts: a store (:func:`artifact_store`) for each complete trial's best model; its
            id goes into the user attribute ``model_artifact`` (:func:`trial_model`).
        accelerator: where each trial trains, as :func:`~qgtools.train.fit` takes it.

    Returns:
        The objective: a trial's best validation rejection, or the tuple of its ``metric``s.

    Raises:
        ValueError: an unknown metric, a bad ``max_flops``, or ``max_flops`` with several
            metrics.
    """
    from optuna_integration import PyTorchLightningPruningCallback

    space_fn = SPACES[space] if isinstance(space, str) else space
    names = [metric] if isinstance(metric, str) else list(metric)
    directions(names)
    check_max_flops(max_flops)
    if max_flops is not None and len(names) > 1:
        raise ValueError(
            "max_flops is a constraint for a single-objective study; a multi-objective study "
            "with flops_per_jet among its metrics shows the whole trade-off instead."
        )

    def objective(trial: Trial):
        record_worker(trial)
        hparams = space_fn(trial).replace(max_epochs=max_epochs)
        trial.set_user_attr("hparams", asdict(hparams))
        if max_flops is not None:
            flops = flops_per_jet(hparams)
            trial.set_constraint("flops_per_jet", flops - max_flops)
            if flops > max_flops:
                trial.set_user_attr("infeasible", f"{flops:,} FLOPs per jet")
                raise optuna.TrialPruned(f"over the budget of {max_flops:,.0f} FLOPs per jet")
        callbacks = (
            [PyTorchLightningPruningCallback(trial, monitor=names[0])] if len(names) == 1 else []
        )
        result = fit(
            hparams,
            data,
            split_seed=split_seed,
            callbacks=callbacks,
            progress=False,
            num_threads=num_threads,
            accelerator=accelerator,
        )
        return _values(trial, result, hparams, names, artifacts)

    return objective


def _values(
    trial: Trial,
    result: TrainResult,
    hparams: HParams,
    names: list[str],
    artifacts: optuna.artifacts.FileSystemArtifactStore | None,
) -> object:
    """Record a trained trial's attributes (and model); its value or values (NaN: diverged)."""
    trial.set_user_attr("best_epoch", result.best_epoch)
    trial.set_user_attr("wall_time_s", round(result.wall_time_s, 2))
    trial.set_user_attr("n_params", result.n_params)
    if result.status != "ok":
        trial.set_user_attr(
            "fail_reason", f"{result.status}: the loss went NaN at epoch {len(result.history)}"
        )
        return math.nan if len(names) == 1 else tuple(math.nan for _ in names)
    if artifacts is not None:
        keep_model(trial, result.predictor, artifacts)
    values = [_MEASURES[name][1](result, hparams) for name in names]
    return values[0] if len(names) == 1 else tuple(values)
