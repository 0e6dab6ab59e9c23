"""Download and cache the real EnergyFlow file ``QG_nsubs.npz``; explained in notebook 01.

Needs only the standard library: the file is fetched with a bounded timeout per read and an
overall deadline, verified by SHA-256 and renamed into the cache only when it is complete
and correct. Every transport failure (network, timeout, deadline, HTTP error, a malformed
answer) is one :class:`OSError` that names the URL.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import numbers
import os
import socket
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO

# As energyflow 1.4.0 has them in energyflow/datasets/qg_nsubs.py (a test checks they agree).
ENERGYFLOW_FILENAME = "QG_nsubs.npz"
ENERGYFLOW_URL = "https://zenodo.org/records/10850472/files/QG_nsubs.npz?download=1"
ENERGYFLOW_SHA256 = "a99f771147af9b207356c990430cfeba6b6aa96fe5cff8263450ff3a31ab0997"
ENERGYFLOW_N_JETS = 100_000


def cached_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the real file is cached: ``cache_dir``, else ``$QG_DATA_DIR``, else
    ``~/.energyflow``."""
    base = cache_dir or os.environ.get("QG_DATA_DIR") or "~/.energyflow"
    return Path(base).expanduser() / "datasets" / ENERGYFLOW_FILENAME


def cache_problem(path: Path) -> str | None:
    """Why the cache location ``path`` (from :func:`cached_path`) cannot hold the file, or None.

    A folder where the file goes, or a file where one of its folders goes, cannot be fixed by
    downloading; the answer says what to do instead.
    """
    if path.is_dir():
        return (
            f"{path} is a folder, not the data file: move it away, or give another cache_dir "
            "(or $QG_DATA_DIR)"
        )
    for parent in path.parents:
        if parent.is_dir():
            return None
        if parent.exists():
            return (
                f"{parent} is a file, where the cache needs a folder: give a folder as cache_dir "
                "(or $QG_DATA_DIR), e.g. ~/.energyflow"
            )
    return None


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(
    cache_dir: str | os.PathLike | None = None,
    timeout: float = 30.0,
    url: str | None = None,
    expected_sha256: str | None = None,
    progress: bool = False,
    deadline: float = 600.0,
) -> Path:
    """Download and verify the real file into the cache, unless a valid copy is there already.

    The download goes to a temporary file beside the cache and is renamed into place only
    once its SHA-256 matches, so a partial or wrong download never becomes the cached file.
    A corrupt cached file is moved aside to ``*.corrupt`` (not deleted) once a good copy
    has arrived.

    Args:
        cache_dir: see :func:`cached_path`.
        timeout: seconds without progress (connecting or receiving) before giving up.
        url, expected_sha256: the file to fetch; defaults are energyflow's.
        progress: print a line of progress per 10%.
        deadline: seconds for the whole download, however it trickles in (the real file,
            56 MB, takes under a minute on a good connection).

    Returns:
        The path of the verified cached file.

    Raises:
        OSError: the download failed, stalled or ran past the deadline (network down,
            timeout, HTTP error, malformed answer), or the cache cannot be used (a folder
            where the file goes, a file where a folder goes, unreadable or unwritable); the
            message names the URL or the path.
        ValueError: the downloaded file's SHA-256 does not match (the file is kept at the
            path named in the message); or ``url``, ``timeout`` or ``deadline`` is unusable.
    """
    url = url or ENERGYFLOW_URL
    expected_sha256 = expected_sha256 or ENERGYFLOW_SHA256
    for name, seconds, usual in (("timeout", timeout, 30), ("deadline", deadline, 600)):
        if not (
            isinstance(seconds, numbers.Real)
            and not isinstance(seconds, bool)
            and seconds > 0
            and math.isfinite(seconds)
        ):
            raise ValueError(f"{name}={seconds!r}: give seconds > 0, e.g. {name}={usual}.")
    path = cached_path(cache_dir)
    problem = cache_problem(path)
    if problem:
        raise OSError(f"cannot cache the download: {problem}.")
    if _is_verified(path, expected_sha256):
        return path
    return _download_verified(path, url, expected_sha256, timeout, deadline, progress)


def _is_verified(path: Path, expected_sha256: str) -> bool:
    """Whether the cached file is there with the expected SHA-256; an ``OSError`` naming it when
    it cannot be read."""
    try:
        return path.exists() and sha256(path) == expected_sha256
    except OSError as error:
        raise OSError(
            f"cannot read the cached file {path} ({error}): fix its permissions, or move it "
            "away and fetch again."
        ) from error


