"""Hyperparameter search with Optuna: spaces, the objective, storages, parallel workers.

Explained in notebooks 05 (study, objective, pruning, storage) and 06 (workers, storages).

Command line::

    python -m qgtools.search run --study NAME --trials N --workers W [--storage URL] [--data SOURCE]
        [--space cpu|reference] [--sampler tpe|random] [--pruner median|hyperband|none]
        [--max-epochs E] [--seed S]
    python -m qgtools.search report --study NAME [--storage URL] [--out DIR]

Storage: the default is Optuna's journal file ``qg-studies.journal`` in the working directory
(safe for several processes on one machine); ``--storage`` takes any path ending in
``.journal`` or an Optuna RDB URL (``sqlite:///file.db``, ``postgresql://user@host/db``).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import re
import socket
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, Trial, TrialState

from qgtools.config import sizes
from qgtools.data import JetData, load
from qgtools.model import HParams
from qgtools.train import fit

DEFAULT_STORAGE = "qg-studies.journal"
SPLIT_SEED = 0  # every trial of every study is judged on the same split
MAX_FAILS_IN_A_ROW = 5
FAILING_EXIT_CODE = 3  # a worker's, and the command line's, after MAX_FAILS_IN_A_ROW
HEARTBEAT_S, GRACE_S = 10, 30
METRICS = {  # name: direction
    "val_rejection": "maximize",
    "val_auc": "maximize",
    "n_params": "minimize",
    "flops_per_jet": "minimize",
    "wall_time_s": "minimize",
}
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

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


SPACES: dict[str, Space] = {"reference": reference_space, "cpu": cpu_space}
"""The spaces by the names ``--space`` takes."""
reference = reference_space  # the old name, kept for compatibility
cpu = cpu_space  # the old name, kept for compatibility


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


def make_objective(
    data: JetData,
    space: Space | str,
    max_epochs: int,
    metric: str | Sequence[str] = "val_rejection",
    num_threads: int | None = None,
    split_seed: int = SPLIT_SEED,
) -> Callable[[Trial], object]:
    """An Optuna objective that trains one configuration from ``space``.

    Returns the trial's best validation rejection (or the tuple of ``metric`` values, for a
    multi-objective study, without pruning). Stores ``asdict(hparams)`` as the user
    attribute ``hparams`` and the worker's host and process as ``worker``. Prunes through
    Optuna's Lightning callback when single-objective. A diverged run returns NaN, so
    Optuna marks the trial failed and the study goes on; the reason is in ``fail_reason``.
    """
    from optuna_integration import PyTorchLightningPruningCallback

    space_fn = SPACES[space] if isinstance(space, str) else space
    names = [metric] if isinstance(metric, str) else list(metric)
    directions(names)

    def objective(trial: Trial):
        record_worker(trial)
        hparams = space_fn(trial).replace(max_epochs=max_epochs)
        trial.set_user_attr("hparams", asdict(hparams))
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
        values = {
            "val_rejection": result.best_val_rejection,
            "val_auc": result.best_val_auc,
            "n_params": result.n_params,
            "flops_per_jet": flops_per_jet(hparams),
            "wall_time_s": result.wall_time_s,
        }
        return values[names[0]] if len(names) == 1 else tuple(values[name] for name in names)

    return objective


# --------------------------------------------------------------------------- storages and studies


def _mask(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def open_storage(url: str | os.PathLike | None = None) -> BaseStorage:
    """The storage named by ``url``: a ``.journal`` path (default ``qg-studies.journal``) or an
    RDB URL.

    RDB storages get Optuna's heartbeat, so trials of dead workers are failed automatically.
    """
    url = str(url or DEFAULT_STORAGE)
    if url.endswith(".journal"):
        path = Path(url).expanduser()
        if not path.parent.is_dir():
            raise ValueError(
                f"Storage {url!r}: the folder {path.parent} does not exist; "
                "create it or pick another path."
            )
        return JournalStorage(JournalFileBackend(str(path)))
    if "://" not in url:
        raise ValueError(
            f"Storage {url!r} is neither a path ending in .journal nor a database URL "
            "(sqlite:///studies.db, postgresql://user:password@host/db)."
        )
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
        raise ValueError(
            f"Cannot open storage {_mask(url)}: {type(error).__name__}: "
            f"{str(error).splitlines()[0]}. Check the URL, the server and the credentials."
        ) from None


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


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """``"tpe"`` or ``"random"``, seeded."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"Unknown sampler {name!r}: use 'tpe' or 'random'.")


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
    """Note which host and process runs the trial, so a dead worker's trial can be failed."""
    import psutil

    pid = os.getpid()
    trial.set_user_attr(
        "worker",
        {"host": socket.gethostname(), "pid": pid, "started": psutil.Process(pid).create_time()},
    )


