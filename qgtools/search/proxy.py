"""Optuna's gRPC storage proxy in front of a database (``python -m qgtools.search proxy``)."""

from __future__ import annotations

import errno
import os
import signal
import socket
import threading

import optuna

from qgtools.search.storage import PROXY_PORT, open_storage
from qgtools.search.urls import _in_memory, _mask, storage_url


def serve_proxy(
    storage: str | os.PathLike | None = None,
    host: str = "127.0.0.1",
    port: int = PROXY_PORT,
) -> None:
    """Run Optuna's gRPC storage proxy in front of the RDB storage ``storage`` (default
    ``$QG_STORAGE``) on ``host:port`` until Ctrl-C or SIGTERM; workers then use
    ``--storage grpc://host:port``. What ``python -m qgtools.search proxy`` calls.

    The proxy holds at most a few database connections (its thread pool of 10), whatever the
    number of workers, and caches finished trials. It has no authentication and no TLS: bind it
    to an address only the cluster's nodes reach (never ``0.0.0.0`` on a machine open to the
    internet). It cannot front a journal file (Optuna's limit) or another proxy.

    Args:
        storage: an RDB URL; ``None``: ``$QG_STORAGE``.
        host: the address to listen on.
        port: the port.

    Raises:
        ValueError: a storage that is not an RDB URL, or a port already in use.
    """
    # private: the public run_grpc_proxy_server cannot stop on SIGTERM or say a taken port
    from optuna.storages._grpc.server import make_server

    url = storage_url(storage)
    if url.endswith(".journal") or url.startswith("grpc://") or "://" not in url:
        raise ValueError(
            f"The proxy fronts a database (postgresql://..., mysql://..., sqlite:///file.db), not "
            f"{_mask(url)!r}: set QG_STORAGE (or --storage) to the database URL."
        )
    if _in_memory(url):
        raise ValueError(f"Storage {_mask(url)!r} is in memory: the proxy needs a database.")
    _check_address(host, port)
    # internal, but what run_grpc_proxy_server's documentation asks for: the trial cache
    cached = optuna.storages.get_storage(open_storage(url))
    try:
        server = make_server(cached, host, port)
        server.start()
    except RuntimeError as error:  # grpc's "Failed to bind to address ..."
        raise ValueError(
            f"The proxy cannot listen on {host}:{port} ({error}): is another proxy running "
            "there? Pick another --port."
        ) from None
    print(
        f"gRPC storage proxy for {_mask(url)} on {host}:{port}; workers use "
        f"--storage grpc://{host}:{port}. Ctrl-C stops it.",
        flush=True,
    )
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop(grace=5).wait()


def _check_address(host: str, port: int) -> None:
    """A ``ValueError`` unless ``host:port`` is free on this machine. gRPC binds with
    ``SO_REUSEPORT``, so a second proxy would share a first one's port and split the workers
    between two databases; a plain socket, without it, is refused there."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(
            f"port={port!r} (--port {port}) is not a port to listen on: use 1-65535 "
            f"(default {PROXY_PORT})."
        )
    advice = (
        f"host={host!r} (--host {host}) is not an address of this machine: give one it has "
        "(127.0.0.1 for this machine only, or the address the cluster's nodes reach it by)"
    )
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except (socket.gaierror, UnicodeError):
        raise ValueError(f"{advice}.") from None
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ValueError(
                    f"The proxy cannot listen on {host}:{port}: another process listens there "
                    "(another proxy?). Pick another --port, or stop that one."
                ) from None
            raise ValueError(f"{advice} ({error.strerror}).") from None
