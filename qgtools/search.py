"""Hyperparameter search with Optuna: spaces, the objective, storages, parallel workers.

Explained in notebooks 05 (study, objective, pruning, storage) and 06 (workers, storages).

Command line::

    python -m qgtools.search run --study NAME --trials N --workers W [--storage URL] [--data SOURCE]
        [--space cpu|reference|continuous] [--sampler tpe|gp|random]
        [--pruner median|hyperband|none] [--max-epochs E] [--seed S] [--allow-mismatch]
        [--population K] [--seeds S] [--enqueue NAME ...] [--max-flops F]
        [--patience N [--noise X]] [--keep-models [--artifact-dir DIR]]
    python -m qgtools.search report --study NAME [--storage URL] [--out DIR] [--artifact-dir DIR]
    python -m qgtools.search proxy [--storage RDB-URL] [--host HOST] [--port PORT]

Notebook 09 explains ``--enqueue`` (warm start), ``--sampler gp``, ``--max-flops`` (a constraint),
``--patience`` (the stopping rule of :mod:`qgtools.stopping`) and ``--keep-models`` (Optuna's
artifact store).

Storage: ``--storage`` takes any path ending in ``.journal``, an Optuna RDB URL
(``sqlite:///file.db``, ``postgresql://user:password@host/db``) or ``grpc://host:port``, Optuna's
gRPC storage proxy that ``proxy`` starts in front of an RDB URL (one process holds the database
connections for hundreds of workers; README, "On a cluster"). Without ``--storage``, the
environment variable ``QG_STORAGE`` names the storage (so a password stays out of the command
line and the process list: ``export QG_STORAGE=postgresql://...``); without both, Optuna's
journal file ``qg-studies.journal`` in the working directory (safe for several processes on one
machine).

``run`` exits with 0 (budget met), 1 (workers stopped early), 2 (bad input, said in one line
before any worker starts), 3 (too many failed trials in a row) or 130 (Ctrl-C: the workers are
stopped and their running trials marked failed).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
from optuna.trial import FrozenTrial, Trial, TrialState

from qgtools.config import sizes
from qgtools.data import DataSourceWarning, JetData, load
from qgtools.model import CPU_HPARAMS, HAND_TUNED_HPARAMS, HParams, load_model, save_model
from qgtools.population import SHARED_FIELDS, fit_population
from qgtools.stopping import FINISHED, NoImprovementStopper, check_rule
from qgtools.train import fit

DEFAULT_STORAGE = "qg-studies.journal"
STORAGE_VARIABLE = "QG_STORAGE"  # names the storage when none is given: no password in argv
SPLIT_SEED = 0  # every trial of every study is judged on the same split
MAX_FAILS_IN_A_ROW = 5
FAILING_EXIT_CODE = 3  # a worker's, and the command line's, after MAX_FAILS_IN_A_ROW
MAX_RESTARTS = 3  # a worker killed by a signal is replaced at most this often per run
PROXY_PORT = 13000  # Optuna's default for its gRPC storage proxy
PROXY_WAIT_S = 10  # how long a worker waits for the proxy to answer
INTERRUPTED_EXIT_CODE = 130  # the shell's for Ctrl-C
HEARTBEAT_S, GRACE_S = 10, 30
METRICS = {  # name: direction
    "val_rejection": "maximize",
    "val_auc": "maximize",
    "n_params": "minimize",
    "flops_per_jet": "minimize",
    "wall_time_s": "minimize",
}

Space = Callable[[Trial], HParams]


# --------------------------------------------------------------------------- search spaces


def reference_space(trial: Trial) -> HParams:
    """The reference sweep: input channels 2-45, 1-10 layers of 8-2048, LN/BN, ReLU/SiLU/Tanh,
    dropout 0.01-0.5, lr 1e-5-1e-1 (log), StepLR patience 4-25 and factor 0.1-0.5;
    batch 100, raw taus.

    A GPU-sized space: a trial with 10 x 2048 takes hours on a laptop CPU.
    """
    return HParams(
        input_channels=trial.suggest_int("input_channels", 2, 45),
        n_layers=trial.suggest_int("n_layers", 1, 10),
        n_channels=trial.suggest_int("n_channels", 8, 2048, log=True),
        layer_norm=trial.suggest_categorical("layer_norm", [True, False]),
        batch_norm=trial.suggest_categorical("batch_norm", [True, False]),
        hidden_activation=trial.suggest_categorical("hidden_activation", ["ReLU", "SiLU", "Tanh"]),
        dropout=trial.suggest_float("dropout", 0.01, 0.5),
        lr=trial.suggest_float("lr", 1e-5, 1e-1, log=True),
        patience=trial.suggest_int("patience", 4, 25),
        factor=trial.suggest_float("factor", 0.1, 0.5),
    )


def cpu_space(trial: Trial) -> HParams:
    """A space a laptop searches in minutes: 1-4 layers of 16-256, batch 128-1024, preprocessing.

    Conditional parameters: ``dropout`` only when ``use_dropout``; the StepLR ``patience`` and
    ``factor`` only when ``lr_decay`` (else the learning rate stays constant).
    """
    use_dropout = trial.suggest_categorical("use_dropout", [True, False])
    lr_decay = trial.suggest_categorical("lr_decay", [True, False])
    return HParams(
        n_layers=trial.suggest_int("n_layers", 1, 4),
        n_channels=trial.suggest_int("n_channels", 16, 256, log=True),
        layer_norm=trial.suggest_categorical("layer_norm", [True, False]),
        batch_norm=trial.suggest_categorical("batch_norm", [True, False]),
        hidden_activation=trial.suggest_categorical("hidden_activation", ["ReLU", "SiLU", "Tanh"]),
        dropout=trial.suggest_float("dropout", 0.01, 0.5) if use_dropout else 0.0,
        lr=trial.suggest_float("lr", 1e-4, 3e-2, log=True),
        patience=trial.suggest_int("patience", 2, 10) if lr_decay else 1,
        factor=trial.suggest_float("factor", 0.1, 0.5) if lr_decay else 1.0,
        batch_size=trial.suggest_categorical("batch_size", [128, 256, 512, 1024]),
        preprocessing=trial.suggest_categorical(
            "preprocessing", ["none", "standardize", "log+standardize"]
        ),
    )


def continuous_space(trial: Trial) -> HParams:
    """A small all-continuous space (notebook 09): learning rate, dropout, StepLR factor and width
    (an integer, searched on a log scale); the rest as ``CPU_HPARAMS``, with the learning rate
    stepped every 2 epochs so that the factor matters in short trials."""
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
reference = reference_space  # the old name, kept for compatibility
cpu = cpu_space  # the old name, kept for compatibility


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

    Raises:
        ValueError: a value the cpu space cannot make, named with the space's range.
    """
    ranges = {
        "n_layers": (1, 4),
        "n_channels": (16, 256),
        "lr": (1e-4, 3e-2),
        "dropout": (0.01, 0.5),
        "patience": (2, 10),
        "factor": (0.1, 0.5),
    }
    fixed = {"input_channels": 45, "pos_weight": 1.0}
    choices = {
        "batch_size": (128, 256, 512, 1024),
        "preprocessing": ("none", "standardize", "log+standardize"),
        "hidden_activation": ("ReLU", "SiLU", "Tanh"),
    }
    use_dropout, lr_decay = hparams.dropout > 0, hparams.factor != 1.0
    used = ["n_layers", "n_channels", "lr"] + ["dropout"] * use_dropout
    used += ["patience", "factor"] * lr_decay
    problems = [
        f"{name}={getattr(hparams, name)} is outside {low}-{high}"
        for name, (low, high) in ranges.items()
        if name in used and not low <= getattr(hparams, name) <= high
    ]
    problems += [
        f"{name}={getattr(hparams, name)!r} is not {value!r}"
        for name, value in fixed.items()
        if getattr(hparams, name) != value
    ]
    problems += [
        f"{name}={getattr(hparams, name)!r} is not one of {list(allowed)}"
        for name, allowed in choices.items()
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
        **{name: getattr(hparams, name) for name in choices},
    )
    return params


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

    Returns:
        The names, in order. Raises ValueError for an unknown name.
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
    """Rebuild a trial's configuration from its ``hparams`` user attribute."""
    return HParams(**trial.user_attrs["hparams"])


def flops_per_jet(hparams: HParams) -> int:
    """Multiply-adds x 2 of one forward pass (Linear layers; norms and activations left out)."""
    widths = [hparams.input_channels] + [hparams.n_channels] * hparams.n_layers + [1]
    return 2 * sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))


# --------------------------------------------------------------------------- the objective


def directions(metric: str | Sequence[str]) -> list[str]:
    """Optuna directions for a metric name or a tuple of them."""
    names = [metric] if isinstance(metric, str) else list(metric)
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"Unknown metric(s) {unknown}: use any of {list(METRICS)}.")
    return [METRICS[name] for name in names]


