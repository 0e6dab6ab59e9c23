from __future__ import annotations

import hashlib
import http.server
import inspect
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from qgtools import data
from qgtools.data import FEATURE_NAMES, JetData, Preprocessor, QGDataModule, TensorBatches

from conftest import make_jets


# --------------------------------------------------------------------------- names and JetData


def test_feature_names_follow_the_dataset_order():
    assert len(FEATURE_NAMES) == 45
    assert FEATURE_NAMES[:4] == ("tau_1^(0.5)", "tau_1^(1)", "tau_1^(2)", "tau_2^(0.5)")
    assert FEATURE_NAMES[-1] == "tau_15^(2)"


def test_energyflow_constants_agree_with_energyflow():
    from energyflow.datasets import qg_nsubs

    source = inspect.getsource(qg_nsubs.load)
    assert data.ENERGYFLOW_URL in source
    assert data.ENERGYFLOW_SHA256 in source
    assert f"'{data.ENERGYFLOW_FILENAME}'" in source


def test_jetdata_casts_types(jets):
    assert jets.X.dtype == np.float32 and jets.y.dtype == np.int64
    assert "2000 quark" not in repr(jets) and "1000 quark" in repr(jets)


@pytest.mark.parametrize(
    "X, y, message",
    [
        (np.zeros((4, 44)), np.zeros(4), r"shape \(4, 44\); expected \(n_jets, 45\)"),
        (np.zeros((4, 45)), np.zeros(3), r"y in .* has shape \(3,\); expected \(4,\)"),
        (np.zeros((4, 45)), np.array([0, 1, 2, 1]), r"labels \[0, 1, 2\]"),
    ],
)
def test_bad_arrays_are_named(X, y, message):
    with pytest.raises(ValueError, match=message):
        JetData(X, y, source="test")


def test_non_finite_rows_are_counted():
    X = np.ones((10, 45))
    X[3, 5] = np.nan
    X[7, 0] = np.inf
    with pytest.raises(ValueError, match=r"non-finite values \(NaN or inf\) in 2 of 10 rows \(first rows: \[3, 7\]\)"):
        JetData(X, np.zeros(10), source="test")


# --------------------------------------------------------------------------- local files


def test_npz_round_trip_and_num_data(tmp_path, jets):
    path = tmp_path / "stick.npz"
    np.savez(path, X=jets.X, y=jets.y)
    loaded = data.load(source=str(path))
    np.testing.assert_array_equal(loaded.X, jets.X)
    assert loaded.source == "local file stick.npz: 2000 jets"
    first = data.load(num_data=50, source=path)
    np.testing.assert_array_equal(first.y, jets.y[:50])
    assert first.source.endswith(": 50 jets")


def test_npz_errors_name_the_file(tmp_path, jets):
    missing = tmp_path / "nowhere.npz"
    with pytest.raises(ValueError, match=f"No data file at {missing}"):
        data.load(source=str(missing))
    no_y = tmp_path / "no_y.npz"
    np.savez(no_y, X=jets.X)
    with pytest.raises(ValueError, match=r"no_y.npz has no key\(s\) \['y'\]"):
        data.load(source=str(no_y))
    good = tmp_path / "good.npz"
    np.savez(good, X=jets.X, y=jets.y)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(ValueError, match="truncated.npz is truncated or not a valid .npz"):
        data.load(source=str(truncated))
    bad = tmp_path / "nan.npz"
    X = jets.X.copy()
    X[:3, 0] = np.nan
    np.savez(bad, X=X, y=jets.y)
    with pytest.raises(ValueError, match="X in .*nan.npz has non-finite values .* in 3 of 2000 rows"):
        data.load(source=str(bad))


