"""Optuna's journal file, repaired before each append: a partial last line is trimmed (with a
backup), and a broken line inside is an error naming the line."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock


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