def check_max_flops(max_flops: float | None) -> None:
    """A ``ValueError`` naming the value unless ``max_flops`` is ``None`` or a positive number."""
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
) -> Callable[[Trial], object]:
    """An Optuna objective that trains one configuration from ``space``.

    Returns the trial's best validation rejection (or the tuple of ``metric`` values, for a
    multi-objective study, without pruning). Stores ``asdict(hparams)`` as the user
    attribute ``hparams`` and the worker's host and process as ``worker``. Prunes through
    Optuna's Lightning callback when single-objective. A diverged run returns NaN, so
    Optuna marks the trial failed and the study goes on; the reason is in ``fail_reason``.

    With ``max_flops`` every trial gets the constraint ``flops_per_jet - max_flops`` (feasible
    when <= 0, ``trial.set_constraint``; notebook 09). FLOPs are known before training, so an
    infeasible trial is not trained: it is pruned at once, and the sampler learns from its
    constraint value. With ``artifacts`` (an artifact store, see :func:`artifact_store`) each
    complete trial's trained model (its best epoch) is stored there and its artifact id kept in
    the user attribute ``model_artifact``: see :func:`trial_model`.
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
        )
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
        values = {
            "val_rejection": result.best_val_rejection,
            "val_auc": result.best_val_auc,
            "n_params": result.n_params,
            "flops_per_jet": flops_per_jet(hparams),
            "wall_time_s": result.wall_time_s,
        }
        return values[names[0]] if len(names) == 1 else tuple(values[name] for name in names)

    return objective


TRIALS_PER_SHAPE = 2
"""A population asks this many times its size in trials of its shape (it fills its places about
twice over) before the next population draws a new shape."""


def population_size(study: optuna.Study, population: int) -> int:
    """The size of the next population: ``population``, but never more than the study's completed
    trials (at least 1). A pruner compares a trial with completed ones, so a study's first
    population of K would run unpruned while it has nothing to compare with; this way the first
    populations are single trials (the sampler's start-up draws a shape each, as it draws a
    trial) and the size grows as trials complete."""
    complete = sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
    return max(1, min(population, complete))


SHAPE_PARAMS = tuple(f for f in SHARED_FIELDS if f not in ("input_channels", "max_epochs"))
"""The parameters of a space that a population's members share (``SHARED_FIELDS`` less what a
search fixes for all its trials); the first trial of a population draws them."""


def optimize_population(
    study: optuna.Study,
    data: JetData,
    space: Space | str,
    max_epochs: int,
    population: int,
    *,
    seeds: int = 1,
    n_trials: int | None = None,
    keep_asking: Callable[[], bool] | None = None,
    num_threads: int | None = None,
    split_seed: int = SPLIT_SEED,
) -> list[FrozenTrial]:
    """Train ``population`` trials of one shape at once, asking for new ones as places free up.

    Ask-and-tell: the first trial draws every parameter with the study's sampler; the others
    draw theirs with the shape parameters (``SHAPE_PARAMS``) fixed to the first trial's
    (``optuna.samplers.PartialFixedSampler``). The trials train in one
    :func:`qgtools.population.fit_population`, ``seeds`` members each (training seeds
    ``seed``, ``seed + 1``, ...). Every epoch each trial reports its validation rejection (the
    mean over its seeds) with ``trial.report`` and stops when ``trial.should_prune()`` says so;
    a trial that finishes or is pruned is told at once and frees its place for a new trial of
    the same shape, until ``n_trials`` (default ``population``: no new ones) have been asked or
    ``keep_asking()`` says no. ``study.tell`` ends each trial with the mean over seeds of each
    seed's best validation rejection; ``seed_values`` and ``seed_std`` hold the seeds' own
    values. The trials carry the user attributes :func:`make_objective` sets (``hparams``,
    ``worker``, ``best_epoch``, ...), so reports, ``hparams_of`` and dead-worker recovery work
    unchanged.
    Single-objective (validation rejection) studies only.

    Returns:
        The trials, in the order they were asked.
    """
    if population < 1 or seeds < 1:
        raise ValueError(f"population={population} and seeds={seeds} must be at least 1.")
    if len(study.directions) != 1:
        raise ValueError("A population search maximises one value (validation rejection).")
    n_trials = population if n_trials is None else n_trials
    space_fn = SPACES[space] if isinstance(space, str) else space
    trials: list[Trial] = []
    shape: dict = {}
    owner: list[int] = []  # the trial of each member, by member index

    def ask(n: int) -> list[HParams]:
        """Up to ``n`` new trials' members (``seeds`` each)."""
        new = []
        while len(new) < n * seeds and len(trials) < n_trials:
            if trials and keep_asking is not None and not keep_asking():
                break
            sampler = study.sampler
            trial = study.ask()
            record_worker(trial)  # first: a failure below must find the trial's worker
            try:
                # the sampler is asked at each suggest, so it is swapped through space_fn
                if trials:
                    with warnings.catch_warnings():  # experimental in Optuna 5; what this needs
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        study.sampler = optuna.samplers.PartialFixedSampler(shape, sampler)
                hparams = space_fn(trial).replace(max_epochs=max_epochs)
            finally:
                study.sampler = sampler
            if not trials:  # the first trial's draws fix the shape
                shape.update({k: trial.params[k] for k in SHAPE_PARAMS if k in trial.params})
            trial.set_user_attr("hparams", asdict(hparams))
            trial.set_user_attr(
                "population",
                {
                    "first": trials[0].number if trials else trial.number,
                    "size": population,
                    "seeds": seeds,
                },
            )
            trials.append(trial)
            owner.extend([len(trials) - 1] * seeds)
            new += [hparams.replace(seed=hparams.seed + s) for s in range(seeds)]
        return new

    def report(alive: list[int], entries: list[dict]) -> list[int]:
        rounds: dict[int, list[tuple[int, dict]]] = {}
        for i, entry in zip(alive, entries, strict=True):
            rounds.setdefault(owner[i], []).append((i, entry))
        stop = []
        for t, seen in rounds.items():
            values = [entry["val_rejection"] for _, entry in seen]
            if len(seen) < seeds or not all(math.isfinite(v) for v in values):
                stop += [i for i, _ in seen]  # a diverged seed ends its trial (the result says)
                continue
            trials[t].report(float(np.mean(values)), seen[0][1]["epoch"])
            if trials[t].should_prune():
                stop += [i for i, _ in seen]
        return stop

    finished: dict[int, list] = {}  # trial -> its members' results, as they leave

    def tell(t: int, mine: list) -> None:
        trial = trials[t]
        trial.set_user_attr("best_epoch", mine[0].best_epoch)
        trial.set_user_attr("wall_time_s", round(sum(r.wall_time_s for r in mine), 2))
        trial.set_user_attr("n_params", mine[0].n_params)
        diverged = [r for r in mine if r.status == "diverged"]
        if diverged:
            trial.set_user_attr(
                "fail_reason",
                f"diverged: the loss went NaN at epoch {len(diverged[0].history)}",
            )
            study.tell(trial, state=TrialState.FAIL)
        elif any(r.status == "pruned" for r in mine):
            study.tell(trial, state=TrialState.PRUNED)
        else:
            values = [r.best_val_rejection for r in mine]
            if seeds > 1:
                trial.set_user_attr("seed_values", [round(v, 4) for v in values])
                trial.set_user_attr("seed_std", round(float(np.std(values, ddof=1)), 4))
            study.tell(trial, float(np.mean(values)))

    def leave(i: int, result) -> None:  # a trial ends as soon as its last member leaves
        mine = finished.setdefault(owner[i], [])
        mine.append(result)
        if len(mine) == seeds:
            tell(owner[i], mine)

    fit_population(
        ask(population),
        data,
        split_seed=split_seed,
        num_threads=num_threads,
        on_epoch=report,
        refill=lambda free: ask(free // seeds),
        on_leave=leave,
    )
    return [study.trials[trial.number] for trial in trials]


def search_populations(
    study: optuna.Study,
    data: JetData,
    space: Space | str,
    max_epochs: int,
    population: int,
    *,
    seeds: int = 1,
    n_trials: int | None = None,
    timeout: float | None = None,
    num_threads: int | None = None,
    split_seed: int = SPLIT_SEED,
) -> list[FrozenTrial]:
    """Population after population (:func:`optimize_population`, each asking
    ``TRIALS_PER_SHAPE`` x ``population`` trials of its shape) in this process, until
    ``n_trials`` trials have been asked or ``timeout`` seconds have passed (then no new trial
    starts; the running ones finish). The in-process counterpart of ``study.optimize``.

    Returns:
        The trials it ran, in the order they were asked.
    """
    if n_trials is None and timeout is None:
        raise ValueError("Give n_trials or timeout (or both): a search needs an end.")
    start, ran = time.perf_counter(), []

    def in_time() -> bool:
        return timeout is None or time.perf_counter() - start < timeout

    while in_time() and (n_trials is None or len(ran) < n_trials):
        size = population_size(study, population)
        left = n_trials - len(ran) if n_trials is not None else TRIALS_PER_SHAPE * size
        ran += optimize_population(
            study,
            data,
            space,
            max_epochs,
            min(size, left),
            seeds=seeds,
            n_trials=min(TRIALS_PER_SHAPE * size, left),
            keep_asking=in_time,
            num_threads=num_threads,
            split_seed=split_seed,
        )
    return ran


# --------------------------------------------------------------------------- storages and studies


_QUERY_PASSWORD = re.compile(r"(?i)([?&](?:password|passwd|pwd)=)([^&]*)")


def _credentials(url: str) -> tuple[str, str, str | None, str] | None:
    """``(scheme, user, password, rest)`` of ``scheme://user:password@rest``, split at the
    *last* ``@`` (a password may hold ``:``, ``/`` or ``@``); ``None`` without ``://``/``@``."""
    scheme, sep, after = url.partition("://")
    if not sep or "@" not in after:
        return None
    userinfo, _, rest = after.rpartition("@")
    user, colon, password = userinfo.partition(":")
    return scheme, user, password if colon else None, rest


def _mask(url: str) -> str:
    """``url`` with its password as ``***``: all between the user name and the last ``@``, and
    a ``password=`` query value. Never fails, whatever the URL looks like."""
    masked = _QUERY_PASSWORD.sub(r"\1***", url)
    parts = _credentials(masked)
    if parts and parts[2] is not None:
        scheme, user, _, rest = parts
        masked = f"{scheme}://{user}:***@{rest}"
    elif "://" not in masked and "@" in masked:  # not a URL (a typo?): hide all before the '@'
        masked = "***@" + masked.rpartition("@")[2]
    return masked


def _secrets(url: str) -> list[str]:
    """The password(s) in ``url``, as written and percent-decoded, longest first."""
    from urllib.parse import unquote

    parts = _credentials(url)
    found = [parts[2]] if parts and parts[2] else []
    found += [match.group(2) for match in _QUERY_PASSWORD.finditer(url)]
    return sorted({text for raw in found for text in (raw, unquote(raw)) if text}, key=len)[::-1]


def _scrub(text: str, url: str) -> str:
    """``text`` (a parser's or driver's message) with every password in ``url`` as ``***``."""
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


def storage_url(url: str | os.PathLike | None = None) -> str:
    """``url`` itself when given, else ``$QG_STORAGE`` when set, else ``qg-studies.journal``."""
    if url is not None and str(url):
        return str(url)
    return os.environ.get(STORAGE_VARIABLE, "").strip() or DEFAULT_STORAGE


def open_storage(url: str | os.PathLike | None = None) -> BaseStorage:
    """The storage named by ``url``: a ``.journal`` path, an RDB URL or a gRPC proxy
    (``grpc://host:port``); without one, the URL in the environment variable ``QG_STORAGE``,
    else ``qg-studies.journal``.

    RDB storages get Optuna's heartbeat, so trials of dead workers are failed automatically.
    Processes that open a fresh database at once (a job array's first tasks) race to create
    Optuna's tables; a loser tries again, up to ``SCHEMA_RACE_RETRIES`` times. The proxy has
    no heartbeat: a dead worker's trial is failed by its run on the same host, by
    the next run on that host (:func:`fail_dead_workers_trials`) or, under SLURM, by the next
    task (:func:`fail_ended_slurm_trials`).
    """
    url = storage_url(url)
    if url.startswith("grpc://"):
        return _grpc_proxy(url)
    if url.endswith(".journal"):
        path = Path(url).expanduser()
        if not path.parent.is_dir():
            raise ValueError(
                f"Storage {url!r}: the folder {path.parent} does not exist; "
                "create it or pick another path."
            )
        try:
            return JournalStorage(_JournalFile(str(path)))
        except ValueError as error:  # json's errors and Optuna's "Invalid log format."
            raise _damaged_journal_error(path) or error from None
    if "://" not in url:
        raise ValueError(
            f"Storage {_mask(url)!r} is neither a path ending in .journal nor a database URL "
            "(sqlite:///studies.db, postgresql://user:password@host/db)."
        )
    parts = _credentials(url)
    if parts and parts[2] and "@" in parts[2]:
        raise ValueError(
            f"Storage {_mask(url)}: the password holds '@', which a URL reads as the end of the "
            "password; percent-encode it (@ as %40; urllib.parse.quote(password, safe='') "
            "encodes all)."
        )
    for attempt in range(SCHEMA_RACE_RETRIES + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore", optuna.exceptions.ExperimentalWarning
                )  # the heartbeat's
                return RDBStorage(
                    _with_installed_driver(url),
                    heartbeat_interval=HEARTBEAT_S,
                    grace_period=GRACE_S,
                    engine_kwargs={"pool_pre_ping": True},
                )
        except Exception as error:  # noqa: BLE001 - sqlalchemy and drivers raise many kinds
            if attempt < SCHEMA_RACE_RETRIES and _lost_the_schema_race(error):
                time.sleep(0.5 * (attempt + 1))  # the winner's tables are there next time
                continue
            said = _scrub(str(error).splitlines()[0] if str(error) else "", url)
            raise ValueError(
                f"Cannot open storage {_mask(url)}: {type(error).__name__}: {said}. "
                "Check the URL, the server and the credentials."
            ) from None
    raise AssertionError("unreachable")  # the loop returns or raises


SCHEMA_RACE_RETRIES = 5
"""How often :func:`open_storage` tries again after losing the race to create Optuna's tables."""


def _lost_the_schema_race(error: Exception) -> bool:
    """Whether ``error`` is another process creating Optuna's tables in a fresh database at the
    same moment (a job array's first tasks start together): PostgreSQL's unique violation on its
    type catalogue, or a table that "already exists"."""
    import sqlalchemy.exc

    return isinstance(error, sqlalchemy.exc.IntegrityError) or (
        isinstance(error, sqlalchemy.exc.ProgrammingError) and "already exists" in str(error)
    )


class _ReentrantLock:
    """Optuna's lock on a journal file (a ``<file>.lock`` symlink, as ``JournalFileBackend`` takes
    by default), re-entrant: a thread that holds it may acquire it again."""

    def __init__(self, path: str) -> None:
        self._lock = JournalFileSymlinkLock(path)
        self._thread = threading.RLock()
        self._depth = 0

    def acquire(self) -> bool:
        self._thread.acquire()
        if self._depth == 0:
            try:
                self._lock.acquire()  # waits while another process holds it
            except BaseException:
                self._thread.release()
                raise
        self._depth += 1
        return True

    def release(self) -> None:
        self._depth -= 1
        try:
            if self._depth == 0:
                self._lock.release()
        finally:
            self._thread.release()


class _JournalFile(JournalFileBackend):
    """Optuna's journal file that, before appending, trims a partial last line (a write cut
    short by a full disk, a power loss or a killed writer), keeping a backup.

    Optuna skips such a line when reading but would append after it, turning it into a broken
    line in the middle, which makes the whole file unreadable. The check and the append happen
    under the journal's lock, so no other writer is mid-write.
    """

    def __init__(self, path: str) -> None:
        self._lock_held = _ReentrantLock(path)
        super().__init__(path, lock_obj=self._lock_held)
        self._path = path

    def append_logs(self, logs: list[dict]) -> None:
        self._lock_held.acquire()
        try:
            _trim_partial_last_line(self._path)
            super().append_logs(logs)  # takes the same lock again: a no-op while held
        finally:
            self._lock_held.release()


def _trim_partial_last_line(path: str) -> None:
    """Cut a journal's last line if it lacks its newline, after copying the file to
    ``<file>.bak-<time>``; say so on stderr. Call it holding the journal's lock."""
    with open(path, "rb") as file:
        size = file.seek(0, os.SEEK_END)
        if size == 0:
            return
        file.seek(size - 1)
        if file.read(1) == b"\n":
            return
        keep = size
        while keep > 0:  # back to the newline that ends the last whole line
            start = max(0, keep - 65536)
            file.seek(start)
            chunk = file.read(keep - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            keep = start
    backup = Path(f"{path}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
    for extra in range(1, 1000):
        if not backup.exists():
            break
        backup = Path(f"{path}.bak-{time.strftime('%Y%m%d-%H%M%S')}-{extra}")
    shutil.copy2(path, backup)
    os.truncate(path, keep)
    print(
        f"Repaired the journal {path}: cut a partial last line of {size - keep} bytes (a write "
        f"that was cut short; Optuna never read it); the original is kept as {backup.name}.",
        file=sys.stderr,
    )


def _damaged_journal_error(path: Path) -> ValueError | None:
    """The error for a journal with a broken line before its end, naming the line; ``None``
    when every line reads (the trouble is elsewhere)."""
    with open(path, "rb") as file:
        lines = file.readlines()
    for number, line in enumerate(lines, start=1):
        if number == len(lines) and not line.endswith(b"\n"):
            break  # a partial last line: Optuna skips it, the next append trims it
        try:
            json.loads(line)
        except ValueError as error:
            return ValueError(
                f"The journal {path} is damaged at line {number} of {len(lines)} "
                f"({type(error).__name__}): Optuna cannot read past it. Restore the file from a "
                f"backup, or keep a copy and delete that line (the changes it held are lost)."
            )
    return None


def _proxy_address(url: str) -> tuple[str, int]:
    """``(host, port)`` of ``grpc://host:port``; a ValueError saying the form otherwise."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or parts.path not in ("", "/") or parts.username:
        raise ValueError(
            f"Storage {_mask(url)!r}: name a gRPC proxy as grpc://HOST:PORT "
            f"(grpc://127.0.0.1:{PROXY_PORT}); start one in front of a database with "
            "`python -m qgtools.search proxy`."
        )
    return parts.hostname, port


def _grpc_proxy(url: str) -> BaseStorage:
    """A client of the gRPC storage proxy at ``url``, once the proxy answers."""
    host, port = _proxy_address(url)
    try:
        from optuna.storages import GrpcStorageProxy

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            proxy = GrpcStorageProxy(host=host, port=port)
    except ImportError as error:
        raise ValueError(
            f"Storage {url}: the gRPC proxy needs grpcio and protobuf ({error}); "
            "pip install -r requirements.txt installs the pinned ones."
        ) from None
    try:
        proxy.wait_server_ready(timeout=PROXY_WAIT_S)
    except ConnectionError:
        proxy.close()
        raise ValueError(
            f"No gRPC storage proxy answers at {host}:{port} (waited {PROXY_WAIT_S} s): start "
            f"it (python -m qgtools.search proxy --host {host} --port {port}, with QG_STORAGE "
            "set to the database URL) or check the host and port."
        ) from None
    return proxy


def serve_proxy(
    storage: str | os.PathLike | None = None,
    host: str = "127.0.0.1",
    port: int = PROXY_PORT,
) -> None:
    """Run Optuna's gRPC storage proxy in front of the RDB storage ``storage`` (default
    ``$QG_STORAGE``) on ``host:port`` until Ctrl-C or SIGTERM; workers then use
    ``--storage grpc://host:port``. What ``python -m qgtools.search proxy`` calls.

    The proxy holds at most a few database connections (its thread pool of 10), whatever the
    number of workers, and caches finished trials. It has no authentication and no TLS: bind it
    to an address only the cluster's nodes reach (never ``0.0.0.0`` on a machine open to the
    internet). It cannot front a journal file (Optuna's limit) or another proxy.

    Raises:
        ValueError: a storage that is not an RDB URL, or a port already in use.
    """
    from optuna.storages._grpc.server import make_server

    url = storage_url(storage)
    if url.endswith(".journal") or url.startswith("grpc://") or "://" not in url:
        raise ValueError(
            f"The proxy fronts a database (postgresql://..., mysql://..., sqlite:///file.db), not "
            f"{_mask(url)!r}: set QG_STORAGE (or --storage) to the database URL."
        )
    if _in_memory(url):
        raise ValueError(f"Storage {_mask(url)!r} is in memory: the proxy needs a database.")
    cached = optuna.storages.get_storage(open_storage(url))  # Optuna's in-process trial cache
    try:
        server = make_server(cached, host, port)
        server.start()
    except RuntimeError as error:  # grpc's "Failed to bind to address ..."
        raise ValueError(
            f"The proxy cannot listen on {host}:{port} ({error}): is another proxy running "
            "there? Pick another --port."
        ) from None
    print(
        f"gRPC storage proxy for {_mask(url)} on {host}:{port}; workers use "
        f"--storage grpc://{host}:{port}. Ctrl-C stops it.",
        flush=True,
    )
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop(grace=5).wait()


def _with_installed_driver(url: str) -> str:
    """``postgresql://`` means psycopg 3 to SQLAlchemy 2.1: use psycopg2 (the pinned driver) when
    only it is installed."""
    import importlib.util

    if (
        url.startswith("postgresql://")
        and importlib.util.find_spec("psycopg") is None
        and importlib.util.find_spec("psycopg2") is not None
    ):
        return "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


# --------------------------------------------------------------------------- keeping the models

ARTIFACTS_SUFFIX = ".artifacts"


def artifacts_beside(url: str | os.PathLike | None = None) -> Path:
    """The folder for a study's kept models: ``<file>.artifacts`` beside a journal or SQLite
    file (``qg-studies.journal.artifacts``). A database server has no file to sit beside: name a
    folder yourself (``--artifact-dir``), one every worker reaches.

    Raises:
        ValueError: for a storage that is not a local file.
    """
    resolved = storage_url(url)
    path = _local_file(resolved)
    if path is None:
        raise ValueError(
            f"Storage {_mask(resolved)!r} is not a file, so there is no place beside it for the "
            "models: give a folder every worker can reach (--artifact-dir DIR)."
        )
    return path.with_name(path.name + ARTIFACTS_SUFFIX)


def artifact_store(folder: str | os.PathLike) -> optuna.artifacts.FileSystemArtifactStore:
    """Optuna's file-system artifact store in ``folder`` (created if missing); what
    ``optuna-dashboard --artifact-dir FOLDER`` reads."""
    path = Path(folder).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file, not a folder: name a folder for the models.")
    path.mkdir(parents=True, exist_ok=True)
    return optuna.artifacts.FileSystemArtifactStore(path)


def keep_model(trial: Trial, predictor, artifacts: optuna.artifacts.FileSystemArtifactStore) -> str:
    """Store a trial's trained model (:func:`qgtools.model.save_model`'s file) as an artifact of
    the trial; its id goes into the user attribute ``model_artifact``. Returns the id."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="qg-model-") as folder:
        path = save_model(predictor, Path(folder) / f"trial-{trial.number}-model.pt")
        artifact_id = optuna.artifacts.upload_artifact(
            artifact_store=artifacts, file_path=str(path), study_or_trial=trial
        )
    trial.set_user_attr("model_artifact", artifact_id)
    return artifact_id


def model_file(trial: FrozenTrial, folder: str | os.PathLike) -> Path:
    """The file holding a trial's kept model in the artifact ``folder``; load it with
    :func:`qgtools.model.load_model`.

    Raises:
        ValueError: the trial kept no model (not run with ``keep_models``, or not complete), or
            the file is not in ``folder``.
    """
    artifact_id = trial.user_attrs.get("model_artifact")
    if artifact_id is None:
        raise ValueError(
            f"Trial #{trial.number} ({trial.state.name}) kept no model: only complete trials of "
            "a run with keep_models (--keep-models) keep theirs. Retrain it from "
            "hparams_of(trial) instead."
        )
    path = Path(folder).expanduser() / artifact_id
    if not path.is_file():
        raise ValueError(
            f"Trial #{trial.number}'s model {artifact_id} is not in {Path(folder)}: point "
            "to the folder the run kept its models in (--artifact-dir)."
        )
    return path


def trial_model(trial: FrozenTrial, folder: str | os.PathLike):
    """A trial's kept model, loaded without retraining (a :class:`qgtools.model.Predictor`)."""
    return load_model(model_file(trial, folder))


# --------------------------------------------------------------------------- samplers

TPE_STARTUP_TRIALS = 5
"""TPE's random start-up trials in ``qgtools`` (Optuna's own default is 10): short studies."""


def make_sampler(
    name: str, seed: int | None, n_startup_trials: int = TPE_STARTUP_TRIALS
) -> optuna.samplers.BaseSampler:
    """A seeded sampler by name. Explained in notebook 05.

    Args:
        name: ``"tpe"``, ``"gp"`` or ``"random"``.
        seed: seeds the sampler's draws (None: a fresh seed each time).
        n_startup_trials: TPE's or the GP's first trials, drawn at random before it models the
            results (TPE counts complete and pruned trials, the GP complete ones); 0 or more.
            Random sampling has no start-up phase (all its trials are random), so it ignores
            the number.

    Returns:
        ``TPESampler``, ``GPSampler`` or ``RandomSampler``. TPE draws its start-up trials with
        a ``RandomSampler`` of the same seed, so on the same objective its first
        ``n_startup_trials`` configurations are those of ``make_sampler("random", seed)``.
        The Gaussian-process sampler (notebook 09) models the parameters every trial has; the
        conditional ones of the cpu space (``dropout``, ``patience``, ``factor``) it draws at
        random, independently, and says so here rather than in a warning per trial.

    Raises:
        ValueError: an unknown name, or ``n_startup_trials`` not a whole number >= 0.
    """
    if isinstance(n_startup_trials, bool) or not isinstance(n_startup_trials, (int, np.integer)):
        raise ValueError(
            f"n_startup_trials={n_startup_trials!r}: use a whole number of trials, 0 or more."
        )
    if n_startup_trials < 0:
        raise ValueError(
            f"n_startup_trials={n_startup_trials!r} is negative: use 0 or more "
            f"(0: TPE from the first trial; default {TPE_STARTUP_TRIALS})."
        )
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=int(n_startup_trials))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(
            seed=seed, n_startup_trials=int(n_startup_trials), warn_independent_sampling=False
        )
    raise ValueError(f"Unknown sampler {name!r}: use one of {list(SAMPLERS)}.")


