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
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

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
HEARTBEAT_S, GRACE_S = 10, 30
METRICS = {  # name: direction
    "val_rejection": "maximize", "val_auc": "maximize", "n_params": "minimize",
    "flops_per_jet": "minimize", "wall_time_s": "minimize",
}
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

Space = Callable[[Trial], HParams]


# --------------------------------------------------------------------------- search spaces


def reference(trial: Trial) -> HParams:
    """The reference sweep: input channels 2-45, 1-10 layers of 8-2048, LN/BN, ReLU/SiLU/Tanh,
    dropout 0.01-0.5, lr 1e-5-1e-1 (log), StepLR patience 4-25 and factor 0.1-0.5; batch 100, raw taus.

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


def cpu(trial: Trial) -> HParams:
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
        preprocessing=trial.suggest_categorical("preprocessing", ["none", "standardize", "log+standardize"]),
    )


SPACES: dict[str, Space] = {"reference": reference, "cpu": cpu}


def hparams_of(trial: FrozenTrial) -> HParams:
    """Rebuild a trial's configuration from its ``hparams`` user attribute."""
    return HParams(**trial.user_attrs["hparams"])


def flops_per_jet(hparams: HParams) -> int:
    """Multiply-adds x 2 of one forward pass (Linear layers; norms and activations left out)."""
    widths = [hparams.input_channels] + [hparams.n_channels] * hparams.n_layers + [1]
    return 2 * sum(a * b for a, b in zip(widths[:-1], widths[1:]))


# --------------------------------------------------------------------------- the objective


def directions(metric: str | Sequence[str]) -> list[str]:
    """Optuna directions for a metric name or a tuple of them."""
    names = [metric] if isinstance(metric, str) else list(metric)
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"Unknown metric(s) {unknown}: use any of {list(METRICS)}.")
    return [METRICS[name] for name in names]


def make_objective(data: JetData, space: Space | str, max_epochs: int, metric: str | Sequence[str] = "val_rejection",
                   num_threads: int | None = None, split_seed: int = SPLIT_SEED) -> Callable[[Trial], object]:
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
        callbacks = [PyTorchLightningPruningCallback(trial, monitor=names[0])] if len(names) == 1 else []
        result = fit(hparams, data, split_seed=split_seed, callbacks=callbacks, progress=False,
                     num_threads=num_threads)
        trial.set_user_attr("best_epoch", result.best_epoch)
        trial.set_user_attr("wall_time_s", round(result.wall_time_s, 2))
        trial.set_user_attr("n_params", result.n_params)
        if result.status != "ok":
            trial.set_user_attr("fail_reason", f"{result.status}: the loss went NaN at epoch {len(result.history)}")
            return math.nan if len(names) == 1 else tuple(math.nan for _ in names)
        values = {"val_rejection": result.best_val_rejection, "val_auc": result.best_val_auc,
                  "n_params": result.n_params, "flops_per_jet": flops_per_jet(hparams),
                  "wall_time_s": result.wall_time_s}
        return values[names[0]] if len(names) == 1 else tuple(values[name] for name in names)

    return objective


# --------------------------------------------------------------------------- storages and studies


def _mask(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def open_storage(url: str | os.PathLike | None = None) -> BaseStorage:
    """The storage named by ``url``: a ``.journal`` path (default ``qg-studies.journal``) or an RDB URL.

    RDB storages get Optuna's heartbeat, so trials of dead workers are failed automatically.
    """
    url = str(url or DEFAULT_STORAGE)
    if url.endswith(".journal"):
        path = Path(url).expanduser()
        if not path.parent.is_dir():
            raise ValueError(f"Storage {url!r}: the folder {path.parent} does not exist; create it or pick another path.")
        return JournalStorage(JournalFileBackend(str(path)))
    if "://" not in url:
        raise ValueError(f"Storage {url!r} is neither a path ending in .journal nor a database URL "
                         "(sqlite:///studies.db, postgresql://user:password@host/db).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the heartbeat's
            return RDBStorage(_with_installed_driver(url), heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                              engine_kwargs={"pool_pre_ping": True})
    except Exception as error:  # noqa: BLE001 - sqlalchemy and drivers raise many kinds
        raise ValueError(f"Cannot open storage {_mask(url)}: {type(error).__name__}: "
                         f"{str(error).splitlines()[0]}. Check the URL, the server and the credentials.") from None


def _with_installed_driver(url: str) -> str:
    """``postgresql://`` means psycopg 3 to SQLAlchemy 2.1; use psycopg2 (the pinned driver) when only it is there."""
    import importlib.util

    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
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
    trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": pid,
                                   "started": psutil.Process(pid).create_time()})


