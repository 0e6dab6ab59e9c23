from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from qgtools import data, download
from qgtools.data import FEATURE_NAMES, JetData

# --------------------------------------------------------------------------- names and JetData


def test_feature_names_follow_the_dataset_order():
    assert len(FEATURE_NAMES) == 45
    assert FEATURE_NAMES[:4] == ("tau_1^(0.5)", "tau_1^(1)", "tau_1^(2)", "tau_2^(0.5)")
    assert FEATURE_NAMES[-1] == "tau_15^(2)"


def test_data_needs_neither_torch_nor_lightning():
    code = (
        "import sys; from qgtools import data; j = data.load(num_data=3000, source='sample'); "
        "tr, va, te = data.split(j); "
        "data.Preprocessor('log+standardize').fit(tr.X).transform(va.X); data.cached_path(); "
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_origin_and_part_are_fields_and_source_is_made_from_them(jets):
    train, _, _ = data.split(jets)
    assert (train.origin, train.part) == ("toy jets (tests)", "train")
    assert train.source == "toy jets (tests), train: 1600 jets"
    head = jets.head(50)
    assert (head.origin, head.part, len(head)) == ("toy jets (tests)", "", 50)
    np.testing.assert_array_equal(head.y, jets.y[:50])
    assert jets.head(-1) is jets


def test_join_keeps_the_origin_and_refuses_mixed_data(jets):
    train, val, _ = data.split(jets)
    dev = data.join([train, val], part="train+val")
    assert dev.source == "toy jets (tests), train+val: 1800 jets"
    np.testing.assert_array_equal(dev.X[1600:], val.X)
    other = JetData(jets.X, jets.y, origin="other jets")
    with pytest.raises(ValueError, match="different data"):
        data.join([train, other], part="x")


def test_reshape_taus_puts_n_then_beta(jets):
    taus = data.reshape_taus(jets.X)
    assert taus.shape == (2000, 15, 3)
    assert taus[7, 1, 2] == jets.X[7, FEATURE_NAMES.index("tau_2^(2)")]
    with pytest.raises(ValueError, match="expected \\(n_jets, 45\\)"):
        data.reshape_taus(jets.X[:, :44])


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
        JetData(X, y, origin="test")


def test_non_finite_rows_are_counted():
    X = np.ones((10, 45))
    X[3, 5] = np.nan
    X[7, 0] = np.inf
    with pytest.raises(
        ValueError,
        match=r"non-finite values \(NaN or inf\) in 2 of 10 rows \(first rows: \[3, 7\]\)",
    ):
        JetData(X, np.zeros(10), origin="test")


def test_values_beyond_float32_are_named_not_called_infinite(tmp_path, jets):
    X = np.ones((10, 45))
    X[2, 4] = 1e39
    X[6, 0] = -3e40
    message = (
        r"X in test has values beyond float32's range \(max 3.4e38\) in 2 of 10 rows "
        r"\(first rows: \[2, 6\]\)"
    )
    with pytest.raises(ValueError, match=message):
        JetData(X, np.zeros(10), origin="test")
    path = tmp_path / "big.npz"
    np.savez(
        path, X=np.where(np.arange(2000)[:, None] == 5, 1e39, jets.X.astype(np.float64)), y=jets.y
    )
    with pytest.raises(ValueError, match=r"big.npz has values beyond float32's range .* in 1 of"):
        data.load(source=path)


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
    with pytest.raises(
        ValueError, match="X in .*nan.npz has non-finite values .* in 3 of 2000 rows"
    ):
        data.load(source=str(bad))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"source": "zenodo"}, "Unknown data source 'zenodo'"),
        ({"num_data": 0, "source": "sample"}, "num_data=0"),
    ],
)
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


def test_shipped_sample_lists_the_same_observables():
    """The sample's metadata spells them tau_1^0.5 (as the generator did then): same (N, beta)."""
    import re

    def n_beta(name: str) -> tuple[int, float]:
        n, beta = re.fullmatch(r"tau_(\d+)\^\(?([0-9.]+)\)?", name).groups()
        return int(n), float(beta)

    listed = [n_beta(name) for name in data.sample_metadata()["features"]]
    assert listed == [n_beta(name) for name in FEATURE_NAMES]


