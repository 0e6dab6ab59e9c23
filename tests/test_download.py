"""Fetching the real file: verified, bounded, never a partial file in the cache."""

from __future__ import annotations

import hashlib
import http.server
import inspect
import socket
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from qgtools import download


def test_energyflow_constants_agree_with_energyflow():
    from energyflow.datasets import qg_nsubs

    source = inspect.getsource(qg_nsubs.load)
    assert download.ENERGYFLOW_URL in source
    assert download.ENERGYFLOW_SHA256 in source
    assert f"'{download.ENERGYFLOW_FILENAME}'" in source


class _Server:
    """A loopback HTTP server with a chosen body; can stall mid-file."""

    def __init__(self, body: bytes, stall_after: int | None = None):
        outer = self
        self.body, self.stall_after = body, stall_after
        self.release = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                if outer.stall_after is None:
                    self.wfile.write(outer.body)
                else:
                    self.wfile.write(outer.body[: outer.stall_after])
                    self.wfile.flush()
                    outer.release.wait(10)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/QG_nsubs.npz"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()


@pytest.fixture
def real_file(tmp_path, jets):
    """A stand-in for the real file, served on loopback."""
    path = tmp_path / "served.npz"
    np.savez(path, X=jets.X, y=jets.y)
    body = path.read_bytes()
    server = _Server(body)
    yield server, hashlib.sha256(body).hexdigest()
    server.close()


def test_fetch_downloads_verifies_and_caches(tmp_path, real_file, monkeypatch):
    server, digest = real_file
    path = download.fetch(tmp_path / "cache", url=server.url, expected_sha256=digest)
    assert path == tmp_path / "cache" / "datasets" / "QG_nsubs.npz"
    assert download.sha256(path) == digest
    assert list(path.parent.iterdir()) == [path]  # no partial files left


def test_fetch_hash_mismatch_keeps_the_file_and_names_it(tmp_path, real_file):
    server, _ = real_file
    with pytest.raises(ValueError, match=r"kept at .*QG_nsubs.npz.mismatch"):
        download.fetch(tmp_path, url=server.url, expected_sha256="0" * 64)
    assert not (tmp_path / "datasets" / "QG_nsubs.npz").exists()
    assert (tmp_path / "datasets" / "QG_nsubs.npz.mismatch").exists()


def test_fetch_stalled_download_is_bounded_and_leaves_nothing(tmp_path, jets):
    server = _Server(b"x" * 100_000, stall_after=1000)
    try:
        start = time.monotonic()
        with pytest.raises(OSError, match="no progress for 1 s"):
            download.fetch(tmp_path, timeout=1, url=server.url, expected_sha256="0" * 64)
        assert time.monotonic() - start < 8
    finally:
        server.close()
    assert list((tmp_path / "datasets").iterdir()) == []


def test_cache_dir_defaults_to_qg_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("QG_DATA_DIR", str(tmp_path))
    assert download.cached_path() == tmp_path / "datasets" / "QG_nsubs.npz"


class _RawServer:
    """A loopback server that reads each request and answers with ``reply(conn, stop)``: for
    malformed or endless answers that ``http.server`` would not send."""

    def __init__(self, reply: Callable[[socket.socket, threading.Event], None]):
        self.reply, self.stop = reply, threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/QG_nsubs.npz"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                block = conn.recv(4096)
                if not block:
                    return
                request += block
            try:
                self.reply(conn, self.stop)
            except OSError:  # the client hung up
                pass

    def close(self):
        self.stop.set()
        self.sock.close()


def _drip(head: bytes, byte: bytes = b"x", every: float = 0.2):
    """A reply that sends ``head`` and then one byte every ``every`` seconds, for ever."""

    def reply(conn, stop):
        conn.sendall(head)
        while not stop.wait(every):
            conn.sendall(byte)

    return reply