def _alive(worker: dict) -> bool:
    import psutil

    try:
        return abs(psutil.Process(worker["pid"]).create_time() - worker["started"]) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError):
        return False


def fail_dead_workers_trials(study: optuna.Study) -> list[int]:
    """Mark failed the running trials whose worker process on this host no longer exists.

    The journal storage has no heartbeat, so this is how it recovers from a killed worker.
    Trials of other hosts are left alone (their own runs recover them). Returns trial numbers.
    """
    host, failed = socket.gethostname(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if worker and worker.get("host") == host and not _alive(worker):
            study._storage.set_trial_user_attr(trial._trial_id, "fail_reason",
                                               f"worker process {worker['pid']} on {host} died mid-trial")
            if study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                failed.append(trial.number)
    return failed


def count_finished(study: optuna.Study) -> int:
    """Complete and pruned trials (failed ones do not count toward the budget)."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


# --------------------------------------------------------------------------- workers


def _worker(index: int, args: argparse.Namespace) -> None:
    """One worker process: one torch thread, sampler seeded ``seed + index``, trials until the budget is met."""
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load(num_data=args.jets, source=args.data)
    study = optuna.load_study(study_name=args.study, storage=open_storage(args.storage),
                              sampler=make_sampler(args.sampler, args.seed + index), pruner=make_pruner(args.pruner))
    objective = make_objective(data, args.space, args.max_epochs, num_threads=1)

    def recorded(trial: Trial):
        try:
            return objective(trial)
        except optuna.TrialPruned:
            raise
        except Exception as error:  # noqa: BLE001 - recorded, then Optuna marks the trial failed
            trial.set_user_attr("fail_reason", f"{type(error).__name__}: {error}")
            raise

    last: list[FrozenTrial] = []
    fails_in_a_row = 0
    while True:
        running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        if count_finished(study) + running >= args.trials:
            return
        study.optimize(recorded, n_trials=1, catch=(Exception,), callbacks=[lambda _, t: last.append(t)])
        fails_in_a_row = fails_in_a_row + 1 if last and last[-1].state == TrialState.FAIL else 0
        if fails_in_a_row >= MAX_FAILS_IN_A_ROW:
            sys.exit(3)


def run(args: argparse.Namespace) -> int:
    """``run``: create or join the study, start the workers, show progress; 0 when the budget is met."""
    from tqdm.auto import tqdm

    storage = open_storage(args.storage)
    study = optuna.create_study(study_name=args.study, storage=storage, load_if_exists=True,
                                direction="maximize", sampler=make_sampler(args.sampler, args.seed),
                                pruner=make_pruner(args.pruner))
    recovered = fail_dead_workers_trials(study)
    if recovered:
        print(f"Marked failed the trials {recovered} of workers that died mid-trial.")
    done = count_finished(study)
    if done >= args.trials:
        print(f"Study {args.study!r} already has {done} finished trials (budget {args.trials}).")
        return 0
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(i, args), daemon=False) for i in range(args.workers)]
    for process in workers:
        process.start()
    with tqdm(total=args.trials, initial=done, desc=f"trials of {args.study}", unit="trial") as bar:
        while any(p.is_alive() for p in workers):
            time.sleep(1.0)
            fail_dead_workers_trials(study)
            now = count_finished(study)
            bar.update(now - bar.n)
        fail_dead_workers_trials(study)  # a worker killed just before the last check
        bar.update(count_finished(study) - bar.n)
    codes = [p.exitcode for p in workers]
    finished = count_finished(study)
    if 3 in codes:
        reasons = [t.user_attrs.get("fail_reason", "?") for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))]
        print(f"Stopped: {MAX_FAILS_IN_A_ROW} failed trials in a row; last reason: {reasons[-1] if reasons else '?'}",
              file=sys.stderr)
        return 3
    if finished < args.trials:
        print(f"Study {args.study!r} has {finished} of {args.trials} finished trials; workers exited with {codes}. "
              "Run the same command again to finish the budget.", file=sys.stderr)
        return 1
    best = study.best_trial
    print(f"Study {args.study!r}: {finished} finished trials; best #{best.number}: validation rejection "
          f"{best.value:.1f} with {best.params}")
    return 0


def report(args: argparse.Namespace) -> int:
    """``report``: print the best trials and write the standard plots as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    study = optuna.load_study(study_name=args.study, storage=open_storage(args.storage))
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    states = {state.name: len(study.get_trials(deepcopy=False, states=(state,))) for state in TrialState}
    print(f"Study {args.study!r}: {states}")
    if not complete:
        print("No complete trial yet.")
        return 1
    top = sorted(complete, key=lambda t: -t.values[0])[:5]
    for trial in top:
        values = ", ".join(f"{v:.4g}" for v in trial.values)
        print(f"  #{trial.number:<4} value {values:<16} {trial.params}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plots = {"history": ovm.plot_optimization_history, "importances": ovm.plot_param_importances,
             "slice": ovm.plot_slice, "contour": ovm.plot_contour}
    for name, plot in plots.items():
        try:
            plot(study, target=(lambda t: t.values[0]) if len(study.directions) > 1 else None)
        except (ValueError, RuntimeError, ZeroDivisionError) as error:
            print(f"  ({name} plot skipped: {error})")
            continue
        plt.gcf().savefig(out / f"{args.study}-{name}.png", dpi=100, bbox_inches="tight")
        plt.close("all")
        print(f"  wrote {out / f'{args.study}-{name}.png'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    defaults = sizes()
    parser = argparse.ArgumentParser(prog="python -m qgtools.search", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser("run", help="run (or join, or top up) a study with W worker processes")
    run_cmd.add_argument("--study", required=True)
    run_cmd.add_argument("--storage", default=None, help=f"default {DEFAULT_STORAGE}")
    run_cmd.add_argument("--data", default="auto", help="auto, energyflow, sample or a .npz path")
    run_cmd.add_argument("--jets", type=int, default=defaults.n_jets, help="first n jets (-1: all)")
    run_cmd.add_argument("--space", choices=sorted(SPACES), default="cpu")
    run_cmd.add_argument("--sampler", choices=["tpe", "random"], default="tpe")
    run_cmd.add_argument("--pruner", choices=["median", "hyperband", "none"], default="median")
    run_cmd.add_argument("--max-epochs", type=int, default=defaults.max_epochs)
    run_cmd.add_argument("--seed", type=int, default=0)
    run_cmd.add_argument("--trials", type=int, default=defaults.n_trials, help="finished trials the study should have")
    run_cmd.add_argument("--workers", type=int, default=1)
    report_cmd = commands.add_parser("report", help="print the best trials and write plots")
    report_cmd.add_argument("--study", required=True)
    report_cmd.add_argument("--storage", default=None)
    report_cmd.add_argument("--out", default="reports")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            if args.trials < 1 or args.workers < 1 or args.max_epochs < 1:
                parser.error("--trials, --workers and --max-epochs must be positive")
            return run(args)
        return report(args)
    except (ValueError, KeyError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