SAMPLERS = ("tpe", "gp", "random")
"""The samplers by the names ``--sampler`` takes."""


class _TrialSeededSampler(optuna.samplers.BaseSampler):
    """``make_sampler(name, ...)`` made afresh for each trial, seeded from ``seed`` and the trial's
    number, so a study never draws two trials from the same random stream.

    Why the trial number: the storage hands each new trial a number no other trial of the study
    has, atomically (one journal line appended under the file lock; one database row), whatever
    runs, workers or machines ask at the same moment. Seeding from it means a rerun, a top-up,
    a rerun SLURM array or two runs started at once with the same ``--seed`` draw new
    configurations instead of repeating the ones already in the study, while a fresh study run
    the same way with one worker gets the same trials again (trial ``n`` of a study always gets
    the same seed). The samplers keep no state of their own between trials (TPE reads the
    history from the study), so re-making one per trial loses nothing.
    """

    def __init__(self, name: str, seed: int) -> None:
        self._name, self._seed = name, seed
        self._sampler = make_sampler(name, seed)

    def _seed_of(self, number: int) -> int:
        return int(np.random.SeedSequence(self._seed, spawn_key=(number,)).generate_state(1)[0])

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._sampler = make_sampler(self._name, self._seed_of(trial.number))
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict:
        return self._sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict) -> dict:
        return self._sampler.sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution
    ) -> object:
        return self._sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values
    ) -> None:
        self._sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._sampler.reseed_rng()


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """``"median"``, ``"hyperband"`` or ``"none"``."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"Unknown pruner {name!r}: use 'median', 'hyperband' or 'none'.")


def record_worker(trial: Trial) -> None:
    """Note which host and process runs the trial (user attribute ``worker``) and, under SLURM,
    which job and array task (``slurm``), so a dead worker's trial can be failed."""
    import psutil

    pid = os.getpid()
    trial.set_user_attr(
        "worker",
        {"host": socket.gethostname(), "pid": pid, "started": psutil.Process(pid).create_time()},
    )
    if os.environ.get("SLURM_JOB_ID"):
        trial.set_user_attr(
            "slurm",
            {
                "job_id": os.environ["SLURM_JOB_ID"],
                "array_job_id": os.environ.get("SLURM_ARRAY_JOB_ID"),
                "array_task_id": os.environ.get("SLURM_ARRAY_TASK_ID"),
            },
        )


