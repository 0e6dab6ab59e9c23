"""Supervising the worker processes: a progress bar, replacing killed workers, and Ctrl-C."""

from __future__ import annotations

import multiprocessing
import signal
import threading
import time
from contextlib import contextmanager

import optuna
from optuna.storages import BaseStorage

from qgtools.search.recovery import (
    _taken,
    count_finished,
    fail_dead_workers_trials,
    fail_unclaimed_trials,
)
from qgtools.search.settings import StudySettings
from qgtools.search.storage import _storage_lost
from qgtools.search.urls import _mask
from qgtools.search.workers import _rule_says_stop, _worker

MAX_RESTARTS = 3  # a worker killed by a signal is replaced at most this often per run
INTERRUPTED_EXIT_CODE = 130  # the shell's for Ctrl-C


def _run_workers(
    study: optuna.Study,
    storage: BaseStorage,
    job: StudySettings,
    expected_data: tuple[str, int],
    progress: bool,
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
        process = context.Process(target=_worker, args=(index, job, expected_data))
        with _sigint_ignored_by_children():
            process.start()
        started.append(process)
        return process

    restarts = [0] * job.workers
    before = {trial.number for trial in study.get_trials(deepcopy=False)}
    with _CtrlC() as ctrl_c:
        try:
            slots = [start(index) for index in range(job.workers)]
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
            if _storage_lost(error):
                _kill(started)  # the storage cannot be told: the next run fails their trials
                raise ValueError(
                    f"The storage {_mask(job.storage)} stopped answering mid-run (a gRPC proxy "
                    "killed or restarted?): start it again (python -m qgtools.search proxy), "
                    "then run the same command again; the trials that were running are marked "
                    "failed then."
                ) from None
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
    alive = _kill(processes)
    failed = fail_dead_workers_trials(study, storage, {p.pid: reason for p in processes})
    failed += fail_unclaimed_trials(study, storage, before, reason)
    return len(alive), sorted(failed)


def _kill(
    processes: list[multiprocessing.process.BaseProcess],
) -> list[multiprocessing.process.BaseProcess]:
    """Kill the live ``processes`` and wait for them; returns those that were alive."""
    alive = [process for process in processes if process.is_alive()]
    for process in alive:
        process.kill()
    for process in alive:
        process.join(timeout=30)
    return alive


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