def _ends(call: Callable[[], object], bound: float = 60.0) -> BaseException | None:
    """Run ``call`` in a thread; fail unless it ends within the generous ``bound`` (liveness,
    not speed); return what it raised."""
    raised: list[BaseException | None] = [None]

    def run():
        try:
            call()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            raised[0] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(bound)
    assert not thread.is_alive(), f"still running after {bound:g} s"
    return raised[0]


@pytest.mark.parametrize(
    "reply",
    [
        _drip(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"),  # body, a byte at a time
        _drip(b"HTTP/1.1 200 OK\r\nX-Slow: "),  # headers that never end
    ],
    ids=["dripping-body", "endless-headers"],
)
def test_fetch_has_an_overall_deadline(tmp_path, reply):
    server = _RawServer(reply)
    try:
        error = _ends(
            lambda: download.fetch(
                tmp_path, timeout=1, deadline=2, url=server.url, expected_sha256="0" * 64
            )
        )
    finally:
        server.close()
    assert isinstance(error, OSError), repr(error)
    assert "did not finish within the deadline of 2 s" in str(error) and server.url in str(error)
    assert list((tmp_path / "datasets").iterdir()) == []


@pytest.mark.parametrize("deadline", [0, -1.0, float("nan")])
def test_fetch_refuses_a_deadline_that_is_not_positive(tmp_path, deadline):
    with pytest.raises(ValueError, match=f"deadline={deadline!r}: give seconds > 0"):
        download.fetch(tmp_path, deadline=deadline, url="http://127.0.0.1:9/x")


def _once(answer: bytes):
    def reply(conn, stop):
        conn.sendall(answer)

    return reply


MALFORMED = {
    "bad-status-line": b"HELLO THERE\r\n\r\n",
    "cut-chunked-body": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nabc",
    "bad-chunk-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc",
    "overlong-header": b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n",
    "too-many-headers": b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 150 + b"\r\n",
    "bad-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\nabc",
    "closed-at-once": b"",
}


@pytest.mark.parametrize("answer", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_answer_is_the_documented_oserror(tmp_path, answer):
    server = _RawServer(_once(answer))
    try:
        with pytest.raises(OSError, match=f"cannot download {server.url}"):
            download.fetch(tmp_path, timeout=5, url=server.url, expected_sha256="0" * 64)
    finally:
        server.close()
    assert list((tmp_path / "datasets").iterdir()) == []


def test_a_bad_url_is_named(tmp_path):
    with pytest.raises(ValueError, match="url='nowhere' cannot be fetched"):
        download.fetch(tmp_path, url="nowhere", expected_sha256="0" * 64)


def test_a_folder_at_the_cache_path_is_explained_and_kept(tmp_path):
    cached = download.cached_path(tmp_path)
    cached.mkdir(parents=True)
    (cached / "mine.txt").write_text("keep me")
    with pytest.raises(OSError, match=f"{cached} is a folder, not the data file: move it away"):
        download.fetch(tmp_path, url="http://127.0.0.1:9/x", expected_sha256="0" * 64)
    assert (cached / "mine.txt").read_text() == "keep me"


def test_a_file_given_as_cache_dir_is_explained(tmp_path):
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("keep me")
    with pytest.raises(OSError, match=f"{not_a_folder} is a file, where the cache needs a folder"):
        download.fetch(not_a_folder, url="http://127.0.0.1:9/x", expected_sha256="0" * 64)
    assert not_a_folder.read_text() == "keep me"


def test_an_unreadable_cached_file_is_explained(tmp_path, monkeypatch):
    cached = download.cached_path(tmp_path)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"someone else's")

    def unreadable(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(download, "sha256", unreadable)
    with pytest.raises(OSError, match=f"cannot read the cached file {cached}.*permissions"):
        download.fetch(tmp_path, url="http://127.0.0.1:9/x", expected_sha256="0" * 64)
    assert cached.read_bytes() == b"someone else's"