def _download_verified(
    path: Path, url: str, expected_sha256: str, timeout: float, deadline: float, progress: bool
) -> Path:
    """Download ``url`` to a temporary file beside ``path`` and rename it into place once its
    SHA-256 matches (see :func:`fetch`)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    except OSError as error:
        raise OSError(
            f"cannot write to the cache folder {path.parent} ({error}): give a writable "
            "cache_dir (or $QG_DATA_DIR)."
        ) from error
    tmp = Path(tmp_name)
    try:
        try:
            with os.fdopen(fd, "wb") as out:
                _download(url, out, timeout, deadline, progress)
        except _WriteError as error:
            raise OSError(
                f"cannot write the download into the cache folder {path.parent} "
                f"({error.__cause__}): free some space there, or give another cache_dir "
                "(or $QG_DATA_DIR)."
            ) from error.__cause__
        got = sha256(tmp)
        if got != expected_sha256:
            bad = path.with_name(path.name + ".mismatch")
            tmp.replace(bad)
            raise ValueError(
                f"The file downloaded from {url} has SHA-256 {got}, not {expected_sha256}; "
                f"it is kept at {bad} for inspection and was not used. Try again later, "
                f"or copy a verified {path.name} to {path}."
            )
        if path.exists():
            path.replace(path.with_name(path.name + ".corrupt"))
        tmp.replace(path)
        return path
    finally:
        tmp.unlink(missing_ok=True)


class _WriteError(Exception):
    """Writing the download to disk failed (its cause says why): not a transport failure."""


class _Deadline:
    """Shuts down the download's connections when ``seconds`` have passed, so that a read
    blocked on a server that trickles bytes (or never ends its headers) returns at once."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.passed = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.passed:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.passed = True
            for sock in self._sockets:
                _shut(sock)

    def connection_class(self, base: type) -> type:
        """``base`` (an ``http.client`` connection class) whose sockets this deadline watches."""
        deadline = self

        class Watched(base):
            def connect(self) -> None:
                super().connect()
                deadline.watch(self.sock)

        return Watched


def _shut(sock: socket.socket) -> None:
    """Wake any read blocked on ``sock``: its reads now see the end of the stream."""
    try:
        # socket.socket's own shutdown, also for an SSLSocket (whose shutdown would unwrap it
        # under a read in progress)
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


def _opener(deadline: _Deadline) -> urllib.request.OpenerDirector:
    """urllib's usual opener, with connections the deadline can cut."""

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req: Any) -> Any:
            return self.do_open(deadline.connection_class(http.client.HTTPConnection), req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: Any) -> Any:
            return self.do_open(
                deadline.connection_class(http.client.HTTPSConnection), req, context=self._context
            )

    return urllib.request.build_opener(HTTPHandler, HTTPSHandler)


def _content_length(headers: Any) -> int:
    """The announced size in bytes, or 0 if none is announced."""
    value = headers.get("Content-Length")
    if value is None:
        return 0
    try:
        length = int(value)
    except ValueError:
        length = -1
    if length < 0:
        raise OSError(f"the answer announces Content-Length {value[:50]!r}, not a size in bytes")
    return length


def _download(url: str, out: BinaryIO, timeout: float, deadline: float, progress: bool) -> None:
    try:
        request = urllib.request.Request(url)
    except ValueError as error:
        raise ValueError(
            f"url={url!r} cannot be fetched ({error}): give an http(s) URL."
        ) from error
    done = 0
    with _Deadline(deadline) as watch:
        try:
            with _opener(watch).open(request, timeout=min(timeout, deadline)) as response:
                total = _content_length(response.headers)
                shown = 0
                # read1 returns what has arrived, so the deadline is looked at between reads
                for block in iter(lambda: response.read1(1 << 16), b""):
                    try:
                        out.write(block)
                    except OSError as error:
                        raise _WriteError() from error
                    done += len(block)
                    if progress and total and done * 10 // total > shown:
                        shown = done * 10 // total
                        print(f"  {done / 1e6:.1f} of {total / 1e6:.1f} MB", flush=True)
                    if watch.passed:
                        break
                if watch.passed and not (total and done == total):
                    raise OSError("cut at the deadline")
                if total and done != total:
                    raise OSError(f"the answer ended after {done} of {total} bytes")
        except http.client.InvalidURL as error:
            raise ValueError(
                f"url={url!r} cannot be fetched ({error}): give an http(s) URL."
            ) from error
        except (OSError, ValueError, http.client.HTTPException) as error:
            if watch.passed:
                raise OSError(
                    f"the download of {url} did not finish within the deadline of {deadline:g} s "
                    f"({done:,} bytes received): try again on a faster connection, or give "
                    "a longer deadline."
                ) from error
            raise _transport_error(url, timeout, error) from error


def _transport_error(url: str, timeout: float, error: BaseException) -> OSError:
    """One OSError, on one line, for any way the transport can fail."""
    if isinstance(error, urllib.error.HTTPError):
        return OSError(f"cannot download {url}: HTTP {error.code} {error.reason}")
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, TimeoutError):
        return OSError(f"cannot download {url}: no progress for {timeout:g} s ({reason})")
    text = " ".join(str(reason).split())
    name = type(reason).__name__
    if isinstance(reason, BaseException) and name != "OSError" and not text.startswith(name):
        text = f"{name}: {text}"
    if len(text) > 200:
        text = text[:200] + "..."
    return OSError(f"cannot download {url}: {text}. Check the network and the URL, or try later.")
