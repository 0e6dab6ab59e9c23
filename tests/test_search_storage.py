"""Opening storages: journals, databases and their errors, the table-creation race."""

from __future__ import annotations

import optuna
import pytest

from qgtools import search
from qgtools.search import storage as storage_module

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_storage_urls(tmp_path):
    assert isinstance(search.open_storage(tmp_path / "a.journal"), optuna.storages.JournalStorage)
    assert isinstance(search.open_storage(f"sqlite:///{tmp_path}/a.db"), optuna.storages.RDBStorage)
    with pytest.raises(ValueError, match="neither a path ending in .journal nor a database URL"):
        search.open_storage("studies.db")
    with pytest.raises(ValueError, match="the folder .*nowhere does not exist"):
        search.open_storage(tmp_path / "nowhere" / "a.journal")


def test_broken_database_url_is_a_clear_error_without_the_password():
    with pytest.raises(
        ValueError, match=r"Cannot open storage postgresql://qg:\*\*\*@127.0.0.1:9/studies"
    ) as info:
        search.open_storage("postgresql://qg:secret@127.0.0.1:9/studies")
    assert "secret" not in str(info.value)


def test_a_driver_error_that_shows_the_password_is_masked(monkeypatch):
    def talkative(url, **_):  # a driver that echoes what it was given
        raise RuntimeError(f"cannot connect with password=Xy7@Qk9 to {url} (Xy7%40Qk9)")

    monkeypatch.setattr(storage_module, "RDBStorage", talkative)
    with pytest.raises(ValueError, match="RuntimeError: cannot connect") as info:
        search.open_storage("postgresql://qg:Xy7%40Qk9@127.0.0.1:9/db")
    assert "Xy7" not in str(info.value) and "Qk9" not in str(info.value)


def _open_after(barrier, url: str, results) -> None:
    barrier.wait()
    try:
        search.open_storage(url)
        results.put("ok")
    except ValueError as error:
        results.put(str(error))


def test_tasks_that_open_a_fresh_database_at_once_all_get_it(postgres_url):
    # a job array's first tasks start together, and each creates Optuna's tables if missing
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(6), context.Queue()
    processes = [
        context.Process(target=_open_after, args=(barrier, postgres_url, results)) for _ in range(6)
    ]
    for process in processes:
        process.start()
    said = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert said == ["ok"] * 6, said