def test_shipped_sample_is_faithful():
    """Physics sanity of our regeneration: the properties the real dataset has."""
    sample = data.load(source="sample")
    X, y = sample.X.astype(np.float64), sample.y
    taus = data.reshape_taus(X)
    medians = np.median(taus, axis=0)  # (N, beta)
    assert (np.diff(medians, axis=0) <= 0).all(), "median taus fall with N"
    for beta in range(3):
        assert np.median(taus[y == 0, 0, beta]) > np.median(taus[y == 1, 0, beta]), (
            "gluons are wider"
        )
    zero_share = (taus[:, 14, :] == 0).all(axis=1).mean()
    assert 0.0 < zero_share < 0.1, f"share of jets with tau_15 = 0 is {zero_share:.3f}"


# ----------------------------------------------------------- "auto": the real file or the sample


def test_auto_uses_a_valid_cached_file(tmp_path, jets, monkeypatch):
    cached = data.cached_path(tmp_path)
    cached.parent.mkdir(parents=True)
    np.savez(cached, X=jets.X, y=jets.y)
    monkeypatch.setattr(download, "ENERGYFLOW_SHA256", download.sha256(cached))
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
    assert (
        "offline sample" in message
        and "QG_OFFLINE=1" in message
        and "qgtools.data fetch" in message
    )
    assert "offline sample" in loaded.source and len(loaded) == 100


def test_auto_fallback_can_be_printed_instead_of_warned(tmp_path, monkeypatch):
    monkeypatch.setenv("QG_OFFLINE", "1")
    said = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at all: notebooks show the note as output
        loaded = data.load(num_data=100, cache_dir=tmp_path, on_fallback=said.append)
    assert len(said) == 1 and said[0].startswith(f"Using {data.load_sample().source}")
    assert "QG_OFFLINE=1" in said[0] and "qgtools.data fetch" in said[0]
    assert max(map(len, said[0].splitlines())) <= 100 < len(said[0])  # wrapped between words
    assert "offline sample" in loaded.source


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
    monkeypatch.setattr(download, "ENERGYFLOW_URL", "http://127.0.0.1:9/QG_nsubs.npz")
    with pytest.warns(data.DataSourceWarning, match="the download failed"):
        loaded = data.load(cache_dir=tmp_path, timeout=2)
    assert "offline sample" in loaded.source


def test_energyflow_source_errors_without_network(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "ENERGYFLOW_URL", "http://127.0.0.1:9/QG_nsubs.npz")
    with pytest.raises(OSError, match="cannot download"):
        data.load(source="energyflow", cache_dir=tmp_path, timeout=2)


def _no_download(*args, **kwargs):
    raise AssertionError("load() tried to download")


def test_auto_falls_back_when_a_folder_is_where_the_cached_file_goes(tmp_path, monkeypatch):
    monkeypatch.delenv("QG_OFFLINE", raising=False)
    monkeypatch.setattr(download, "fetch", _no_download)
    cached = data.cached_path(tmp_path)
    cached.mkdir(parents=True)
    with pytest.warns(data.DataSourceWarning, match=f"{cached} is a folder, not the data file"):
        loaded = data.load(num_data=10, cache_dir=tmp_path)
    assert "offline sample" in loaded.source and cached.is_dir()


def test_auto_falls_back_when_the_cached_file_cannot_be_read(tmp_path, monkeypatch):
    monkeypatch.delenv("QG_OFFLINE", raising=False)
    monkeypatch.setattr(download, "fetch", _no_download)
    cached = data.cached_path(tmp_path)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"someone else's")

    def unreadable(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(download, "sha256", unreadable)
    with pytest.warns(data.DataSourceWarning, match=f"cannot read the cached file {cached}"):
        loaded = data.load(num_data=10, cache_dir=tmp_path)
    assert "offline sample" in loaded.source


def test_auto_falls_back_when_cache_dir_is_a_file(tmp_path, monkeypatch):
    monkeypatch.delenv("QG_OFFLINE", raising=False)
    monkeypatch.setattr(download, "fetch", _no_download)
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("keep me")
    with pytest.warns(data.DataSourceWarning, match=f"{not_a_folder} is a file, where the cache"):
        data.load(num_data=10, cache_dir=not_a_folder)
    assert not_a_folder.read_text() == "keep me"


def test_energyflow_source_with_a_file_as_cache_dir_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "ENERGYFLOW_URL", "http://127.0.0.1:9/QG_nsubs.npz")
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("keep me")
    with pytest.raises(OSError, match=f"{not_a_folder} is a file, .* give a folder as cache_dir"):
        data.load(source="energyflow", cache_dir=not_a_folder)


