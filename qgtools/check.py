"""``python -m qgtools.check``: an environment self-test that says in plain words what works.

Checks the on/off environment variables, the packages and their versions against the pinned
set, torch threads, which data ``load()`` gives here, and a one-epoch training run. Exits 1
if anything must be fixed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from qgtools.config import env_flag

# A copy of requirements.txt's pins for these packages (tests/test_environment.py compares).
PINNED = {
    "torch": "2.13.0",
    "lightning": "2.6.6",
    "optuna": "5.0.0",
    "optuna-integration": "5.0.0",
    "numpy": "1.26.4",
    "scikit-learn": "1.9.1",
    "scipy": "1.17.1",
    "matplotlib": "3.11.2",
    "ipywidgets": "8.1.9",
    "energyflow": "1.4.0",
    "jupyterlab": "4.6.6",
}


ENV_FLAGS = {"QG_OFFLINE": "no download", "QG_FAST": "fast mode"}
"""The on/off environment variables the notebooks read, and what each turns on."""


def check_environment() -> tuple[bool, str]:
    said, wrong = [], []
    for name, meaning in ENV_FLAGS.items():
        try:
            on = env_flag(name)
        except ValueError as error:
            wrong.append(str(error))
            continue
        if name in os.environ:
            said.append(f"{name}={os.environ[name]!r} ({'on: ' + meaning if on else 'off'})")
        else:
            said.append(f"{name} unset (off)")
    if wrong:
        return False, " ".join(wrong)
    return True, ", ".join(said)


def check_packages() -> tuple[bool, str]:
    missing, other = [], []
    for name, version in PINNED.items():
        try:
            got = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
            continue
        if got.split("+")[0] != version:
            other.append(f"{name} {got} (tested: {version})")
    if missing:
        return False, f"missing: {', '.join(missing)}. Fix: pip install -r requirements.txt"
    note = f"; different versions (may work): {', '.join(other)}" if other else ""
    return True, f"all {len(PINNED)} key packages import{note}"


def check_threads() -> tuple[bool, str]:
    import torch

    cores = os.cpu_count() or 1
    gpu = (
        f", GPU: {torch.cuda.get_device_name(0)}"
        if torch.cuda.is_available()
        else ", no GPU (fine: the series is CPU-sized)"
    )
    return (
        True,
        f"torch {torch.__version__} uses {torch.get_num_threads()} threads on {cores} cores{gpu}",
    )


def check_data() -> tuple[bool, str]:
    from qgtools import data

    try:
        env_flag("QG_OFFLINE")
    except ValueError:
        return False, "load() stops at QG_OFFLINE's value: fix it first (see environment above)"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        jets = data.load(timeout=10)
    if caught:
        return True, f"{jets.source}. {caught[0].message}"
    return True, f"{jets.source} (the real dataset)"


def check_training() -> tuple[bool, str]:
    from qgtools import data, model, train

    jets = data.load_sample().head(5000)
    start = time.perf_counter()
    result = train.fit(model.CPU_HPARAMS, jets, max_epochs=1, progress=False)
    seconds = time.perf_counter() - start
    ok = result.status == "ok" and result.best_val_rejection > 2
    return ok, (
        f"one epoch of a 3 x 64 MLP on 4,000 jets in {seconds:.1f} s, validation rejection "
        f"{result.best_val_rejection:.1f}" + ("" if ok else " (expected > 2: training is broken)")
    )


def check_writable() -> tuple[bool, str]:
    here = Path.cwd()
    if os.access(here, os.W_OK):
        return True, f"the working folder {here} is writable (studies are saved there)"
    return (
        False,
        f"cannot write to {here}: run from a folder you own (studies and plots are saved there)",
    )


CHECKS: dict[str, Callable[[], tuple[bool, str]]] = {
    "environment": check_environment,
    "packages": check_packages,
    "threads": check_threads,
    "data": check_data,
    "training": check_training,
    "folder": check_writable,
}


def main(argv: list[str] | tuple[str, ...] = ()) -> int:
    """Run every check, print one line each, and return 1 if any must be fixed."""
    argparse.ArgumentParser(
        prog="python -m qgtools.check",
        description="An environment self-test that says in plain words what works. Checks, in "
        f"order: {', '.join(CHECKS)}. Exits 1 if anything must be fixed.",
    ).parse_args(list(argv))
    failed = 0
    for name, check in CHECKS.items():
        try:
            ok, message = check()
        except Exception as error:  # noqa: BLE001 - report, never crash, in a self-test
            ok, message = False, f"{type(error).__name__}: {' '.join(str(error).split())}"
        failed += not ok
        print(f"[{'OK' if ok else 'FIX'}] {name:<9} {message}", flush=True)
    print(
        "All good: open the notebooks with `make lab`."
        if not failed
        else f"{failed} check(s) need fixing (see FIX)."
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