def _alive(worker: dict) -> bool:
    import psutil

    try:
        process = psutil.Process(worker["pid"])
        if process.status() == psutil.STATUS_ZOMBIE:  # killed, not yet reaped by its parent
            return False
        return abs(process.create_time() - worker["started"]) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError):
        return False


def fail_dead_workers_trials(
    study: optuna.Study, storage: BaseStorage, reasons: Mapping[int, str] | None = None
) -> list[int]:
    """Mark failed the running trials whose worker process on this host no longer exists.

    The journal storage has no heartbeat, so this is how it recovers from a killed worker.
    Trials of other hosts are left alone (their own runs recover them). ``storage`` is the one
    the study was opened with: Optuna's public ``Study`` cannot change a trial it did not ask
    for, but the public ``BaseStorage`` methods can, atomically (``set_trial_state_values``
    returns False when another process finished the trial first). ``reasons`` maps process ids
    to the ``fail_reason`` their trials get (default: the worker died mid-trial). Returns trial
    numbers.
    """
    host, failed = socket.gethostname(), []
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if worker and worker.get("host") == host and not _alive(worker):
            reason = (reasons or {}).get(
                worker["pid"], f"worker process {worker['pid']} on {host} died mid-trial"
            )
            if _fail_trial(storage, study_id, trial.number, reason):
                failed.append(trial.number)
    return failed


def _fail_trial(storage: BaseStorage, study_id: int, number: int, reason: str) -> bool:
    """Fail a running trial with ``reason``; False when another process finished it first."""
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    try:
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        return storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


SLURM_LIVE_STATES = {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "CONFIGURING", "SIGNALING"}
"""squeue's states of a job whose processes may still run."""


