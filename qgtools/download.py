"""Download and cache the real EnergyFlow file ``QG_nsubs.npz``; explained in notebook 01.

Needs only the standard library: the file is fetched with a bounded timeout, verified by
SHA-256 and renamed into the cache only when it is complete and correct.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

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

    Returns:
        The path of the verified cached file.

    Raises:
        OSError: the download failed or stalled (network down, timeout, HTTP error).
        ValueError: the downloaded file's SHA-256 does not match; the file is kept at the
            path named in the message.
    """
    url = url or ENERGYFLOW_URL
    expected_sha256 = expected_sha256 or ENERGYFLOW_SHA256
    path = cached_path(cache_dir)
    if path.exists() and sha256(path) == expected_sha256:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            _download(url, out, timeout, progress)
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


def _download(url: str, out: BinaryIO, timeout: float, progress: bool) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0)
            done, shown = 0, 0
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                done += len(block)
                if progress and total and done * 10 // total > shown:
                    shown = done * 10 // total
                    print(f"  {done / 1e6:.1f} of {total / 1e6:.1f} MB", flush=True)
            if total and done != total:
                raise OSError(f"download from {url} ended after {done} of {total} bytes")
    except TimeoutError as error:
        raise OSError(f"no progress for {timeout:g} s downloading {url} ({error})") from error
    except urllib.error.URLError as error:
        raise OSError(f"cannot download {url}: {error.reason}") from error