@pytest.mark.parametrize("value", ["1", "TRUE", " Yes ", "on"])
def test_qg_offline_spellings_skip_the_download(tmp_path, monkeypatch, value):
    monkeypatch.setenv("QG_OFFLINE", value)
    monkeypatch.setattr(download, "fetch", _no_download)
    with pytest.warns(data.DataSourceWarning, match="asks not to download"):
        data.load(num_data=10, cache_dir=tmp_path)


@pytest.mark.parametrize("value", ["maybe", "2", "y"])
def test_qg_offline_that_is_not_understood_is_an_error(tmp_path, monkeypatch, value):
    monkeypatch.setenv("QG_OFFLINE", value)
    monkeypatch.setattr(download, "fetch", _no_download)
    with pytest.raises(ValueError, match=f"QG_OFFLINE={value!r} is not understood: use"):
        data.load(num_data=10, cache_dir=tmp_path)


def test_cli_info_with_a_bad_source_is_one_line_of_advice(capsys):
    assert data.main(["info", "--source", "bogus"]) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "Unknown data source 'bogus': use 'auto'" in out


def test_cli_info_as_a_command_has_no_traceback():
    run = subprocess.run(
        [sys.executable, "-m", "qgtools.data", "info", "--source", "bogus"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr + run.stdout
    assert "bogus" in run.stdout


def test_cli_fetch_error_is_one_line(capsys, monkeypatch):
    def failing(*args, **kwargs):
        raise OSError("cannot download x: HTTP 503\nService Unavailable\n")

    monkeypatch.setattr(download, "fetch", failing)
    assert data.main(["fetch"]) == 1
    out = capsys.readouterr().out
    assert (
        out == "Could not fetch the real dataset: cannot download x: HTTP 503 Service Unavailable\n"
    )


# --------------------------------------------------------------------------- split


def test_split_counts_on_the_real_size():
    assert data.split_counts(100_000, (0.8, 0.1, 0.1)) == (80_000, 10_000, 10_000)
    assert data.split_counts(50_001, (0.8, 0.1, 0.1)) == (40_001, 5_000, 5_000)
    assert data.split_counts(1000, (700, 200, 100)) == (700, 200, 100)


@pytest.mark.parametrize(
    "sizes, message",
    [
        ((0.8, 0.1), "three entries"),
        ((0.8, 0.3, 0.1), "sum to 1"),
        ((900, 200, 100), r"sum to 1200, not the 1000 jets"),
        ((80, 10, 10), r"sum to 100, not the 1000 jets.*fractions.*data.head\(100\)"),
        ((0, 500, 500), "positive"),
    ],
)
def test_split_sizes_that_do_not_fit(sizes, message):
    with pytest.raises(ValueError, match=message):
        data.split_counts(1000, sizes)


def test_split_counts_that_leave_jets_out_are_refused(jets):
    with pytest.raises(ValueError, match=r"sizes=\(80, 10, 10\) as counts sum to 100"):
        data.split(jets, sizes=(80, 10, 10))


@pytest.mark.parametrize("seed", [None, 1.5, "0"])
def test_split_needs_a_fixed_seed(jets, seed):
    with pytest.raises(ValueError, match=f"seed={seed!r}: the split needs a fixed int seed"):
        data.split(jets, seed=seed)


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
    """A seed names one split everywhere: literal indices, not a recomputation."""
    jets = JetData(np.arange(450, dtype=np.float32).reshape(10, 45), np.arange(10) % 2, "ten")
    train, val, test = data.split(jets, sizes=(8, 1, 1), seed=0)
    # np.random.default_rng(0).permutation(10) is [4 6 2 7 3 5 9 0 8 1] with PCG64 on any platform
    assert test.X[:, 0].tolist() == [45 * 1] and val.X[:, 0].tolist() == [45 * 8]
    assert (train.X[:, 0] // 45).tolist() == [0, 2, 3, 4, 5, 6, 7, 9]


def test_the_sample_split_is_pinned():
    """The split every notebook figure of the offline sample rests on (split seed 0)."""
    sample = data.load(source="sample")
    X = np.arange(len(sample) * 45, dtype=np.float32).reshape(-1, 45)
    train, val, test = data.split(JetData(X, sample.y, "index"), seed=0)
    assert (len(train), len(val), len(test)) == (40_000, 5_000, 5_000)
    assert (test.X[:5, 0] // 45).astype(int).tolist() == [3, 10, 16, 20, 23]
    assert (val.X[:5, 0] // 45).astype(int).tolist() == [4, 19, 27, 35, 43]
