"""Fetching the real file: verified, bounded, never a partial file in the cache."""

from __future__ import annotations

import hashlib
import http.server
import inspect
import threading
import time

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
