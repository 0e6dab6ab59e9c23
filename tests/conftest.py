"""Shared fixtures: small jet data made here, so tests need no network and no sample."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from qgtools.data import JetData
from qgtools.search.storage import _with_installed_driver


def make_jets(n: int = 2000, seed: int = 0, separation: float = 0.6) -> JetData:
    """Toy N-subjettiness-like data: positive, falling with N, gluons wider than quarks."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    width = np.exp(rng.normal(-1.6 + separation * (0.5 - y), 0.35))
    n_axes = np.arange(1, 16)
    decay = np.exp(-0.45 * (n_axes - 1))[None, :] * rng.uniform(0.8, 1.0, size=(n, 15)).cumprod(
        axis=1
    )
    taus = width[:, None] * decay
    X = np.stack([taus ** (beta**0.3) * beta for beta in (0.5, 1.0, 2.0)], axis=2).reshape(n, 45)
    X[rng.random(n) < 0.02, 42:] = 0.0  # a few jets with too few constituents for 15 axes
    return JetData(X.astype(np.float32), y, origin="toy jets (tests)")


@pytest.fixture
def jets() -> JetData:
    return make_jets()


@pytest.fixture(scope="module")
def toy_npz(tmp_path_factory) -> Path:
    """6,000 toy jets in an .npz file, for runs of real worker processes."""
    jets = make_jets(6000, seed=5)
    path = tmp_path_factory.mktemp("data") / "toy.npz"
    np.savez(path, X=jets.X, y=jets.y)
    return path


def require(missing: str | None, provider: str) -> None:
    """The rule for a prerequisite a test needs (PostgreSQL, Chromium, SLURM): when ``missing``
    says what is missing, fail in CI (``CI`` set; ``provider`` says what should have provided it),
    else skip saying why."""
    if missing is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must provide it ({provider}): {missing}")
    pytest.skip(missing)


@pytest.fixture
def postgres_url() -> str:
    """The CI's PostgreSQL (QG_TEST_POSTGRES_URL) with a clean schema; skipped without one, except
    in CI, where it fails."""
    url = os.environ.get("QG_TEST_POSTGRES_URL")
    require(
        None if url else "QG_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against",
        ".ci/run starts PostgreSQL",
    )
    import sqlalchemy

    engine = sqlalchemy.create_engine(_with_installed_driver(url))
    with engine.begin() as connection:  # a clean schema for each test
        connection.execute(sqlalchemy.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public;"))
    engine.dispose()
    return url
