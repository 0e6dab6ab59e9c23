"""The journal file: a partial last line trimmed, a broken line named."""

from __future__ import annotations

import re
import threading

import optuna
import pytest
from conftest import journal_with_trials, x_objective
from optuna.storages.journal import JournalFileSymlinkLock
from optuna.trial import TrialState

from qgtools import search

optuna.logging.set_verbosity(optuna.logging.WARNING)


CUT_SHORT = b'{"op_code":4,"worker_id":"w-1","study_id":0,"datetime_st'  # a write cut short


def test_a_partial_last_line_is_trimmed_with_a_backup_before_the_next_append(tmp_path, capfd):
    journal = tmp_path / "s.journal"
    good = journal_with_trials(journal)
    journal.write_bytes(good + CUT_SHORT)
    study = optuna.load_study(study_name="toy", storage=search.open_storage(journal))
    study.optimize(x_objective, n_trials=1)
    reloaded = optuna.load_study(study_name="toy", storage=search.open_storage(journal))
    assert [t.state for t in reloaded.trials] == [TrialState.COMPLETE] * 3
    assert journal.read_bytes().startswith(good) and CUT_SHORT not in journal.read_bytes()
    backups = list(tmp_path.glob("s.journal.bak-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == good + CUT_SHORT  # nothing lost
    said = [line for line in capfd.readouterr().err.splitlines() if str(journal) in line]
    assert len(said) == 1 and "partial last line" in said[0] and backups[0].name in said[0]


def test_the_repair_waits_for_optunas_journal_lock(tmp_path):
    journal = tmp_path / "s.journal"
    damaged = journal_with_trials(journal) + CUT_SHORT
    journal.write_bytes(damaged)
    study = optuna.load_study(study_name="toy", storage=search.open_storage(journal))
    lock = JournalFileSymlinkLock(str(journal))  # what another process's append holds
    lock.acquire()
    appender = threading.Thread(target=study.optimize, args=(x_objective,), kwargs={"n_trials": 1})
    try:
        appender.start()
        appender.join(timeout=1.0)
        assert appender.is_alive() and journal.read_bytes() == damaged  # it waits, untouched
    finally:
        lock.release()
    appender.join(timeout=60)
    assert not appender.is_alive()
    reloaded = optuna.load_study(study_name="toy", storage=search.open_storage(journal))
    assert len(reloaded.trials) == 3


def test_garbage_inside_a_journal_is_an_error_naming_the_file_and_line(tmp_path):
    journal = tmp_path / "s.journal"
    lines = journal_with_trials(journal).splitlines(keepends=True)
    damaged = b"".join(lines[:3] + [b"\x00\x00garbage\n"] + lines[3:])
    journal.write_bytes(damaged)
    with pytest.raises(ValueError, match=re.escape(f"{journal}") + r".* line 4\b") as info:
        search.open_storage(journal)
    message = str(info.value)
    assert "\n" not in message and "backup" in message
    assert journal.read_bytes() == damaged  # an error, not a repair: the file is left as it was