def slurm_jobs_running(job_ids: Sequence[str]) -> set[str] | None:
    """The ones of ``job_ids`` that SLURM still runs (one ``squeue`` call); ``None`` when squeue
    is missing or cannot say (the controller does not answer)."""
    if not job_ids:
        return set()
    try:
        out = subprocess.run(
            ["squeue", "--noheader", "--jobs", ",".join(job_ids), "--format", "%A %T"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:  # "Invalid job id specified": none of them is known any more
        return set() if "Invalid job id" in out.stderr else None
    rows = [line.split() for line in out.stdout.splitlines()]
    return {row[0] for row in rows if len(row) == 2 and row[1] in SLURM_LIVE_STATES}


def fail_ended_slurm_trials(study: optuna.Study, storage: BaseStorage) -> list[int]:
    """Mark failed the running trials whose SLURM job (user attribute ``slurm``) has ended.

    What recovers, on a cluster, the trial of an array task that SLURM killed whole (time
    limit, ``scancel``, a lost node) when no heartbeat does (the gRPC proxy, a journal): each
    task calls it as it starts. Does nothing when squeue cannot answer. Returns trial numbers.
    """
    mine = os.environ.get("SLURM_JOB_ID")
    running = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if "slurm" in t.user_attrs and t.user_attrs["slurm"].get("job_id") != mine
    ]
    live = slurm_jobs_running(sorted({t.user_attrs["slurm"]["job_id"] for t in running}))
    if live is None:
        return []
    study_id = storage.get_study_id_from_name(study.study_name)
    failed = []
    for trial in running:
        slurm = trial.user_attrs["slurm"]
        if slurm["job_id"] not in live:
            task = slurm.get("array_task_id")
            reason = f"SLURM job {slurm['job_id']}" + (f" (array task {task})" * bool(task))
            if _fail_trial(storage, study_id, trial.number, reason + " ended mid-trial"):
                failed.append(trial.number)
    return failed


def fail_unclaimed_trials(
    study: optuna.Study, storage: BaseStorage, before: set[int], reason: str, grace: float = 1.0
) -> list[int]:
    """Mark failed the running trials this run's workers created but never claimed.

    A worker creates its trial, then records itself on it (:func:`record_worker`); a worker
    stopped between the two leaves a running trial with no ``worker`` attribute, which
    :func:`fail_dead_workers_trials` cannot attribute. Called once every worker of this run has
    stopped: trials not in ``before`` (the trial numbers that existed when the run started)
    that are still running and unclaimed after ``grace`` seconds (a worker of another run
    claims its trial within milliseconds) are failed with ``reason``. Returns trial numbers.
    """

    def unclaimed() -> list[FrozenTrial]:
        return [
            trial
            for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if trial.number not in before and "worker" not in trial.user_attrs
        ]

    if not unclaimed():
        return []
    time.sleep(grace)
    study_id = storage.get_study_id_from_name(study.study_name)
    return [t.number for t in unclaimed() if _fail_trial(storage, study_id, t.number, reason)]


def count_finished(study: optuna.Study) -> int:
    """Complete and pruned trials (failed ones do not count toward the budget)."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def _taken(study: optuna.Study) -> int:
    """Finished plus running trials, from one read of the study: two reads could miss a trial
    that finished between them and start one trial too many."""
    states = [trial.state for trial in study.get_trials(deepcopy=False)]
    return sum(state in FINISHED or state == TrialState.RUNNING for state in states)


# --------------------------------------------------------------------------- running a study


@dataclass(frozen=True)
class _Job:
    """What every worker of one :func:`run_study` needs (picklable, for spawned processes)."""

    study: str
    storage: str
    n_trials: int
    data: str
    jets: int
    space: str
    sampler: str
    pruner: str
    max_epochs: int
    seed: int
    expected_data: tuple[str, int]  # (origin, jets) the parent loaded: the workers must match
    population: int = 1  # trials each worker trains at once (optimize_population)
    seeds: int = 1  # training seeds per trial
    max_flops: float | None = None  # the FLOPs-per-jet constraint
    artifacts: str | None = None  # the folder for the kept models
    patience: int | None = None  # the stopping rule (qgtools.stopping)
    noise: float | None = None  # its noise; None: measured from the trials' seeds


@dataclass(frozen=True)
class StudySummary:
    """What :func:`run_study` leaves behind.

    Attributes:
        study: the study's name.
        n_trials: the budget (finished trials the study should have).
        finished: complete and pruned trials now in the study.
        status: ``"done"`` (budget met), ``"stopped"`` (the stopping rule said stop before the
            budget), ``"incomplete"`` (workers stopped early: run again) or ``"failing"`` (a
            worker stopped after ``MAX_FAILS_IN_A_ROW`` failed trials).
        best_number, best_value, best_params: the best trial so far (``None`` without one).
        recovered: trials of dead workers marked failed by this run.
        exit_codes: the exit codes of every worker process started, replacements of killed
            ones included (empty when the budget was met already).
        last_fail_reason: why the last failed trial failed, if any did.
    """

    study: str
    n_trials: int
    finished: int
    status: str
    best_number: int | None = None
    best_value: float | None = None
    best_params: dict = field(default_factory=dict)
    recovered: tuple[int, ...] = ()
    exit_codes: tuple[int | None, ...] = ()
    last_fail_reason: str | None = None
    best_model: str | None = None  # the best trial's kept model file, if models were kept

    def __str__(self) -> str:
        finished = f"{self.finished} finished trial{'s' * (self.finished != 1)}"
        if self.best_value is None:
            return f"Study {self.study!r}: {finished}; no complete (and feasible) trial yet"
        return (
            f"Study {self.study!r}: {finished}; best #{self.best_number}: "
            f"validation rejection {self.best_value:.1f} with\n{format_params(self.best_params)}"
        )


def format_params(params: Mapping[str, object], width: int = 88, indent: str = "    ") -> str:
    """``name=value`` pairs, floats to 3 significant digits, wrapped into lines of at most
    ``width`` characters that each start with ``indent`` (a long line runs off a terminal, and
    JupyterLab breaks it mid-word). Notebook 06 and the report.

    Returns:
        The lines joined by newlines (``""`` for no parameters), each pair whole on one line, a
        comma ending every line but the last: ``    lr=0.00123, n_channels=64, batch_size=256``.
    """
    pairs = [
        f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in params.items()
    ]
    lines: list[str] = []
    for pair in pairs:
        if lines and len(indent) + len(lines[-1]) + len(pair) + 3 <= width:  # ", " and ","
            lines[-1] += f", {pair}"
        else:
            lines.append(pair)
    return ",\n".join(indent + line for line in lines)


def _worker(index: int, job: _Job) -> None:
    """One worker process: one torch thread, a sampler seeded from ``seed`` and each trial's
    number, trials until the budget is met."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataSourceWarning)  # the parent has said it once
        data = load(num_data=job.jets, source=job.data)
    if (data.origin, len(data)) != job.expected_data:
        raise ValueError(
            f"Worker {index} loaded {data.source}, not the {job.expected_data[1]} jets of "
            f"{job.expected_data[0]} the run started with: did the data change? Run again."
        )
    study = optuna.load_study(
        study_name=job.study,
        storage=open_storage(job.storage),
        sampler=_TrialSeededSampler(job.sampler, job.seed),
        pruner=make_pruner(job.pruner),
    )
    objective = make_objective(
        data,
        job.space,
        job.max_epochs,
        num_threads=1,
        max_flops=job.max_flops,
        artifacts=artifact_store(job.artifacts) if job.artifacts else None,
    )

    def recorded(trial: Trial) -> object:
        try:
            return objective(trial)
        except optuna.TrialPruned:
            raise
        except Exception as error:  # recorded, then Optuna marks the trial failed
            trial.set_user_attr("fail_reason", f"{type(error).__name__}: {error}")
            raise

    last: list[FrozenTrial] = []
    fails_in_a_row = 0
    while True:
        taken = _taken(study)
        if taken >= job.n_trials or _rule_says_stop(study, job):
            return
        if job.population > 1 or job.seeds > 1:
            trials = _population_in_worker(study, data, job, job.n_trials - taken)
            failed = all(t.state == TrialState.FAIL for t in trials)
        else:
            study.optimize(
                recorded, n_trials=1, catch=(Exception,), callbacks=[lambda _, t: last.append(t)]
            )
            failed = last and last[-1].state == TrialState.FAIL
        fails_in_a_row = fails_in_a_row + 1 if failed else 0
        if fails_in_a_row >= MAX_FAILS_IN_A_ROW:
            sys.exit(FAILING_EXIT_CODE)


def rule_noise(study: optuna.Study, seeds: int) -> float | None:
    """The stopping rule's noise measured from a study run with ``seeds`` > 1: the median
    seed-to-seed spread of its complete trials over the square root of ``seeds`` (a trial's
    value is a mean over its seeds). ``None`` until a trial has it."""
    spreads = [
        t.user_attrs["seed_std"]
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "seed_std" in t.user_attrs
    ]
    return float(np.median(spreads)) / math.sqrt(seeds) if spreads and seeds > 1 else None


def _rule_says_stop(study: optuna.Study, job: _Job) -> bool:
    """Whether the job's stopping rule (if any) says the study is done."""
    if job.patience is None:
        return False
    noise = job.noise if job.noise is not None else rule_noise(study, job.seeds)
    if noise is None:
        return False
    startup = 0 if job.sampler == "random" else TPE_STARTUP_TRIALS
    return NoImprovementStopper(job.patience, noise, startup).should_stop(study)


def _population_in_worker(
    study: optuna.Study, data: JetData, job: _Job, left: int
) -> list[FrozenTrial]:
    """One population (at most ``left`` trials at once, asking no more once the study has its
    budget); an error fails this worker's running trials with the reason (as
    ``study.optimize(catch=...)`` does for one trial) instead of ending the worker."""
    size = min(population_size(study, job.population), left)
    try:
        return optimize_population(
            study,
            data,
            job.space,
            job.max_epochs,
            size,
            seeds=job.seeds,
            n_trials=TRIALS_PER_SHAPE * size,
            keep_asking=lambda: _taken(study) < job.n_trials,
            num_threads=1,
        )
    except Exception as error:  # noqa: BLE001 (recorded on the trials, as optimize's catch does)
        reason = f"{type(error).__name__}: {error}"
        storage = open_storage(job.storage)
        study_id = storage.get_study_id_from_name(study.study_name)
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial.user_attrs.get("worker", {}).get("pid") == os.getpid():
                _fail_trial(storage, study_id, trial.number, reason)
        return []


def run_study(
    study: str,
    *,
    n_trials: int,
    workers: int = 1,
    storage: str | os.PathLike | None = None,
    data: str | os.PathLike = "auto",
    jets: int = -1,
    space: str = "cpu",
    sampler: str = "tpe",
    pruner: str = "median",
    max_epochs: int = 5,
    seed: int = 0,
    progress: bool = True,
    allow_mismatch: bool = False,
    population: int = 1,
    seeds: int = 1,
    enqueue: Sequence[str] = (),
    max_flops: float | None = None,
    keep_models: bool = False,
    artifact_dir: str | os.PathLike | None = None,
    patience: int | None = None,
    noise: float | None = None,
) -> StudySummary:
    """Create, join or top up a study and run it with ``workers`` processes until it has
    ``n_trials`` finished trials.

    Each worker is a spawned process with one torch thread that loads the data itself
    (``data``, first ``jets`` jets), trains configurations of ``space`` for ``max_epochs`` and
    samples with ``sampler`` seeded from ``seed`` and the trial's number (so reruns and runs
    started at once never repeat a configuration, and a fresh study run the same way with one
    worker gets the same trials). Trials of workers that died are marked failed (here and at
    the next run), and a worker killed by a signal is replaced while the budget is not met.
    Workers that reach the end of the budget together may each start one last trial, so a run
    can finish up to ``workers - 1`` trials more than ``n_trials`` (as with Optuna's
    ``MaxTrialsCallback``). Ctrl-C stops the workers, marks their running trials failed
    ("interrupted") and raises ``KeyboardInterrupt``. Bad arguments and data are
    ``ValueError`` before any worker starts or any storage is touched. What ``python -m
    qgtools.search run`` calls.

    The study records the settings that make its trials comparable (the data's origin and jet
    count, the split seed, the space and ``max_epochs``) in its user attribute ``settings``
    when a run first meets it; a later run with other settings is refused (``ValueError``)
    unless ``allow_mismatch``.

    With ``population`` K > 1 each worker trains K trials at a time as one population
    (:func:`optimize_population`): one shape, drawn by the sampler, for ``TRIALS_PER_SHAPE`` x K
    trials, a new trial taking each place that a finished or pruned one frees. With ``seeds``
    S > 1 each trial's value is the mean over S training seeds (S members each). Both are
    recorded settings.

    Beyond the defaults (notebook 09): ``enqueue`` names configurations of
    ``KNOWN_CONFIGURATIONS`` to train first (a warm start, cpu space; queued once per study);
    ``max_flops`` makes a FLOPs-per-jet budget a constraint (a recorded setting; the best trial
    is the best feasible one); ``keep_models`` stores each complete trial's model in
    ``artifact_dir`` (default :func:`artifacts_beside` the storage); ``patience`` stops the
    study early, when that many finished trials in a row have not improved the best value by
    more than ``noise`` (given, or with ``seeds`` > 1 measured, see :func:`rule_noise`), never
    within the sampler's random start-up (``qgtools.stopping.stop_point``'s ``startup``:
    ``TPE_STARTUP_TRIALS`` for TPE and the GP, 0 for random search).

    Returns:
        A :class:`StudySummary`; ``status`` says whether the budget was met.
    """
    if min(n_trials, workers, max_epochs, population, seeds) < 1:
        raise ValueError(
            f"n_trials={n_trials}, workers={workers}, max_epochs={max_epochs}, "
            f"population={population} and seeds={seeds} must be positive."
        )
    if seed < 0:
        raise ValueError(f"seed={seed}: use a seed of 0 or more.")
    if space not in SPACES:
        raise ValueError(f"Unknown space {space!r}: use one of {sorted(SPACES)}.")
    make_pruner(pruner)  # unknown names fail here, not in every worker
    make_sampler(sampler, seed)
    if enqueue and space != "cpu":
        raise ValueError(f"enqueue={list(enqueue)}: the known configurations are cpu-space ones.")
    if population > 1 and (enqueue or max_flops is not None or keep_models):
        raise ValueError(
            "A population (population > 1) shares one shape per population: it takes no "
            "enqueued configurations, FLOPs budget or kept models. Run with population=1."
        )
    _check_known(enqueue)
    check_max_flops(max_flops)
    if patience is not None:
        if noise is None and seeds == 1:
            raise ValueError(
                f"patience={patience} needs the noise of a trial's value: give noise (--noise, "
                "the seed-to-seed spread of one configuration), or run with seeds > 1 "
                "(--seeds 3) to have it measured."
            )
        check_rule(patience, 0.0 if noise is None else noise)
    if isinstance(jets, bool) or not isinstance(jets, int) or jets == 0 or jets < -1:
        raise ValueError(f"jets={jets!r}: use -1 for all jets or a positive number of jets.")
    if "/" in study or "\\" in study or not study.strip():
        raise ValueError(
            f"Study name {study!r}: use a non-empty name without '/' or '\\' (the report "
            "names its plot files after the study)."
        )
    url = storage_url(storage)  # resolved once: the workers get it as it is
    if _in_memory(url):
        raise ValueError(
            f"Storage {_mask(url)!r} is an in-memory database, which the worker processes "
            "cannot share: use a file (sqlite:///studies.db) or a journal (studies.journal)."
        )
    loaded = load(num_data=jets, source=data)  # bad data fails here once, not in every worker
    settings = {
        "data": loaded.origin,
        "jets": len(loaded),
        "split_seed": SPLIT_SEED,
        "space": space,
        "max_epochs": max_epochs,
        "population": population,
        "seeds": seeds,
        "max_flops": max_flops,
    }
    del loaded  # each worker loads its own copy
    opened = open_storage(url)
    the_study = optuna.create_study(
        study_name=study,
        storage=opened,
        load_if_exists=True,
        direction="maximize",
        sampler=make_sampler(sampler, seed),
        pruner=make_pruner(pruner),
    )
    _check_settings(the_study, settings, allow_mismatch)
    artifacts = None
    if keep_models:
        artifacts = str(artifact_dir if artifact_dir is not None else artifacts_beside(url))
        artifact_store(artifacts)  # a bad folder fails here, not in every worker
    enqueue_known(the_study, enqueue)
    recovered = fail_dead_workers_trials(the_study, opened)
    if os.environ.get("SLURM_JOB_ID"):  # a task of a job array: others may have been killed
        recovered += fail_ended_slurm_trials(the_study, opened)
    job = _Job(
        study=study,
        storage=url,
        n_trials=n_trials,
        data=str(data),
        jets=jets,
        space=space,
        sampler=sampler,
        pruner=pruner,
        max_epochs=max_epochs,
        seed=seed,
        expected_data=(settings["data"], settings["jets"]),
        population=population,
        seeds=seeds,
        max_flops=max_flops,
        artifacts=artifacts,
        patience=patience,
        noise=noise,
    )
    codes: list[int | None] = []
    if count_finished(the_study) < n_trials and not _rule_says_stop(the_study, job):
        codes = _run_workers(the_study, opened, job, workers, progress)
    finished = count_finished(the_study)
    failed = the_study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    best = _best_trial(the_study)
    if FAILING_EXIT_CODE in codes:
        status = "failing"
    elif finished >= n_trials:
        status = "done"
    else:
        status = "stopped" if _rule_says_stop(the_study, job) else "incomplete"
    best_model = None
    if best is not None and artifacts and "model_artifact" in best.user_attrs:
        best_model = str(model_file(best, artifacts))
    return StudySummary(
        study=study,
        n_trials=n_trials,
        finished=finished,
        status=status,
        best_number=best.number if best else None,
        best_value=best.value if best else None,
        best_params=dict(best.params) if best else {},
        recovered=tuple(recovered),
        exit_codes=tuple(codes),
        last_fail_reason=failed[-1].user_attrs.get("fail_reason") if failed else None,
        best_model=best_model,
    )


@dataclass(frozen=True)
class StudyPlan:
    """One study of :func:`run_studies`: trained in one process, one trial after another, so it
    is the same study on every run (notebook 09).

    Attributes:
        name: the study's name in the storage.
        n_trials: trials to run.
        max_epochs: epochs per trial.
        sampler, seed: :func:`make_sampler`'s name and seed.
        space: a name of ``SPACES``.
        pruner: :func:`make_pruner`'s name.
        metric: a metric name, or a tuple of them for a multi-objective study.
        enqueue: names of ``KNOWN_CONFIGURATIONS`` to train first.
        max_flops: a FLOPs-per-jet budget as a constraint, or ``None``.
        keep_models: store each complete trial's model beside the storage.
    """

    name: str
    n_trials: int
    max_epochs: int
    sampler: str = "tpe"
    seed: int = 0
    space: str = "cpu"
    pruner: str = "median"
    metric: str | tuple[str, ...] = "val_rejection"
    enqueue: tuple[str, ...] = ()
    max_flops: float | None = None
    keep_models: bool = False


_POOL_DATA: dict[str, JetData] = {}  # the data each run_studies process loaded once


def _load_for_pool(data: str, jets: int) -> None:
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", DataSourceWarning)  # the caller has said it once
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    _POOL_DATA["jets"] = load(num_data=jets, source=data)


def _run_plan(plan: StudyPlan, storage: str) -> float:
    """Run one plan in a :func:`run_studies` process; returns its seconds."""
    start = time.perf_counter()
    single = isinstance(plan.metric, str)
    study = optuna.create_study(
        study_name=plan.name,
        storage=open_storage(storage),
        directions=directions(plan.metric),
        sampler=make_sampler(plan.sampler, plan.seed),
        pruner=make_pruner(plan.pruner if single else "none"),
    )
    enqueue_known(study, plan.enqueue)
    artifacts = artifact_store(artifacts_beside(storage)) if plan.keep_models else None
    objective = make_objective(
        _POOL_DATA["jets"],
        plan.space,
        plan.max_epochs,
        metric=plan.metric,
        num_threads=1,
        max_flops=plan.max_flops,
        artifacts=artifacts,
    )
    study.optimize(objective, n_trials=plan.n_trials)
    return time.perf_counter() - start


def run_studies(
    plans: Sequence[StudyPlan],
    *,
    storage: str | os.PathLike,
    data: str | os.PathLike = "auto",
    jets: int = -1,
    processes: int = 2,
) -> dict[str, optuna.Study]:
    """Run several whole studies side by side in ``processes`` processes (each loads the data
    once and trains with one torch thread), into one storage file; notebook 09's repeats.

    Each study runs in one process, trial after trial, with its own seeded sampler, so it is
    the same study whatever else runs (only times differ). Kept models go
    :func:`artifacts_beside` the storage. Plans are started in the order given.

    Returns:
        The studies by name, loaded from the storage, each with its plan's sampler (so it can
        be asked for more), and the seconds each took in the user attribute ``seconds``.

    Raises:
        ValueError: repeated or existing study names, or a plan with a bad value, before any
            process starts.
    """
    names = [plan.name for plan in plans]
    if len(set(names)) != len(names):
        raise ValueError(f"Study names repeat in {names}: give each plan its own name.")
    url = storage_url(storage)
    if _in_memory(url):
        raise ValueError("run_studies needs a storage file the processes share, not memory.")
    existing = set(optuna.get_all_study_names(open_storage(url)))
    if existing & set(names):
        raise ValueError(
            f"The storage already holds {sorted(existing & set(names))}: use a fresh storage "
            "or other names."
        )
    for plan in plans:
        make_sampler(plan.sampler, plan.seed)
        make_pruner(plan.pruner)
        directions(plan.metric)
        check_max_flops(plan.max_flops)
        if plan.space not in SPACES or min(plan.n_trials, plan.max_epochs) < 1:
            raise ValueError(f"{plan}: use a space of {sorted(SPACES)} and positive sizes.")
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes, initializer=_load_for_pool, initargs=(str(data), jets)) as pool:
        seconds = pool.starmap(_run_plan, [(plan, url) for plan in plans], chunksize=1)
    studies = {}
    for plan, spent in zip(plans, seconds, strict=True):
        study = optuna.load_study(
            study_name=plan.name,
            storage=open_storage(url),
            sampler=make_sampler(plan.sampler, plan.seed),
        )
        study.set_user_attr("seconds", round(spent, 2))
        studies[plan.name] = study
    return studies


