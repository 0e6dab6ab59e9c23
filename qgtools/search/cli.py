"""The command line, ``python -m qgtools.search run|report|ensemble|proxy``.

Explained in notebooks 05 (study, objective, pruning, storage) and 06 (workers, storages); the
ensemble of a study's top trials in notebook 07.

Command line::

    python -m qgtools.search run --study NAME --trials N --workers W [--storage URL] [--data SOURCE]
        [--space cpu|reference|continuous] [--sampler tpe|gp|random]
        [--pruner median|hyperband|none] [--max-epochs E] [--seed S] [--allow-mismatch]
        [--population K] [--seeds S] [--enqueue NAME ...] [--max-flops F]
        [--patience N [--noise X]] [--keep-models [--artifact-dir DIR]]
    python -m qgtools.search report --study NAME [--storage URL] [--out DIR] [--artifact-dir DIR]
    python -m qgtools.search ensemble --study NAME [--storage URL] [--artifact-dir DIR]
        (--top K | --choose) [--retrain] [--data SOURCE] [--out FILE]
    python -m qgtools.search proxy [--storage RDB-URL] [--host HOST] [--port PORT]

Notebook 09 explains ``--enqueue`` (warm start), ``--sampler gp``, ``--max-flops`` (a constraint),
``--patience`` (the stopping rule of :mod:`qgtools.stopping`) and ``--keep-models`` (Optuna's
artifact store).

Storage: ``--storage`` takes any path ending in ``.journal``, an Optuna RDB URL
(``sqlite:///file.db``, ``postgresql://user:password@host/db``) or ``grpc://host:port``, Optuna's
gRPC storage proxy that ``proxy`` starts in front of an RDB URL (one process holds the database
connections for hundreds of workers; docs/cluster.md). Without ``--storage``, the
environment variable ``QG_STORAGE`` names the storage (so a password stays out of the command
line and the process list: ``export QG_STORAGE=postgresql://...``); without both, Optuna's
journal file ``qg-studies.journal`` in the working directory (safe for several processes on one
machine).

``ensemble`` averages the models of the study's top K trials by validation rejection (``--choose``:
K of 1, 2, 3, 5 by the ensemble's validation rejection, ties to the smaller), kept by a run with
``--keep-models`` or, with ``--retrain``, trained again from the study's recorded settings
(``--data`` names the data its run was given); it prints the ensemble's validation rejection
beside the best trial's and saves it (``--out``, default ``<study>-ensemble.pt`` beside the
storage file) for :func:`qgtools.model.load_model`.

``run`` exits with 0 (budget met), 1 (workers stopped early), 2 (bad input, said in one line
before any worker starts), 3 (too many failed trials in a row) or 130 (Ctrl-C: the workers are
stopped and their running trials marked failed).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path

from qgtools.config import sizes
from qgtools.ensembles import ENSEMBLE_SIZES
from qgtools.errors import UsageError
from qgtools.model import save_model
from qgtools.population import ACCELERATORS
from qgtools.search.ensemble import top_trials_ensemble
from qgtools.search.proxy import serve_proxy
from qgtools.search.reporting import report
from qgtools.search.run import _run
from qgtools.search.samplers import PRUNERS, SAMPLERS
from qgtools.search.settings import StudySettings
from qgtools.search.spaces import KNOWN_CONFIGURATIONS, SPACES
from qgtools.search.storage import PROXY_PORT
from qgtools.search.summary import StudySummary
from qgtools.search.supervise import INTERRUPTED_EXIT_CODE
from qgtools.search.urls import DEFAULT_STORAGE, STORAGE_VARIABLE, _local_file, storage_url
from qgtools.search.workers import (
    FAILING_EXIT_CODE,
    MAX_FAILS_IN_A_ROW,
    STORAGE_LOST_EXIT_CODE,
)

_DESCRIPTION = (
    "Hyperparameter search with Optuna: spaces, the objective, storages, parallel workers."
)
"""The first line of ``--help``."""

_STORAGE_HELP = (
    f"a .journal path or a database URL; default ${STORAGE_VARIABLE} if set (keeps a "
    f"password off the command line), else {DEFAULT_STORAGE}"
)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring).

    Args:
        argv: the arguments after ``python -m qgtools.search``; ``None``: ``sys.argv[1:]``.

    Returns:
        The exit status: 0, 1 (workers stopped early; a report without complete trials), 2 (a
        ``ValueError``: bad input, said in one line), 3 (failing trials) or 130 (Ctrl-C). A
        programming error (``KeyError``, ``TypeError``, ...) is not bad input: it shows its
        traceback.
    """
    try:
        args = _parser().parse_args(argv)  # the defaults read QG_FAST, which may be bad input
        return args.take_action(args)
    except ValueError as error:  # the package's clear errors, UsageError among them
        print(f"Error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        done = f"{error}; run the same command again to go on" if str(error) else "stopped"
        print(f"Interrupted: {done}.", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE


def _parser() -> argparse.ArgumentParser:
    """The parser: one subcommand per entry of ``_COMMANDS``."""
    parser = argparse.ArgumentParser(prog="python -m qgtools.search", description=_DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (summary, add_options, take_action) in _COMMANDS.items():
        command = commands.add_parser(name, help=summary)
        add_options(command)
        command.set_defaults(take_action=take_action)
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """``run``'s options, each named as the :class:`StudySettings` field it fills."""
    defaults = sizes()
    parser.add_argument("--study", required=True)
    parser.add_argument("--storage", default=None, help=_STORAGE_HELP)
    parser.add_argument("--data", default="auto", help="auto, energyflow, sample or a .npz path")
    parser.add_argument("--jets", type=int, default=defaults.n_jets, help="first n jets (-1: all)")
    parser.add_argument("--space", choices=sorted(SPACES), default="cpu")
    parser.add_argument("--sampler", choices=SAMPLERS, default="tpe")
    parser.add_argument("--pruner", choices=list(PRUNERS), default="median")
    parser.add_argument("--max-epochs", type=int, default=defaults.max_epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--trials",
        dest="n_trials",
        metavar="TRIALS",
        type=int,
        default=defaults.n_trials,
        help="finished trials the study should have",
    )
    parser.add_argument("--workers", type=int, default=1)
    _add_beyond_defaults(parser)
    parser.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="run even if the study was run with other data, jets, space or max epochs",
    )


def _add_beyond_defaults(parser: argparse.ArgumentParser) -> None:
    """``run``'s options for populations, warm starts, budgets, kept models and the rule."""
    add = parser.add_argument
    add(
        "--population",
        type=int,
        default=1,
        help="trials each worker trains at once, sharing one sampled shape (default 1)",
    )
    add(
        "--seeds",
        type=int,
        default=1,
        help="training seeds per trial; its value is their mean (default 1)",
    )
    add(
        "--enqueue",
        action="append",
        choices=sorted(KNOWN_CONFIGURATIONS),
        default=[],
        help="train this known configuration first (a warm start; cpu space; repeatable)",
    )
    add(
        "--max-flops",
        type=float,
        default=None,
        help="a budget of FLOPs per jet: the best trial is the best within it (a constraint)",
    )
    add(
        "--keep-models",
        action="store_true",
        help="store each complete trial's model, with --seeds its seeds' ensemble (in "
        "--artifact-dir, default <storage>.artifacts)",
    )
    add("--artifact-dir", default=None, help="the folder for --keep-models")
    add(
        "--accelerator",
        choices=ACCELERATORS,
        default="auto",
        help="where the workers train: auto (a GPU if torch sees one; default), cpu, gpu or "
        "cuda; not recorded, so a study may mix CPU and GPU workers",
    )
    add(
        "--patience",
        type=int,
        default=None,
        help="stop after N finished trials in a row that beat the best by no more than --noise",
    )
    add(
        "--noise",
        type=float,
        default=None,
        help="the seed-to-seed spread of a trial's value (default with --seeds > 1: measured)",
    )


def _take_run(args: argparse.Namespace) -> int:
    """Run the study, then say how it ended; the exit status."""
    settings = StudySettings(
        **{field.name: getattr(args, field.name) for field in fields(StudySettings)}
    )
    return _said(_run(settings), settings)


def _said(summary: StudySummary, settings: StudySettings) -> int:
    """Print how a run ended (on stderr when it fell short); the exit status."""
    study, budget = settings.study, settings.n_trials
    if summary.recovered:
        print(f"Marked failed the trials {list(summary.recovered)} of workers that died mid-trial.")
    if not summary.exit_codes and summary.status == "done":
        print(f"Study {study!r} already has {summary.finished} finished trials (budget {budget}).")
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
            f"Stopped by the rule: {settings.patience} finished trials in a row without beating "
            f"the best by more than the noise ({summary.finished} of {budget} trials run)."
        )
    if summary.status == "incomplete":
        advice = _advice(summary.exit_codes)
        print(
            f"Study {study!r} has {summary.finished} of {budget} finished trials; "
            f"workers exited with {list(summary.exit_codes)}. {advice}",
            file=sys.stderr,
        )
        return 1
    print(summary)
    if summary.best_model:
        print(f"Its model: {summary.best_model} (qgtools.model.load_model loads it)")
    return 0


def _advice(exit_codes: Sequence[int | None]) -> str:
    """What to do about a run that fell short, from its workers' exit codes."""
    if STORAGE_LOST_EXIT_CODE in exit_codes:
        return (
            "The storage stopped answering mid-run (a gRPC proxy killed or restarted?): start "
            "it again, then run the same command again."
        )
    if any(code is not None and code > 0 for code in exit_codes):
        return "A worker stopped with an error (shown above): fix it, then run the command again."
    return "Run the same command again to finish the budget."


def _add_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--study", required=True)
    parser.add_argument("--storage", default=None, help=_STORAGE_HELP)
    parser.add_argument("--out", default="reports")
    parser.add_argument(
        "--artifact-dir", default=None, help="where the run kept its models (if not beside)"
    )


def _take_report(args: argparse.Namespace) -> int:
    """Print the report and write its plots; 1 when there was nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")  # the command line draws no windows; notebooks keep their backend
    return 0 if report(args.study, args.storage, args.out, args.artifact_dir) else 1


def _add_ensemble_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--study", required=True)
    add("--storage", default=None, help=_STORAGE_HELP)
    add("--artifact-dir", default=None, help="where the run kept its models (if not beside)")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument(
        "--top", type=int, metavar="K", help="the top K trials by validation rejection"
    )
    size.add_argument(
        "--choose",
        action="store_true",
        help=f"K of {', '.join(map(str, ENSEMBLE_SIZES))} by the ensemble's validation "
        "rejection, ties to the smaller (then its value is optimistic)",
    )
    add(
        "--retrain",
        action="store_true",
        help="train the trials again from the study's recorded settings, not its kept models",
    )
    add(
        "--data",
        default="auto",
        help="the data the study's run was given, read for the validation values (and "
        "--retrain): auto, energyflow, sample or a .npz path",
    )
    add(
        "--out",
        default=None,
        help="the ensemble's file; default <study>-ensemble.pt beside the storage file (in the "
        "working directory for a database server)",
    )


def _take_ensemble(args: argparse.Namespace) -> int:
    """Build the ensemble, say its validation rejection beside the best trial's, save it."""
    out = Path(args.out) if args.out is not None else _ensemble_file(args.study, args.storage)
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder: name a file, say {out / 'ensemble.pt'}.")
    built = top_trials_ensemble(
        args.study,
        None if args.choose else args.top,
        storage=args.storage,
        artifact_dir=args.artifact_dir,
        retrain=args.retrain,
        data=args.data,
    )
    save_model(built.ensemble, out)
    print(built.lines())
    print(f"Saved it to {out} (qgtools.model.load_model loads it)")
    return 0


def _ensemble_file(study: str, storage: str | None) -> Path:
    """``<study>-ensemble.pt`` beside the storage file, or in the working directory."""
    file = _local_file(storage_url(storage))
    name = re.sub(r"[/\\]", "_", study) + "-ensemble.pt"  # a study made elsewhere may hold them
    return file.with_name(name) if file is not None else Path(name)


def _add_proxy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        default=None,
        help=f"the database URL; default ${STORAGE_VARIABLE} (keeps the password off the "
        "command line)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on: one only the cluster's nodes reach (the proxy has no "
        "authentication); default 127.0.0.1, this machine only",
    )
    parser.add_argument("--port", type=int, default=PROXY_PORT)


def _take_proxy(args: argparse.Namespace) -> int:
    """Serve the proxy until Ctrl-C or SIGTERM."""
    serve_proxy(args.storage, args.host, args.port)
    return 0


_COMMANDS: dict[str, tuple[str, Callable, Callable[[argparse.Namespace], int]]] = {
    "run": (
        "run (or join, or top up) a study with W worker processes",
        _add_run_options,
        _take_run,
    ),
    "report": ("print the best trials and write plots", _add_report_options, _take_report),
    "ensemble": (
        "average the top trials' models (kept, or trained again) and save the ensemble",
        _add_ensemble_options,
        _take_ensemble,
    ),
    "proxy": (
        "run Optuna's gRPC storage proxy in front of a database, until Ctrl-C",
        _add_proxy_options,
        _take_proxy,
    ),
}
"""Each subcommand: its help line, the function that adds its options, the one that runs it."""
