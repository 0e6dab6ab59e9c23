"""The cluster path, measured: trials per minute of the SLURM job array with 1, 2 and 4 tasks,
and 8 workers through Optuna's gRPC proxy against 8 straight to PostgreSQL, with the number of
database connections each holds.

Usage: python bench/cluster.py [--postgres URL] [--parts slurm,proxy] [--tasks 1,2,4]
           [--workers 8] [--trials 16] [--max-epochs 2] [--jets 20000] [--repeats 2]

Every run is a fresh study (a new name; nothing is deleted) of the same workload: the shipped
offline sample (``--data sample``, our regeneration, not the EnergyFlow file), its first
``--jets`` jets, the cpu space with the random sampler and no pruner, seed 0. The sampler is
seeded from the seed and each trial's number, so every run trains the same configurations:
runs differ in how the trials are spread over processes only.

- ``slurm``: ``sbatch --array=0-(T-1) scripts/slurm_search.sh`` for each T of ``--tasks``,
  straight to PostgreSQL. Needs a running SLURM (``sudo scripts/slurm_cluster.sh start``;
  ``SLURM_CONF`` exported). Times the whole array (submit until squeue, asked every 0.25 s, no
  longer lists it) and the span from the first trial's start to the last trial's end.
- ``proxy``: ``python -m qgtools.search run --workers W`` straight to PostgreSQL and through a
  proxy (``python -m qgtools.search proxy``) in front of it. A thread counts the database's
  client connections (``pg_stat_activity``, less its own) every 0.2 s; the peak is printed.

The repeats alternate the order of the runs. On a machine with fewer cores than tasks or
workers, the figures show the shape of the scaling, not a cluster's. PostgreSQL from
``--postgres`` or ``$QG_BENCH_POSTGRES_URL``: not the tests' database, whose schema every
PostgreSQL test drops. The URL goes to the processes through ``QG_STORAGE``, never their command
lines. Prints measured figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import optuna

from qgtools import search
from qgtools.search.storage import _with_installed_driver
from qgtools.stopping import FINISHED

ROOT = Path(__file__).resolve().parents[1]
DATA_SAID = "the shipped offline sample (our regeneration, not the EnergyFlow file)"


def study_settings(args: argparse.Namespace) -> list[str]:
    """The workload's options, the data's aside (the array script takes it from QG_DATA)."""
    return [
        "--jets", str(args.jets), "--space", "cpu",
        "--sampler", "random", "--pruner", "none", "--seed", "0",
    ]  # fmt: skip


def finished_trials(study: str, url: str) -> list[optuna.trial.FrozenTrial]:
    loaded = optuna.load_study(study_name=study, storage=search.open_storage(url))
    return loaded.get_trials(deepcopy=False, states=FINISHED)


def span_minutes(trials: list[optuna.trial.FrozenTrial]) -> float:
    start = min(t.datetime_start for t in trials)
    end = max(t.datetime_complete for t in trials)
    return (end - start).total_seconds() / 60


class ConnectionCounter(threading.Thread):
    """Counts the database's client connections (less its own) until stopped; keeps the peak."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        import sqlalchemy

        self._engine = sqlalchemy.create_engine(_with_installed_driver(url))
        self._query = sqlalchemy.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        self._done = threading.Event()
        self.peak = 0

    def count(self) -> int:
        with self._engine.connect() as connection:
            return int(connection.execute(self._query).scalar())

    def run(self) -> None:
        while not self._done.wait(0.2):
            self.peak = max(self.peak, self.count())

    def stop(self) -> int:
        self._done.set()
        self.join()
        self._engine.dispose()
        return self.peak


def slurm_run(args: argparse.Namespace, tasks: int, name: str, logs: Path) -> dict:
    env = {
        **os.environ,
        "QG_STORAGE": args.postgres,
        "QG_PYTHON": sys.executable,
        "QG_DATA": "sample",
        "QG_TRIALS": str(args.trials),
        "QG_EPOCHS": str(args.max_epochs),
        "QG_STUDY": name,
        "QG_LOGS": str(logs),
    }
    start = time.monotonic()
    out = subprocess.run(
        ["sbatch", "--parsable", f"--array=0-{tasks - 1}"]
        + [str(ROOT / "scripts" / "slurm_search.sh"), *study_settings(args)],
        env=env,
        cwd=logs,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"sbatch failed: {out.stdout}{out.stderr}")
    job = out.stdout.strip().split(";")[0]
    while subprocess.run(  # sbatch --wait polls at growing intervals: too coarse a clock
        ["squeue", "--noheader", "--jobs", job], capture_output=True, text=True
    ).stdout.strip():
        time.sleep(0.25)
    wall = (time.monotonic() - start) / 60
    logged = {log.name: log.read_text() for log in logs.glob(f"*-{job}_*.out")}
    if len(logged) != tasks or any("Traceback" in t or "Error" in t for t in logged.values()):
        tails = "".join(f"\n{name}: ...{text[-600:]}" for name, text in logged.items())
        raise SystemExit(f"a task of job {job} failed:{tails}")
    done = finished_trials(name, args.postgres)
    tasks_used = {t.user_attrs["slurm"]["array_task_id"] for t in done}
    return {"finished": len(done), "wall": wall, "span": span_minutes(done), "used": tasks_used}