def importance_spread(studies: Sequence[optuna.Study]) -> dict[str, np.ndarray]:
    """Optuna's hyperparameter importances (PED-ANOVA, Optuna 5's default) of each study, one
    array per parameter, one value per study (0 where a study's importances leave it out), the
    parameters ordered by their mean importance. Notebook 09: which rankings survive repeats.

    Raises:
        ValueError: a study with fewer than ``MIN_TRIALS_FOR_IMPORTANCES`` complete trials.
    """
    per_study = []
    for study in studies:
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        skipped = importances_skipped(len(complete))
        if skipped:
            raise ValueError(f"Study {study.study_name!r}: {skipped}.")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            per_study.append(optuna.importance.get_param_importances(study))
    params = {name for importances in per_study for name in importances}
    table = {
        name: np.array([importances.get(name, 0.0) for importances in per_study]) for name in params
    }
    return dict(sorted(table.items(), key=lambda item: -item[1].mean()))


def _best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best complete trial, feasible if the study has constraints (``study.best_trial``);
    ``None`` when there is no complete (or no feasible) trial."""
    try:
        return study.best_trial
    except ValueError:
        return None


SETTING_DEFAULTS = {"population": 1, "seeds": 1, "max_flops": None}
"""Settings a study recorded before they existed had these values."""


def _check_settings(study: optuna.Study, settings: dict, allow_mismatch: bool) -> None:
    """Record ``settings`` on a study that has none; refuse other settings than the recorded."""
    recorded = study.user_attrs.get("settings")
    if recorded is None:
        study.set_user_attr("settings", settings)
        recorded = study.user_attrs["settings"]  # re-read: a run started at once may have won
    differ = [
        key for key in settings if recorded.get(key, SETTING_DEFAULTS.get(key)) != settings[key]
    ]
    if differ and not allow_mismatch:
        was = ", ".join(f"{key}={recorded.get(key)!r}" for key in differ)
        now = ", ".join(f"{key}={settings[key]!r}" for key in differ)
        raise ValueError(
            f"Study {study.study_name!r} was run with {was} but this run has {now}: the trials "
            "would not be comparable. Use the study's settings, another study name, or "
            "--allow-mismatch (allow_mismatch=True) to mix them anyway."
        )


def _run_workers(
    study: optuna.Study, storage: BaseStorage, job: _Job, workers: int, progress: bool
) -> list[int | None]:
    """Start the worker processes, follow them with a progress bar, return the exit codes of
    every process started (in start order).

    A worker killed by a signal (``kill -9``, the out-of-memory killer) has its trial failed and
    is replaced while the budget is not met, at most ``MAX_RESTARTS`` times per worker. Ctrl-C
    (SIGINT to this process, or to its process group as a terminal sends it; the workers
    ignore it) kills the workers, marks their running trials failed ("interrupted") and raises
    ``KeyboardInterrupt`` saying so. SIGKILL, not SIGTERM: Lightning catches SIGTERM and would
    end the epoch loop early, as if the trial had finished.
    """
    from tqdm.auto import tqdm

    context = multiprocessing.get_context("spawn")
    started: list[multiprocessing.process.BaseProcess] = []

    def start(index: int) -> multiprocessing.process.BaseProcess:
        process = context.Process(target=_worker, args=(index, job))
        with _sigint_ignored_by_children():
            process.start()
        started.append(process)
        return process

    restarts = [0] * workers
    before = {trial.number for trial in study.get_trials(deepcopy=False)}
    with _CtrlC() as ctrl_c:
        try:
            slots = [start(index) for index in range(workers)]
            with tqdm(
                total=job.n_trials,
                initial=count_finished(study),
                desc=f"trials of {job.study}",
                unit="trial",
                disable=not progress,
            ) as bar:
                while True:
                    ends = [process.exitcode for process in slots]  # reaps the killed ones
                    fail_dead_workers_trials(study, storage)
                    bar.update(count_finished(study) - bar.n)
                    for index, ended in enumerate(ends):
                        if ended is None or ended > 0 or restarts[index] >= MAX_RESTARTS:
                            continue  # running, or stopped by an error a new one would repeat
                        if _taken(study) < job.n_trials and not _rule_says_stop(study, job):
                            restarts[index] += 1
                            slots[index] = start(index)
                    if not any(process.is_alive() for process in slots):
                        fail_dead_workers_trials(study, storage)  # one killed after the check
                        fail_unclaimed_trials(
                            study, storage, before, "its worker stopped before claiming it"
                        )
                        break
                    ctrl_c.sleep(1.0)
        except BaseException as error:
            why = "Ctrl-C" if isinstance(error, KeyboardInterrupt) else type(error).__name__
            stopped = _stop(started, study, storage, f"interrupted ({why} on the run)", before)
            if not isinstance(error, KeyboardInterrupt):
                raise
            raise KeyboardInterrupt(
                f"stopped {stopped[0]} worker(s); marked failed the trials {stopped[1]} they "
                f"were running; the study has {count_finished(study)} of {job.n_trials} "
                "finished trials"
            ) from None
    return [process.exitcode for process in started]


def _stop(
    processes: list[multiprocessing.process.BaseProcess],
    study: optuna.Study,
    storage: BaseStorage,
    reason: str,
    before: set[int],
) -> tuple[int, list[int]]:
    """Kill the live ``processes``, then fail their running trials with ``reason`` (including
    one a worker created but had not yet claimed, see :func:`fail_unclaimed_trials`); returns
    how many were alive and the failed trial numbers."""
    alive = [process for process in processes if process.is_alive()]
    for process in alive:
        process.kill()
    for process in alive:
        process.join(timeout=30)
    failed = fail_dead_workers_trials(study, storage, {p.pid: reason for p in processes})
    failed += fail_unclaimed_trials(study, storage, before, reason)
    return len(alive), sorted(failed)


class _CtrlC:
    """While entered (in the main thread): Ctrl-C sets ``requested`` and ends ``sleep`` instead
    of raising wherever the code happens to be; a second Ctrl-C raises at once."""

    def __init__(self) -> None:
        self.requested = False
        self._installed = False
        self._previous = None

    def __enter__(self) -> _CtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._installed:
            previous = self._previous if self._previous is not None else signal.SIG_DFL
            signal.signal(signal.SIGINT, previous)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; raise ``KeyboardInterrupt`` if Ctrl-C came before or during it."""
        deadline = time.monotonic() + seconds
        while not self.requested and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.requested:
            raise KeyboardInterrupt


