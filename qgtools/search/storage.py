"""Opening a storage: a journal file, a database (retrying the race to create Optuna's tables)
or a client of Optuna's gRPC storage proxy."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage

from qgtools.search.journal import _damaged_journal_error, _JournalFile
from qgtools.search.urls import (
    STORAGE_VARIABLE,
    _credentials,
    _local_file,
    _mask,
    _scrub,
    storage_url,
)

HEARTBEAT_S, GRACE_S = 10, 30  # RDBStorage's heartbeat and the grace before a trial fails
PROXY_PORT = 13000  # Optuna's default for its gRPC storage proxy
PROXY_WAIT_S = 10  # how long a worker waits for the proxy to answer
SCHEMA_RACE_RETRIES = 5
"""How often :func:`open_storage` tries again after losing the race to create Optuna's tables."""


def open_storage(url: str | os.PathLike | None = None) -> BaseStorage:
    """The storage named by ``url``: a ``.journal`` path, an RDB URL or a gRPC proxy
    (``grpc://host:port``); without one, the URL in the environment variable ``QG_STORAGE``,
    else ``qg-studies.journal``.

    RDB storages get Optuna's heartbeat, so trials of dead workers are failed automatically.
    Processes that open a fresh database at once (a job array's first tasks) race to create
    Optuna's tables; a loser tries again, up to ``SCHEMA_RACE_RETRIES`` times. The proxy has
    no heartbeat: a dead worker's trial is failed by its run on the same host, by
    the next run on that host (:func:`fail_dead_workers_trials`) or, under SLURM, by the next
    task (:func:`fail_ended_slurm_trials`).

    Args:
        url: a ``.journal`` path, an RDB URL or ``grpc://host:port``; ``None``:
            ``$QG_STORAGE``, else ``qg-studies.journal``.

    Returns:
        The storage.

    Raises:
        ValueError: a URL of no storage, a missing folder, a damaged journal, a database
            that cannot be opened or a proxy that does not answer, said without the password.
    """
    url = storage_url(url)
    if url.startswith("grpc://"):
        return _grpc_proxy(url)
    if url.endswith(".journal"):
        path = Path(url).expanduser()
        if not path.parent.is_dir():
            raise ValueError(
                f"Storage {url!r}: the folder {path.parent} does not exist; "
                "create it or pick another path."
            )
        try:
            return JournalStorage(_JournalFile(str(path)))
        except ValueError as error:  # json's errors and Optuna's "Invalid log format."
            raise _damaged_journal_error(path) or error from None
    if "://" not in url:
        raise ValueError(
            f"Storage {_mask(url)!r} is neither a path ending in .journal nor a database URL "
            "(sqlite:///studies.db, postgresql://user:password@host/db)."
        )
    parts = _credentials(url)
    if parts and parts[2] and "@" in parts[2]:
        raise ValueError(
            f"Storage {_mask(url)}: the password holds '@', which a URL reads as the end of the "
            "password; percent-encode it (@ as %40; urllib.parse.quote(password, safe='') "
            "encodes all)."
        )
    for attempt in range(SCHEMA_RACE_RETRIES + 1):
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
            if attempt < SCHEMA_RACE_RETRIES and _lost_the_schema_race(error):
                time.sleep(0.5 * (attempt + 1))  # the winner's tables are there next time
                continue
            said = _scrub(str(error).splitlines()[0] if str(error) else "", url)
            raise ValueError(
                f"Cannot open storage {_mask(url)}: {type(error).__name__}: {said}. "
                "Check the URL, the server and the credentials."
            ) from None
    raise AssertionError("unreachable")  # the loop returns or raises


def _lost_the_schema_race(error: Exception) -> bool:
    """Whether ``error`` is another process creating Optuna's tables in a fresh database at the
    same moment (a job array's first tasks start together): PostgreSQL's unique violation on its
    type catalogue, or a table that "already exists"."""
    import sqlalchemy.exc

    return isinstance(error, sqlalchemy.exc.IntegrityError) or (
        isinstance(error, sqlalchemy.exc.ProgrammingError) and "already exists" in str(error)
    )


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


def _proxy_address(url: str) -> tuple[str, int]:
    """``(host, port)`` of ``grpc://host:port``; a ValueError saying the form otherwise."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or parts.path not in ("", "/") or parts.username:
        raise ValueError(
            f"Storage {_mask(url)!r}: name a gRPC proxy as grpc://HOST:PORT "
            f"(grpc://127.0.0.1:{PROXY_PORT}); start one in front of a database with "
            "`python -m qgtools.search proxy`."
        )
    return parts.hostname, port


def _grpc_proxy(url: str) -> BaseStorage:
    """A client of the gRPC storage proxy at ``url``, once the proxy answers."""
    host, port = _proxy_address(url)
    try:
        from optuna.storages import GrpcStorageProxy

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            proxy = GrpcStorageProxy(host=host, port=port)
    except ImportError as error:
        raise ValueError(
            f"Storage {url}: the gRPC proxy needs grpcio and protobuf ({error}); "
            "pip install -r requirements.txt installs the pinned ones."
        ) from None
    try:
        proxy.wait_server_ready(timeout=PROXY_WAIT_S)
    except ConnectionError:
        proxy.close()
        raise ValueError(
            f"No gRPC storage proxy answers at {host}:{port} (waited {PROXY_WAIT_S} s): start "
            f"it (python -m qgtools.search proxy --host {host} --port {port}, with QG_STORAGE "
            "set to the database URL) or check the host and port."
        ) from None
    return proxy


def _storage_lost(error: BaseException) -> bool:
    """Whether ``error``, or one it was raised from, says a gRPC storage proxy stopped answering
    (a proxy killed or restarted mid-run)."""
    while error is not None:
        code = getattr(error, "code", None)
        if type(error).__module__.startswith("grpc") and callable(code):
            return getattr(code(), "name", "") in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
        error = error.__cause__ or error.__context__
    return False


def _open_existing(study: str, storage: str | os.PathLike | None) -> BaseStorage:
    """The storage holding ``study``, or a ValueError; creates no file (a journal or SQLite file
    that does not exist is an error, not a new empty storage)."""
    url = storage_url(storage)
    path = _local_file(url)
    if path is not None and not path.is_file():
        raise ValueError(
            f"No study {study!r}: there is no storage file {path}. Check --storage (or "
            f"{STORAGE_VARIABLE}) and the working directory."
        )
    opened = open_storage(url)
    names = optuna.get_all_study_names(opened)
    if study not in names:
        raise ValueError(
            f"No study {study!r} in {_mask(url)}; it holds {sorted(names) or 'no study'}. "
            f"Check --study and --storage (or {STORAGE_VARIABLE})."
        )
    return opened