def proxy_run(args: argparse.Namespace, through_proxy: bool, name: str, folder: Path) -> dict:
    proxy = None
    url = args.postgres
    counter = ConnectionCounter(args.postgres)
    baseline = counter.count()
    if through_proxy:
        port = 13000 + os.getpid() % 1000
        proxy = subprocess.Popen(
            [sys.executable, "-m", "qgtools.search", "proxy", "--port", str(port)],
            env={**os.environ, "QG_STORAGE": args.postgres},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"grpc://127.0.0.1:{port}"
        search.open_storage(url)  # waits until it answers
    counter.start()
    start = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "qgtools.search", "run", "--study", name, "--trials",
         str(args.trials), "--max-epochs", str(args.max_epochs), "--workers", str(args.workers)]
        + ["--data", "sample", *study_settings(args)],
        env={**os.environ, "QG_STORAGE": url},
        cwd=folder,
        capture_output=True,
        text=True,
    )  # fmt: skip
    wall = (time.monotonic() - start) / 60
    peak = counter.stop() - baseline
    if proxy is not None:
        proxy.terminate()
        proxy.wait(timeout=60)
    if out.returncode != 0:
        raise SystemExit(f"the run failed: {out.stdout}{out.stderr}")
    done = finished_trials(name, args.postgres)
    return {"finished": len(done), "wall": wall, "span": span_minutes(done), "connections": peak}


def summary(values: list[float]) -> str:
    array = np.asarray(values, dtype=float)
    spread = f" ± {array.std(ddof=1):.2f}" if len(array) > 1 else ""
    return f"{array.mean():.2f}{spread}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("QG_BENCH_POSTGRES_URL"))
    parser.add_argument("--parts", default="slurm,proxy")
    parser.add_argument("--tasks", default="1,2,4")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--max-epochs", type=int, default=2)
    parser.add_argument("--jets", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if not args.postgres:
        raise SystemExit("Give a PostgreSQL URL (--postgres or QG_BENCH_POSTGRES_URL).")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    parts = args.parts.split(",")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    print(
        f"Data: {DATA_SAID}, first {args.jets} jets; cpu space, random sampler, no pruner, "
        f"{args.max_epochs} epochs, budget {args.trials} trials; {os.cpu_count()} cores."
    )
    with tempfile.TemporaryDirectory(prefix="qg-bench-cluster-") as tmp:
        folder = Path(tmp)
        if "slurm" in parts:
            counts = [int(t) for t in args.tasks.split(",")]
            results: dict[int, list[dict]] = {t: [] for t in counts}
            for repeat in range(args.repeats):
                for tasks in counts if repeat % 2 == 0 else counts[::-1]:
                    name = f"bench-slurm-{stamp}-{tasks}-{repeat}"
                    run = slurm_run(args, tasks, name, folder)
                    results[tasks].append(run)
                    print(
                        f"  slurm {tasks} task(s), repeat {repeat}: {run['finished']} trials in "
                        f"{run['wall']:.2f} min (trials from tasks {sorted(run['used'])})",
                        flush=True,
                    )
            print("\nSLURM job array (mean ± std over repeats)")
            print(f"{'tasks':>5} {'trials/min, whole array':>24} {'first to last trial':>20}")
            for tasks, runs in results.items():
                whole = summary([r["finished"] / r["wall"] for r in runs])
                span = summary([r["finished"] / r["span"] for r in runs])
                print(f"{tasks:>5} {whole:>24} {span:>20}")
        if "proxy" in parts:
            modes = {"straight to PostgreSQL": False, "through the gRPC proxy": True}
            found: dict[str, list[dict]] = {mode: [] for mode in modes}
            for repeat in range(args.repeats):
                order = list(modes) if repeat % 2 == 0 else list(modes)[::-1]
                for mode in order:
                    name = f"bench-proxy-{stamp}-{modes[mode]}-{repeat}"
                    run = proxy_run(args, modes[mode], name, folder)
                    found[mode].append(run)
                    print(
                        f"  {args.workers} workers {mode}, repeat {repeat}: {run['finished']} "
                        f"trials in {run['wall']:.2f} min, peak {run['connections']} connections",
                        flush=True,
                    )
            print(f"\n{args.workers} worker processes (mean ± std over repeats)")
            print(f"{'storage':<24} {'trials/min':>12} {'peak DB connections':>20}")
            for mode, runs in found.items():
                rate = summary([r["finished"] / r["wall"] for r in runs])
                peak = max(r["connections"] for r in runs)
                print(f"{mode:<24} {rate:>12} {peak:>20}")


if __name__ == "__main__":
    main()