def _alive(worker: dict) -> bool:
    import psutil

    try:
        return abs(psutil.Process(worker["pid"]).create_time() - worker["started"]) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError):
        return False


def fail_dead_workers_trials(study: optuna.Study, storage: BaseStorage) -> list[int]:
    """Mark failed the running trials whose worker process on this host no longer exists.

    The journal storage has no heartbeat, so this is how it recovers from a killed worker.
    Trials of other hosts are left alone (their own runs recover them). ``storage`` is the one
    the study was opened with: Optuna's public ``Study`` cannot change a trial it did not ask
    for, but the public ``BaseStorage`` methods can, atomically (``set_trial_state_values``
    returns False when another process finished the trial first). Returns trial numbers.
    """
    host, failed = socket.gethostname(), []
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if worker and worker.get("host") == host and not _alive(worker):
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            reason = f"worker process {worker['pid']} on {host} died mid-trial"
            storage.set_trial_user_attr(trial_id, "fail_reason", reason)
            if storage.set_trial_state_values(trial_id, TrialState.FAIL):
                failed.append(trial.number)
    return failed


def count_finished(study: optuna.Study) -> int:
    """Complete and pruned trials (failed ones do not count toward the budget)."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


# --------------------------------------------------------------------------- running a study


@dataclass(frozen=True)
class _Job:
    """What every worker of one :func:`run_study` needs (picklable, for spawned processes)."""

    study: str
    storage: str | None
    n_trials: int
    data: str
    jets: int
    space: str
    sampler: str
    pruner: str
    max_epochs: int
    seed: int


@dataclass(frozen=True)
class StudySummary:
    """What :func:`run_study` leaves behind.

    Attributes:
        study: the study's name.
        n_trials: the budget (finished trials the study should have).
        finished: complete and pruned trials now in the study.
        status: ``"done"`` (budget met), ``"incomplete"`` (workers stopped early: run again) or
            ``"failing"`` (a worker stopped after ``MAX_FAILS_IN_A_ROW`` failed trials).
        best_number, best_value, best_params: the best trial so far (``None`` without one).
        recovered: trials of dead workers marked failed by this run.
        exit_codes: the workers' exit codes (empty when the budget was met already).
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

    def __str__(self) -> str:
        if self.best_value is None:
            return f"Study {self.study!r}: {self.finished} finished trials; no complete trial yet"
        return (
            f"Study {self.study!r}: {self.finished} finished trials; best #{self.best_number}: "
            f"validation rejection {self.best_value:.1f} with {self.best_params}"
        )


def _worker(index: int, job: _Job) -> None:
    """One worker process: one torch thread, sampler seeded ``seed + index``, trials until the
    budget is met."""
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load(num_data=job.jets, source=job.data)
    study = optuna.load_study(
        study_name=job.study,
        storage=open_storage(job.storage),
        sampler=make_sampler(job.sampler, job.seed + index),
        pruner=make_pruner(job.pruner),
    )
    objective = make_objective(data, job.space, job.max_epochs, num_threads=1)

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
        running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        if count_finished(study) + running >= job.n_trials:
            return
        study.optimize(
            recorded, n_trials=1, catch=(Exception,), callbacks=[lambda _, t: last.append(t)]
        )
        failed = last and last[-1].state == TrialState.FAIL
        fails_in_a_row = fails_in_a_row + 1 if failed else 0
        if fails_in_a_row >= MAX_FAILS_IN_A_ROW:
            sys.exit(FAILING_EXIT_CODE)


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
) -> StudySummary:
    """Create, join or top up a study and run it with ``workers`` processes until it has
    ``n_trials`` finished trials.

    Each worker is a spawned process with one torch thread that loads the data itself
    (``data``, first ``jets`` jets), trains configurations of ``space`` for ``max_epochs`` and
    samples with ``sampler`` seeded ``seed + worker index``. Trials of workers that died are
    marked failed (here and at the next run). What ``python -m qgtools.search run`` calls.

    Returns:
        A :class:`StudySummary`; ``status`` says whether the budget was met.
    """
    if n_trials < 1 or workers < 1 or max_epochs < 1:
        raise ValueError(
            f"n_trials={n_trials}, workers={workers} and max_epochs={max_epochs} must be positive."
        )
    if space not in SPACES:
        raise ValueError(f"Unknown space {space!r}: use one of {sorted(SPACES)}.")
    make_pruner(pruner)  # unknown names fail here, not in every worker
    storage = None if storage is None else str(storage)
    opened = open_storage(storage)
    the_study = optuna.create_study(
        study_name=study,
        storage=opened,
        load_if_exists=True,
        direction="maximize",
        sampler=make_sampler(sampler, seed),
        pruner=make_pruner(pruner),
    )
    recovered = fail_dead_workers_trials(the_study, opened)
    job = _Job(study, storage, n_trials, str(data), jets, space, sampler, pruner, max_epochs, seed)
    codes: list[int | None] = []
    if count_finished(the_study) < n_trials:
        codes = _run_workers(the_study, opened, job, workers, progress)
    finished = count_finished(the_study)
    failed = the_study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    complete = the_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = max(complete, key=lambda t: t.value) if complete else None
    if FAILING_EXIT_CODE in codes:
        status = "failing"
    else:
        status = "done" if finished >= n_trials else "incomplete"
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
    )