@pytest.mark.parametrize("kwargs, message", [
    ({"source": "zenodo"}, "Unknown data source 'zenodo'"),
    ({"num_data": 0, "source": "sample"}, "num_data=0"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.load(**kwargs)


def test_num_data_beyond_the_file(tmp_path, jets):
    path = tmp_path / "small.npz"
    np.savez(path, X=jets.X, y=jets.y)
    with pytest.raises(ValueError, match="num_data=5000 but .* holds only 2000 jets"):
        data.load(num_data=5000, source=str(path))


# --------------------------------------------------------------------------- the shipped sample


def test_shipped_sample_is_labelled_as_ours():
    sample = data.load(source="sample")
    assert "offline sample (qgtools regeneration" in sample.source
    assert "EnergyFlow" not in sample.source
    assert len(sample) >= 50_000
    assert abs(sample.y.mean() - 0.5) < 0.01
    assert abs(sample.y[:1000].mean() - 0.5) < 0.06  # shuffled: the first n are balanced too
    meta = data.sample_metadata()
    assert meta["seed"] is not None and "pythia8mc" in meta["versions"]


def test_shipped_sample_is_faithful():
    """Physics sanity of our regeneration: the properties the real dataset has."""
    sample = data.load(source="sample")
    X, y = sample.X.astype(np.float64), sample.y
    taus = X.reshape(-1, 15, 3)
    medians = np.median(taus, axis=0)  # (N, beta)
    assert (np.diff(medians, axis=0) <= 0).all(), "median taus fall with N"
    for beta in range(3):
        assert np.median(taus[y == 0, 0, beta]) > np.median(taus[y == 1, 0, beta]), "gluons are wider"
    zero_share = (taus[:, 14, :] == 0).all(axis=1).mean()
    assert 0.0 < zero_share < 0.1, f"share of jets with tau_15 = 0 is {zero_share:.3f}"


# --------------------------------------------------------------------------- download and "auto"


class _Server:
    """A loopback HTTP server with a chosen body; can stall mid-file."""

    def __init__(self, body: bytes, stall_after: int | None = None):
        outer = self
        self.body, self.stall_after = body, stall_after
        self.release = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
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
    """A stand-in for the real file, served on loopback, with data.* pointed at it."""
    path = tmp_path / "served.npz"
    np.savez(path, X=jets.X, y=jets.y)
    body = path.read_bytes()
    server = _Server(body)
    yield server, hashlib.sha256(body).hexdigest()
    server.close()


def test_fetch_downloads_verifies_and_caches(tmp_path, real_file, monkeypatch):
    server, digest = real_file
    path = data.fetch(tmp_path / "cache", url=server.url, expected_sha256=digest)
    assert path == tmp_path / "cache" / "datasets" / "QG_nsubs.npz"
    assert data.sha256(path) == digest
    assert list(path.parent.iterdir()) == [path]  # no partial files left


def test_fetch_hash_mismatch_keeps_the_file_and_names_it(tmp_path, real_file):
    server, _ = real_file
    with pytest.raises(ValueError, match=r"kept at .*QG_nsubs.npz.mismatch"):
        data.fetch(tmp_path, url=server.url, expected_sha256="0" * 64)
    assert not (tmp_path / "datasets" / "QG_nsubs.npz").exists()
    assert (tmp_path / "datasets" / "QG_nsubs.npz.mismatch").exists()


def test_fetch_stalled_download_is_bounded_and_leaves_nothing(tmp_path, jets):
    server = _Server(b"x" * 100_000, stall_after=1000)
    try:
        start = time.monotonic()
        with pytest.raises(OSError, match="no progress for 1 s"):
            data.fetch(tmp_path, timeout=1, url=server.url, expected_sha256="0" * 64)
        assert time.monotonic() - start < 8
    finally:
        server.close()
    assert list((tmp_path / "datasets").iterdir()) == []


def test_cache_dir_defaults_to_qg_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("QG_DATA_DIR", str(tmp_path))
    assert data.cached_path() == tmp_path / "datasets" / "QG_nsubs.npz"


def test_auto_uses_a_valid_cached_file(tmp_path, jets, monkeypatch):
    cached = data.cached_path(tmp_path)
    cached.parent.mkdir(parents=True)
    np.savez(cached, X=jets.X, y=jets.y)
    monkeypatch.setattr(data, "ENERGYFLOW_SHA256", data.sha256(cached))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = data.load(source="auto", cache_dir=tmp_path)
    assert loaded.source.startswith("EnergyFlow QG_nsubs")
    assert len(loaded) == len(jets)


def test_auto_offline_falls_back_to_the_sample_with_one_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("QG_OFFLINE", "1")
    with pytest.warns(data.DataSourceWarning) as record:
        loaded = data.load(num_data=100, cache_dir=tmp_path)
    assert len(record) == 1
    message = str(record[0].message)
    assert "offline sample" in message and "QG_OFFLINE=1" in message and "qgtools.data fetch" in message
    assert "offline sample" in loaded.source and len(loaded) == 100


def test_auto_with_a_corrupt_cache_says_where_and_keeps_it(tmp_path, monkeypatch):
    monkeypatch.setenv("QG_OFFLINE", "1")
    cached = data.cached_path(tmp_path)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not the dataset")
    with pytest.warns(data.DataSourceWarning, match=f"the cached file {cached} is corrupt"):
        data.load(cache_dir=tmp_path)
    assert cached.read_bytes() == b"not the dataset"


def test_auto_when_the_download_fails(tmp_path, monkeypatch):
    monkeypatch.delenv("QG_OFFLINE", raising=False)
    monkeypatch.setattr(data, "ENERGYFLOW_URL", "http://127.0.0.1:9/QG_nsubs.npz")
    with pytest.warns(data.DataSourceWarning, match="the download failed"):
        loaded = data.load(cache_dir=tmp_path, timeout=2)
    assert "offline sample" in loaded.source


def test_energyflow_source_errors_without_network(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "ENERGYFLOW_URL", "http://127.0.0.1:9/QG_nsubs.npz")
    with pytest.raises(OSError, match="cannot download"):
        data.load(source="energyflow", cache_dir=tmp_path, timeout=2)


# --------------------------------------------------------------------------- split


def test_split_counts_on_the_real_size():
    assert data.split_counts(100_000, (0.8, 0.1, 0.1)) == (80_000, 10_000, 10_000)
    assert data.split_counts(50_001, (0.8, 0.1, 0.1)) == (40_001, 5_000, 5_000)
    assert data.split_counts(1000, (600, 200, 100)) == (600, 200, 100)


@pytest.mark.parametrize("sizes, message", [
    ((0.8, 0.1), "three entries"),
    ((0.8, 0.3, 0.1), "sum to 1"),
    ((900, 200, 100), "sum to at most 1000"),
])
def test_split_sizes_that_do_not_fit(sizes, message):
    with pytest.raises(ValueError, match=message):
        data.split_counts(1000, sizes)


def test_split_is_seeded_disjoint_and_complete(jets):
    train, val, test = data.split(jets, seed=3)
    assert (len(train), len(val), len(test)) == (1600, 200, 200)
    rows = np.concatenate([train.X, val.X, test.X])
    assert len(np.unique(rows, axis=0)) == len(jets)
    again = data.split(jets, seed=3)[2]
    other = data.split(jets, seed=4)[2]
    np.testing.assert_array_equal(test.X, again.X)
    assert not np.array_equal(test.X, other.X)
    assert test.source == "toy jets (tests), test: 200 jets"


def test_split_is_the_same_on_any_machine():
    """PCG64's permutation is platform independent: pin the first indices for seed 0."""
    order = np.random.default_rng(0).permutation(10)
    jets = JetData(np.arange(450, dtype=np.float32).reshape(10, 45), np.arange(10) % 2, source="ten")
    train, val, test = data.split(jets, sizes=(8, 1, 1), seed=0)
    assert test.X[0, 0] == 45 * order[9]
    assert val.X[0, 0] == 45 * order[8]


# --------------------------------------------------------------------------- preprocessing


@pytest.mark.parametrize("kind", data.PREPROCESSING_KINDS)
def test_preprocessing_is_finite_with_zero_taus(kind, jets):
    train, val, _ = data.split(jets)
    assert (train.X == 0).any()
    pre = Preprocessor(kind).fit(train.X)
    out = pre.transform(val.X)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    zeros = np.zeros((1, 45), dtype=np.float32)
    assert np.isfinite(pre.transform(zeros)).all()


def test_log_floor_sits_below_the_smallest_value(jets):
    pre = Preprocessor("log").fit(jets.X)
    out = pre.transform(jets.X)
    zero = jets.X[:, 44] == 0
    assert zero.any()
    assert out[zero, 44].max() < out[~zero, 44].min()
    assert out[zero, 44].max() == pytest.approx(out[~zero, 44].min() - np.log(2), rel=1e-5)


def test_standardize_uses_training_statistics_only(jets):
    train, val, _ = data.split(jets)
    pre = Preprocessor("log+standardize").fit(train.X)
    out = pre.transform(train.X)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-3)
    shifted = pre.transform(val.X * 10)
    assert shifted.mean() > 1  # not re-fitted on what it transforms


def test_preprocessor_state_round_trip(jets):
    pre = Preprocessor("log+standardize").fit(jets.X)
    again = Preprocessor.from_state_dict(pre.state_dict())
    np.testing.assert_array_equal(again.transform(jets.X), pre.transform(jets.X))


def test_preprocessor_errors():
    with pytest.raises(ValueError, match="Unknown preprocessing 'sqrt'"):
        Preprocessor("sqrt")
    with pytest.raises(ValueError, match="not fitted"):
        Preprocessor("log").transform(np.ones((2, 45)))


# --------------------------------------------------------------------------- batching


def test_tensor_batches_cover_each_jet_once_per_epoch():
    X = np.arange(1050, dtype=np.float32)[:, None]
    batches = TensorBatches(X, np.zeros(1050), batch_size=100, seed=1)
    assert len(batches) == 11
    first = np.concatenate([xb.numpy()[:, 0] for xb, _ in batches])
    second = np.concatenate([xb.numpy()[:, 0] for xb, _ in batches])
    assert sorted(first) == list(range(1050)) and not np.array_equal(first, second)
    replay = TensorBatches(X, np.zeros(1050), batch_size=100, seed=1)
    np.testing.assert_array_equal(np.concatenate([xb.numpy()[:, 0] for xb, _ in replay]), first)


def test_datamodule_preprocesses_with_training_statistics(jets):
    train, val, test = data.split(jets)
    module = QGDataModule(train, val, test, preprocessor=Preprocessor("standardize"), batch_size=64,
                          input_channels=10)
    xb, yb = next(iter(module.train_dataloader()))
    assert xb.shape == (64, 10) and yb.dtype.is_floating_point
    np.testing.assert_allclose(module.train_batches.X.mean(0).numpy(), 0, atol=1e-4)
    assert len(module.val_dataloader()) == 1 and len(module.test_dataloader()) == 1
    with pytest.raises(ValueError, match="without a test split"):
        QGDataModule(train, val).test_dataloader()