@contextmanager
def _sigint_ignored_by_children():
    """Processes started inside ignore SIGINT (an ignored signal stays ignored across exec, and
    Python then installs no KeyboardInterrupt for it), so that a Ctrl-C sent to the whole
    process group is handled by this process alone. SIGINT is blocked meanwhile, not lost."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler if handler is not None else signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def report(
    study: str,
    storage: str | os.PathLike | None = None,
    out: str | os.PathLike = "reports",
    artifact_dir: str | os.PathLike | None = None,
) -> list[Path]:
    """Print the best trials and write the plots as PNG files; returns their paths.

    The plots: the optimisation history, the hyperparameter importances (only from
    ``MIN_TRIALS_FOR_IMPORTANCES`` complete trials on; fewer are said in a line instead) and
    :func:`qgtools.plots.slice_plot` of every hyperparameter, with the objective's name on the
    y axes and fonts that stay readable at the PNG's own size. No contour plot: from a few trials
    in a space of many dimensions it interpolates where the sampler went, not the objective.

    Optuna's warnings about the plots (experimental API, parameters with one value in a small
    study) are silenced here only, not for the caller. A study that does not exist is a
    ``ValueError`` naming the studies there, and creates no file (no storage, no ``out``).
    When the best trial kept its model (``--keep-models``), says where it is (in
    ``artifact_dir``, by default beside the storage).
    """
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module="optuna")
            return _report(study, storage, out, artifact_dir)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _open_existing(study: str, storage: str | os.PathLike | None) -> BaseStorage:
    """The storage holding ``study``, or a ValueError; creates no file (a journal or SQLite file
    that does not exist is an error, not a new empty storage)."""
    url = storage_url(storage)
    path = _local_file(url)
    if path is not None and not path.is_file():
        raise ValueError(
            f"No study {study!r}: there is no storage file {path}. Check --storage (or "
            f"{STORAGE_VARIABLE}) and the working directory."
        )
    opened = open_storage(url)
    names = optuna.get_all_study_names(opened)
    if study not in names:
        raise ValueError(
            f"No study {study!r} in {_mask(url)}; it holds {sorted(names) or 'no study'}. "
            f"Check --study and --storage (or {STORAGE_VARIABLE})."
        )
    return opened


def _local_file(url: str) -> Path | None:
    """The file a journal path or a ``sqlite:///`` URL names; ``None`` for other storages (and
    for an in-memory SQLite database)."""
    if url.endswith(".journal"):
        return Path(url).expanduser()
    scheme, sep, rest = url.partition("://")
    if sep and scheme.split("+")[0] == "sqlite" and not _in_memory(url):
        return Path(rest[1:].split("?")[0]).expanduser()
    return None


def _in_memory(url: str) -> bool:
    """Whether ``url`` is an in-memory SQLite database (``sqlite://``, ``sqlite:///:memory:``)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] != "sqlite":
        return False
    name = rest[1:].split("?")[0] if rest.startswith("/") else rest.split("?")[0]
    return name in ("", ":memory:") or "mode=memory" in rest


def _report(
    study: str,
    storage: str | os.PathLike | None,
    out: str | os.PathLike,
    artifact_dir: str | os.PathLike | None = None,
) -> list[Path]:
    the_study = optuna.load_study(study_name=study, storage=_open_existing(study, storage))
    complete = the_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    states = {
        state.name: len(the_study.get_trials(deepcopy=False, states=(state,)))
        for state in TrialState
    }
    print(f"Study {study!r}: {states}")
    if not complete:
        print("No complete trial yet.")
        return []
    for trial in sorted(complete, key=lambda t: -t.values[0])[:5]:
        values = ", ".join(f"{v:.4g}" for v in trial.values)
        params = format_params(trial.params, indent=" " * 8)
        over = " (infeasible)" if any(v > 0 for v in trial.constraints.values()) else ""
        print(f"  #{trial.number:<4} value {values}{over} with\n{params}")
    _say_best_model(the_study, storage, artifact_dir)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    file_stem = re.sub(r"[/\\]", "_", study)  # a study made elsewhere may hold them
    written = []
    for name, draw in _report_plots(the_study, complete).items():
        path = folder / f"{file_stem}-{name}.png"
        if _save_plot(draw, path, name):
            written.append(path)
    return written


def _say_best_model(
    the_study: optuna.Study,
    storage: str | os.PathLike | None,
    artifact_dir: str | os.PathLike | None,
) -> None:
    """Print where the best trial's kept model is, if it kept one."""
    best = _best_trial(the_study) if len(the_study.directions) == 1 else None
    if best is None or "model_artifact" not in best.user_attrs:
        return
    try:
        folder = artifact_dir if artifact_dir is not None else artifacts_beside(storage)
        path = model_file(best, folder)
    except ValueError as error:
        print(f"Best trial #{best.number} kept a model, but: {error}")
        return
    size = path.stat().st_size / 1e6
    print(
        f"Best trial #{best.number}'s model: {path} ({size:.2f} MB); "
        "load it with qgtools.model.load_model(path)"
    )


MIN_TRIALS_FOR_IMPORTANCES = 8
"""Complete trials a study needs before its hyperparameter importances are drawn (notebook 05
and the report). Optuna estimates them from the trials alone (by default in Optuna 5 with
PED-ANOVA, which compares the best tenth of the trials with the rest): from fewer trials than
this, fewer than the cpu space has hyperparameters, the ranking is noise."""


def importances_skipped(n_complete: int) -> str | None:
    """Why importances are not drawn from ``n_complete`` complete trials; ``None`` when they are."""
    if n_complete >= MIN_TRIALS_FOR_IMPORTANCES:
        return None
    return (
        f"{n_complete} complete trials, fewer than {MIN_TRIALS_FOR_IMPORTANCES}: "
        "importances would be noise"
    )


def _report_plots(the_study: optuna.Study, complete: list[FrozenTrial]) -> dict[str, Callable]:
    """The report's plots by name, each a function that draws it on a new figure."""
    from matplotlib import ticker
    from optuna.visualization import matplotlib as ovm

    from qgtools import plots

    target = (lambda t: t.values[0]) if len(the_study.directions) > 1 else None
    target_name = _target_name(the_study)
    params = list(dict.fromkeys(name for trial in complete for name in trial.params))

    def history() -> None:
        ax = ovm.plot_optimization_history(the_study, target=target, target_name=target_name)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))

    def importances() -> None:
        skipped = importances_skipped(len(complete))
        if skipped:
            raise ValueError(skipped)
        ovm.plot_param_importances(the_study, target=target, target_name=target_name)

    return {
        "history": history,
        "importances": importances,
        "slice": lambda: plots.slice_plot(complete, params, target_name),
    }