def _run_workers(
    study: optuna.Study, storage: BaseStorage, job: _Job, workers: int, progress: bool
) -> list[int | None]:
    """Start the worker processes, follow them with a progress bar, return their exit codes."""
    from tqdm.auto import tqdm

    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker, args=(i, job)) for i in range(workers)]
    for process in processes:
        process.start()
    done = count_finished(study)
    with tqdm(
        total=job.n_trials,
        initial=done,
        desc=f"trials of {job.study}",
        unit="trial",
        disable=not progress,
    ) as bar:
        while any(p.is_alive() for p in processes):
            time.sleep(1.0)
            fail_dead_workers_trials(study, storage)
            bar.update(count_finished(study) - bar.n)
        fail_dead_workers_trials(study, storage)  # a worker killed just before the last check
        bar.update(count_finished(study) - bar.n)
    return [p.exitcode for p in processes]


def report(
    study: str, storage: str | os.PathLike | None = None, out: str | os.PathLike = "reports"
) -> list[Path]:
    """Print the best trials and write the standard plots as PNG files; returns their paths.

    Optuna's warnings about the plots (experimental API, parameters with one value in a small
    study) are silenced here only, not for the caller.
    """
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module="optuna")
            return _report(study, storage, out)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _report(study: str, storage: str | os.PathLike | None, out: str | os.PathLike) -> list[Path]:
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    the_study = optuna.load_study(study_name=study, storage=open_storage(storage))
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
        print(f"  #{trial.number:<4} value {values:<16} {trial.params}")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    plots = {
        "history": ovm.plot_optimization_history,
        "importances": ovm.plot_param_importances,
        "slice": ovm.plot_slice,
        "contour": ovm.plot_contour,
    }
    multi = len(the_study.directions) > 1
    written = []
    for name, plot in plots.items():
        try:
            plot(the_study, target=(lambda t: t.values[0]) if multi else None)
        except (ValueError, RuntimeError, ZeroDivisionError) as error:
            print(f"  ({name} plot skipped: {error})")
            continue
        path = folder / f"{study}-{name}.png"
        plt.gcf().savefig(path, dpi=100, bbox_inches="tight")
        plt.close("all")
        print(f"  wrote {path}")
        written.append(path)
    return written


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
    run_cmd.add_argument("--storage", default=None, help=f"default {DEFAULT_STORAGE}")
    run_cmd.add_argument("--data", default="auto", help="auto, energyflow, sample or a .npz path")
    run_cmd.add_argument("--jets", type=int, default=defaults.n_jets, help="first n jets (-1: all)")
    run_cmd.add_argument("--space", choices=sorted(SPACES), default="cpu")
    run_cmd.add_argument("--sampler", choices=["tpe", "random"], default="tpe")
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
    report_cmd = commands.add_parser("report", help="print the best trials and write plots")
    report_cmd.add_argument("--study", required=True)
    report_cmd.add_argument("--storage", default=None)
    report_cmd.add_argument("--out", default="reports")
    args = parser.parse_args(argv)
    try:
        if args.command == "report":
            import matplotlib

            matplotlib.use("Agg")  # the command line draws no windows; notebooks keep their backend
            return 0 if report(args.study, args.storage, args.out) else 1
        if args.trials < 1 or args.workers < 1 or args.max_epochs < 1:
            parser.error("--trials, --workers and --max-epochs must be positive")
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
        )
    except (ValueError, KeyError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
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
    if summary.status == "incomplete":
        print(
            f"Study {args.study!r} has {summary.finished} of {args.trials} finished trials; "
            f"workers exited with {list(summary.exit_codes)}. "
            "Run the same command again to finish the budget.",
            file=sys.stderr,
        )
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
