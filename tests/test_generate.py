"""Tests of the offline jet generator (need the ``generate`` extra)."""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest

from qgtools import generate as gen

N_JETS = 200
needs_backends = pytest.mark.skipif(
    not all(importlib.util.find_spec(name) for name in ("pythia8mc", "fastjet")),
    reason="needs the generate extra (pythia8mc, fastjet)",
)


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, np.ndarray, dict]:
    return gen.generate(N_JETS, seed=7, workers=1)


@needs_backends
def test_shape_dtype_and_balance(sample) -> None:
    X, y, meta = sample
    assert X.shape == (N_JETS, 45) and X.dtype == np.float32
    assert y.shape == (N_JETS,) and y.dtype == np.int8
    assert set(np.unique(y)) == {0, 1} and y.sum() == N_JETS // 2
    assert meta["jets"] == N_JETS and len(meta["features"]) == 45


@needs_backends
def test_taus_physical(sample) -> None:
    X, y, _ = sample
    assert np.isfinite(X).all() and (X >= 0).all()
    taus = X.reshape(len(X), gen.N_MAX, len(gen.BETAS)).astype(np.float64)
    assert (taus[:, 0] > 0).all()
    rises = np.diff(taus, axis=1) > 1e-5 * taus[:, :-1] + 1e-7
    # beta = 2: each kT axis is (nearly) the pT-weighted centroid of its
    # subjet, so splitting a subjet never raises tau: non-increasing in N
    assert not rises[..., 2].any()
    # beta = 0.5, 1: exclusive-kT axes are not optimised, so tau_{N+1} > tau_N
    # happens (mostly tau_2 > tau_1); only the typical jet must fall with N
    assert rises[..., :2].mean() < 0.1
    assert (np.diff(np.median(taus, axis=0), axis=0) <= 0).all()
    # gluon jets are wider than quark jets
    assert np.median(taus[y == 0, 0, 1]) > np.median(taus[y == 1, 0, 1])


@needs_backends
def test_same_seed_same_jets_whatever_the_workers(sample) -> None:
    X1, y1, _ = sample
    X2, y2, _ = gen.generate(N_JETS, seed=7, workers=2)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)


def test_odd_number_of_jets_is_refused() -> None:
    with pytest.raises(ValueError, match="even"):
        gen.generate(11)


def test_nsubjettiness_by_hand() -> None:
    y = np.array([0.0, 0.1, 0.0])
    phi = np.array([0.0, 0.0, 2 * np.pi - 0.2])  # azimuth wraps around
    pt = np.array([3.0, 1.0, 1.0])
    axes = [np.array([[0.0, 0.0]]), np.array([[0.0, 0.0], [0.1, 0.0]])]
    taus = gen.nsubjettiness(y, phi, pt, axes, pt_jet=5.0).reshape(gen.N_MAX, 3)
    np.testing.assert_allclose(taus[0], [(0.1**0.5 + 0.2**0.5) / 5, 0.3 / 5, 0.05 / 5])
    np.testing.assert_allclose(taus[1], [0.2**0.5 / 5, 0.2 / 5, 0.04 / 5])
    assert (taus[2:] == 0).all()


@needs_backends
def test_cli_writes_npz(tmp_path) -> None:
    out = tmp_path / "jets.npz"
    gen.main(["--jets", "4", "--seed", "3", "--out", str(out), "--no-progress"])
    with np.load(out, allow_pickle=False) as f:
        assert set(f.files) == {"X", "y", "meta"}
        assert f["X"].shape == (4, 45) and f["y"].dtype == np.int8
        meta = json.loads(str(f["meta"]))
    assert meta["seed"] == 3 and meta["pthat_window"] == [gen.PTHAT_MIN, gen.PTHAT_MAX]
    assert "versions" in meta and "--jets 4" in meta["command"]


def _must_not_generate(*args, **kwargs):
    raise AssertionError("generation started before --out was checked")


@pytest.mark.parametrize(
    "out, message",
    [
        ("{tmp}/missing/jets.npz", "the folder {tmp}/missing does not exist: create it first"),
        ("{tmp}", "{tmp} is a folder: give a file name ending in .npz"),
        ("{tmp}/jets", "must end in .npz"),
        ("{tmp}/file.txt/jets.npz", "{tmp}/file.txt is a file, not a folder"),
    ],
)
def test_a_bad_out_path_is_refused_before_generating(tmp_path, monkeypatch, capsys, out, message):
    (tmp_path / "file.txt").write_text("keep me")
    monkeypatch.setattr(gen, "generate", _must_not_generate)
    with pytest.raises(SystemExit) as exit_info:
        gen.main(["--jets", "4", "--out", out.format(tmp=tmp_path), "--no-progress"])
    assert exit_info.value.code == 2
    assert (
        f"--out {out.format(tmp=tmp_path)}: {message.format(tmp=tmp_path)}"
        in capsys.readouterr().err
    )
    assert (tmp_path / "file.txt").read_text() == "keep me"


def test_an_unwritable_out_folder_is_refused_before_generating(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    monkeypatch.setattr(gen, "generate", _must_not_generate)
    real_open = os.open

    def refuse_in_locked(path, *args, **kwargs):  # chmod cannot stop root, so refuse here
        if os.path.dirname(os.fspath(path)) == str(folder):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse_in_locked)
    with pytest.raises(SystemExit):
        gen.main(["--jets", "4", "--out", str(folder / "jets.npz"), "--no-progress"])
    assert f"cannot write to {folder}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--jets", "0"], "n_jets must be a positive even number"),
        (["--jets", "4", "--workers", "0"], "workers must be >= 1"),
        (["--jets", "4", "--seed", "-1"], "seed must be >= 0"),
    ],
)
def test_bad_numbers_are_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.setattr(gen, "_import_backends", lambda: None)  # refused before Pythia is needed
    with pytest.raises(SystemExit) as exit_info:
        gen.main([*args, "--out", str(tmp_path / "jets.npz"), "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "jets.npz").exists()
