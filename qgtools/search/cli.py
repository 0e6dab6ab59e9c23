"""The command line, ``python -m qgtools.search run|report|proxy``.

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
import sys
from collections.abc import Sequence

from qgtools.config import sizes
from qgtools.search.proxy import serve_proxy
from qgtools.search.reporting import report
from qgtools.search.run import run_study
from qgtools.search.samplers import PRUNERS, SAMPLERS
from qgtools.search.spaces import KNOWN_CONFIGURATIONS, SPACES
from qgtools.search.storage import PROXY_PORT
from qgtools.search.supervise import INTERRUPTED_EXIT_CODE
from qgtools.search.urls import DEFAULT_STORAGE, STORAGE_VARIABLE
from qgtools.search.workers import FAILING_EXIT_CODE, MAX_FAILS_IN_A_ROW

_DESCRIPTION = (
    "Hyperparameter search with Optuna: spaces, the objective, storages, parallel workers."
)
"""The first line of ``--help``."""


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    defaults = sizes()
    parser = argparse.ArgumentParser(prog="python -m qgtools.search", description=_DESCRIPTION)
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
    run_cmd.add_argument("--pruner", choices=list(PRUNERS), default="median")
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