def _target_name(the_study: optuna.Study) -> str:
    """The (first) objective's name for the plots' axes."""
    if the_study.metric_names:
        return the_study.metric_names[0]
    return "validation rejection" if "settings" in the_study.user_attrs else "objective value"


def _save_plot(draw: Callable[[], object], path: Path, name: str) -> bool:
    """Draw a plot with readable fonts and save it as ``path``; say so, or why it was skipped."""
    import matplotlib
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"font.size": 12, "figure.dpi": 100}):
        try:
            draw()
        except (ValueError, RuntimeError, ZeroDivisionError) as error:
            plt.close("all")
            print(f"  ({name} plot skipped: {error})")
            return False
        plt.gcf().savefig(path, dpi=100, bbox_inches="tight")
    plt.close("all")
    print(f"  wrote {path}")
    return True


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    defaults = sizes()
    parser = argparse.ArgumentParser(
        prog="python -m qgtools.search", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser(
        "run", help="run (or join, or top up) a study with W worker processes"
    )
    run_cmd.add_argument("--study", required=True)
    storage_help = (
        f"a .journal path or a database URL; default ${STORAGE_VARIABLE} if set (keeps a "
        f"password off the command line), else {DEFAULT_STORAGE}"
    )
    run_cmd.add_argument("--storage", default=None, help=storage_help)
    run_cmd.add_argument("--data", default="auto", help="auto, energyflow, sample or a .npz path")
    run_cmd.add_argument("--jets", type=int, default=defaults.n_jets, help="first n jets (-1: all)")
    run_cmd.add_argument("--space", choices=sorted(SPACES), default="cpu")
    run_cmd.add_argument("--sampler", choices=SAMPLERS, default="tpe")
    run_cmd.add_argument("--pruner", choices=["median", "hyperband", "none"], default="median")
    run_cmd.add_argument("--max-epochs", type=int, default=defaults.max_epochs)
    run_cmd.add_argument("--seed", type=int, default=0)
    run_cmd.add_argument(
        "--trials",
        type=int,
        default=defaults.n_trials,
        help="finished trials the study should have",
    )
    run_cmd.add_argument("--workers", type=int, default=1)
    run_cmd.add_argument(
        "--population",
        type=int,
        default=1,
        help="trials each worker trains at once, sharing one sampled shape (default 1)",
    )
    run_cmd.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="training seeds per trial; its value is their mean (default 1)",
    )
    run_cmd.add_argument(
        "--enqueue",
        action="append",
        choices=sorted(KNOWN_CONFIGURATIONS),
        default=[],
        help="train this known configuration first (a warm start; cpu space; repeatable)",
    )
    run_cmd.add_argument(
        "--max-flops",
        type=float,
        default=None,
        help="a budget of FLOPs per jet: the best trial is the best within it (a constraint)",
    )
    run_cmd.add_argument(
        "--keep-models",
        action="store_true",
        help="store each complete trial's model (in --artifact-dir, default <storage>.artifacts)",
    )
    run_cmd.add_argument("--artifact-dir", default=None, help="the folder for --keep-models")
    run_cmd.add_argument(
        "--patience",
        type=int,
        default=None,
        help="stop after N finished trials in a row that beat the best by no more than --noise",
    )
    run_cmd.add_argument(
        "--noise",
        type=float,
        default=None,
        help="the seed-to-seed spread of a trial's value (default with --seeds > 1: measured)",
    )
    run_cmd.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="run even if the study was run with other data, jets, space or max epochs",
    )
    report_cmd = commands.add_parser("report", help="print the best trials and write plots")
    report_cmd.add_argument("--study", required=True)
    report_cmd.add_argument("--storage", default=None, help=storage_help)
    report_cmd.add_argument("--out", default="reports")
    report_cmd.add_argument(
        "--artifact-dir", default=None, help="where the run kept its models (if not beside)"
    )
    proxy_cmd = commands.add_parser(
        "proxy", help="run Optuna's gRPC storage proxy in front of a database, until Ctrl-C"
    )
    proxy_cmd.add_argument(
        "--storage",
        default=None,
        help=f"the database URL; default ${STORAGE_VARIABLE} (keeps the password off the "
        "command line)",
    )
    proxy_cmd.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on: one only the cluster's nodes reach (the proxy has no "
        "authentication); default 127.0.0.1, this machine only",
    )
    proxy_cmd.add_argument("--port", type=int, default=PROXY_PORT)
    args = parser.parse_args(argv)
    try:
        if args.command == "proxy":
            serve_proxy(args.storage, args.host, args.port)
            return 0
        if args.command == "report":
            import matplotlib

            matplotlib.use("Agg")  # the command line draws no windows; notebooks keep their backend
            return 0 if report(args.study, args.storage, args.out, args.artifact_dir) else 1
        if min(args.trials, args.workers, args.max_epochs, args.population, args.seeds) < 1:
            parser.error(
                "--trials, --workers, --max-epochs, --population and --seeds must be positive"
            )
        summary = run_study(
            args.study,
            n_trials=args.trials,
            workers=args.workers,
            storage=args.storage,
            data=args.data,
            jets=args.jets,
            space=args.space,
            sampler=args.sampler,
            pruner=args.pruner,
            max_epochs=args.max_epochs,
            seed=args.seed,
            allow_mismatch=args.allow_mismatch,
            population=args.population,
            seeds=args.seeds,
            enqueue=args.enqueue,
            max_flops=args.max_flops,
            keep_models=args.keep_models,
            artifact_dir=args.artifact_dir,
            patience=args.patience,
            noise=args.noise,
        )
    except (ValueError, KeyError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        done = f"{error}; run the same command again to go on" if str(error) else "stopped"
        print(f"Interrupted: {done}.", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    if summary.recovered:
        print(f"Marked failed the trials {list(summary.recovered)} of workers that died mid-trial.")
    if not summary.exit_codes and summary.status == "done":
        print(
            f"Study {args.study!r} already has {summary.finished} finished trials "
            f"(budget {args.trials})."
        )
        return 0
    if summary.status == "failing":
        print(
            f"Stopped: {MAX_FAILS_IN_A_ROW} failed trials in a row; last reason: "
            f"{summary.last_fail_reason or '?'}",
            file=sys.stderr,
        )
        return FAILING_EXIT_CODE
    if summary.status == "stopped":
        print(
            f"Stopped by the rule: {args.patience} finished trials in a row without beating the "
            f"best by more than the noise ({summary.finished} of {args.trials} trials run)."
        )
    if summary.status == "incomplete":
        crashed = any(code is not None and code > 0 for code in summary.exit_codes)
        advice = (
            "A worker stopped with an error (shown above): fix it, then run the command again."
            if crashed
            else "Run the same command again to finish the budget."
        )
        print(
            f"Study {args.study!r} has {summary.finished} of {args.trials} finished trials; "
            f"workers exited with {list(summary.exit_codes)}. {advice}",
            file=sys.stderr,
        )
        return 1
    print(summary)
    if summary.best_model:
        print(f"Its model: {summary.best_model} (qgtools.model.load_model loads it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
