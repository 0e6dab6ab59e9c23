"""The quark/gluon N-subjettiness data: loading, splitting, preprocessing, batching.

Explained in ``notebooks/01_data.ipynb``. Three sources of the same 45 observables:

* ``"energyflow"``: the real EnergyFlow file ``QG_nsubs.npz`` (100,000 jets, Pythia 8.230),
  downloaded from Zenodo with a bounded timeout and verified by SHA-256.
* ``"sample"``: the offline sample shipped inside this package, our own regeneration with
  ``qgtools.generate`` (a newer Pythia): faithful in spirit, *not* the EnergyFlow file.
* a path to a local ``.npz`` with keys ``X`` and ``y`` (the workshop USB-stick case).

``load()`` (``source="auto"``) takes the real file when it can be had and the sample when not,
and says so in one warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from lightning.pytorch import LightningDataModule

N_AXES = 15
BETAS = (0.5, 1.0, 2.0)
FEATURE_NAMES: tuple[str, ...] = tuple(
    f"tau_{n}^({beta:g})" for n in range(1, N_AXES + 1) for beta in BETAS
)
"""The 45 observables in the dataset's order: tau_1^(0.5), tau_1^(1), tau_1^(2), tau_2^(0.5), ..."""

# As energyflow 1.4.0 has them in energyflow/datasets/qg_nsubs.py (a test checks they agree).
ENERGYFLOW_FILENAME = "QG_nsubs.npz"
ENERGYFLOW_URL = "https://zenodo.org/records/10850472/files/QG_nsubs.npz?download=1"
ENERGYFLOW_SHA256 = "a99f771147af9b207356c990430cfeba6b6aa96fe5cff8263450ff3a31ab0997"
ENERGYFLOW_N_JETS = 100_000

SAMPLE_RESOURCE = "sample/qg_nsubs_sample.npz"
PREPROCESSING_KINDS = ("none", "log", "standardize", "log+standardize")
SPLIT_NAMES = ("train", "val", "test")
HOW_TO_GET_REAL = (
    "To use the real EnergyFlow file, run `python -m qgtools.data fetch` on a machine with a "
    f"network, or copy {ENERGYFLOW_FILENAME} into $QG_DATA_DIR/datasets/ (default "
    "~/.energyflow/datasets/)."
)


class DataSourceWarning(UserWarning):
    """Warned once by ``load(source="auto")`` when it falls back to the offline sample."""


@dataclass(frozen=True)
class JetData:
    """Jets as arrays, validated on construction.

    Attributes:
        X: float32 array (n, 45) of N-subjettiness values, in ``FEATURE_NAMES`` order.
        y: int64 array (n,), 1 = quark, 0 = gluon.
        source: short human label of which data this is, with its jet count.
        feature_names: the column names.
    """

    X: np.ndarray
    y: np.ndarray
    source: str
    feature_names: tuple[str, ...] = field(default=FEATURE_NAMES)

    def __post_init__(self) -> None:
        X, y = _validated_arrays(self.X, self.y, where=self.source)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        if len(self.feature_names) != X.shape[1]:
            raise ValueError(
                f"{len(self.feature_names)} feature names for {X.shape[1]} columns in {self.source}."
            )

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        quarks = int(self.y.sum())
        return f"JetData({len(self)} jets: {quarks} quark, {len(self) - quarks} gluon; {self.source})"

    def subset(self, index: np.ndarray | slice, label: str) -> JetData:
        """The jets at ``index``, labelled ``"<source>, <label>"`` with the new count."""
        X, y = self.X[index], self.y[index]
        return JetData(X, y, source=f"{_base_source(self.source)}, {label}: {len(y)} jets",
                       feature_names=self.feature_names)


def _base_source(source: str) -> str:
    """The source label without its trailing jet count."""
    return source.rsplit(": ", 1)[0] if source.endswith(" jets") else source


def _validated_arrays(X: np.ndarray, y: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes, finiteness and labels; return float32 X and int64 y."""
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] != len(FEATURE_NAMES):
        raise ValueError(
            f"X in {where} has shape {X.shape}; expected (n_jets, {len(FEATURE_NAMES)}): "
            "the 45 N-subjettiness values tau_N^beta, N = 1..15, beta in (0.5, 1, 2)."
        )
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"y in {where} has shape {y.shape}; expected ({len(X)},), one label per jet.")
    if not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"X in {where} has dtype {X.dtype}; expected numbers.")
    bad_rows = ~np.isfinite(X).all(axis=1)
    if bad_rows.any():
        first = np.flatnonzero(bad_rows)[:5].tolist()
        raise ValueError(
            f"X in {where} has non-finite values (NaN or inf) in {int(bad_rows.sum())} of {len(X)} "
            f"rows (first rows: {first}). Drop or repair those jets before loading."
        )
    labels = np.unique(y)
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(
            f"y in {where} has labels {labels[:10].tolist()}; expected only 1 (quark) and 0 (gluon)."
        )
    return X.astype(np.float32, copy=False), y.astype(np.int64, copy=False)


# --------------------------------------------------------------------------- loading


def load(num_data: int = -1, source: str | os.PathLike = "auto", cache_dir: str | os.PathLike | None = None,
         timeout: float = 30.0) -> JetData:
    """Load the quark/gluon jets.

    Args:
        num_data: take the first ``num_data`` jets, as energyflow does; ``-1`` takes all.
        source: ``"auto"``, ``"energyflow"``, ``"sample"`` or a path to a local ``.npz``
            with keys ``X`` and ``y``. ``"auto"`` uses the cached real file if valid, else
            downloads it (unless ``QG_OFFLINE=1``), else falls back to the shipped sample with
            one :class:`DataSourceWarning` saying why.
        cache_dir: where the real file is cached (``<cache_dir>/datasets/QG_nsubs.npz``, the
            layout energyflow uses); default ``$QG_DATA_DIR``, else ``~/.energyflow``.
        timeout: seconds without progress before a download is abandoned.

    Returns:
        A :class:`JetData` whose ``source`` says which data it is.
    """
    if not isinstance(num_data, (int, np.integer)) or isinstance(num_data, bool) or num_data < -1 or num_data == 0:
        raise ValueError(f"num_data={num_data!r}: use -1 for all jets or a positive number of jets.")
    if isinstance(source, os.PathLike) or (isinstance(source, str) and source.endswith(".npz")):
        data = load_npz(source)
    elif source == "sample":
        data = load_sample()
    elif source == "energyflow":
        data = _load_energyflow_file(fetch(cache_dir, timeout=timeout))
    elif source == "auto":
        data = _load_auto(cache_dir, timeout)
    else:
        raise ValueError(
            f"Unknown data source {source!r}: use 'auto', 'energyflow', 'sample' or a path to a .npz file."
        )
    if num_data == -1:
        return data
    if num_data > len(data):
        raise ValueError(f"num_data={num_data} but {data.source} holds only {len(data)} jets.")
    return JetData(data.X[:num_data], data.y[:num_data], source=f"{_base_source(data.source)}: {num_data} jets")


def _load_auto(cache_dir: str | os.PathLike | None, timeout: float) -> JetData:
    path = cached_path(cache_dir)
    reason = None
    if path.exists():
        if sha256(path) == ENERGYFLOW_SHA256:
            return _load_energyflow_file(path)
        reason = f"the cached file {path} is corrupt (its SHA-256 does not match)"
    if os.environ.get("QG_OFFLINE", "").strip() in ("1", "true", "yes", "on"):
        reason = reason or "QG_OFFLINE=1 asks not to download"
    else:
        try:
            return _load_energyflow_file(fetch(cache_dir, timeout=timeout))
        except (OSError, ValueError) as error:
            reason = (reason + "; the download failed too" if reason else "the download failed") + f" ({error})"
    data = load_sample()
    warnings.warn(
        f"Using {data.source}, not the real EnergyFlow dataset, because {reason}. {HOW_TO_GET_REAL}",
        DataSourceWarning, stacklevel=3,
    )
    return data


def load_npz(path: str | os.PathLike, source: str | None = None) -> JetData:
    """Load a local ``.npz`` with keys ``X`` and ``y``; errors name the file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"No data file at {path}: check the path, or use source='sample' for the offline sample.")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [key for key in ("X", "y") if key not in f.files]
            if missing:
                raise ValueError(f"{path} has no key(s) {missing}; it holds {f.files}. Expected arrays X (n, 45) and y (n,).")
            X, y = f["X"], f["y"]
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise ValueError(f"{path} is truncated or not a valid .npz file ({error}). Copy or download it again.") from error
    except ValueError as error:
        if str(path) in str(error):
            raise
        raise ValueError(f"{path} could not be read as an .npz of arrays ({error}).") from error
    X, y = _validated_arrays(X, y, where=str(path))
    return JetData(X, y, source=source or f"local file {path.name}: {len(y)} jets")


def _load_energyflow_file(path: Path) -> JetData:
    data = load_npz(path)
    return JetData(data.X, data.y, source=f"EnergyFlow QG_nsubs (Pythia 8.230): {len(data)} jets")


def sample_path() -> Path:
    """Path of the offline sample shipped inside the package."""
    return Path(str(resources.files("qgtools").joinpath(SAMPLE_RESOURCE)))


def sample_metadata() -> dict:
    """The generator settings and versions stored with the shipped sample."""
    with np.load(sample_path(), allow_pickle=False) as f:
        return json.loads(str(f["meta"])) if "meta" in f.files else {}


def load_sample() -> JetData:
    """The offline sample: our regeneration with ``qgtools.generate``, not the EnergyFlow file."""
    path = sample_path()
    if not path.is_file():
        raise ValueError(f"The offline sample is missing from the installed package ({path}); reinstall qgtools.")
    pythia = sample_metadata().get("versions", {}).get("pythia8mc", "8.3")
    data = load_npz(path)
    return JetData(data.X, data.y, source=f"offline sample (qgtools regeneration, Pythia {pythia}): {len(data)} jets")


# --------------------------------------------------------------------------- download


def cached_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the real file is cached: ``cache_dir``, else ``$QG_DATA_DIR``, else ``~/.energyflow``."""
    base = cache_dir or os.environ.get("QG_DATA_DIR") or "~/.energyflow"
    return Path(base).expanduser() / "datasets" / ENERGYFLOW_FILENAME


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(cache_dir: str | os.PathLike | None = None, timeout: float = 30.0, url: str | None = None,
          expected_sha256: str | None = None, progress: bool = False) -> Path:
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
                f"The file downloaded from {url} has SHA-256 {got}, not {expected_sha256}; it is kept at "
                f"{bad} for inspection and was not used. Try again later, or copy a verified {path.name} "
                f"to {path}."
            )
        if path.exists():
            path.replace(path.with_name(path.name + ".corrupt"))
        tmp.replace(path)
        return path
    finally:
        tmp.unlink(missing_ok=True)


def _download(url: str, out, timeout: float, progress: bool) -> None:
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
    except (socket.timeout, TimeoutError) as error:
        raise OSError(f"no progress for {timeout:g} s downloading {url} ({error})") from error
    except urllib.error.URLError as error:
        raise OSError(f"cannot download {url}: {error.reason}") from error


# --------------------------------------------------------------------------- splitting


def split_counts(n: int, sizes: Sequence[float] | Sequence[int]) -> tuple[int, int, int]:
    """Jet counts for a three-way split.

    Fractions (floats summing to 1): the first two parts get ``round(fraction * n)`` and the
    last part the rest, so 100,000 jets with (0.8, 0.1, 0.1) give exactly 80,000/10,000/10,000.
    Counts (ints summing to at most n) are used as they are; the remaining jets are unused.
    """
    if len(sizes) != 3:
        raise ValueError(f"sizes={tuple(sizes)} must have three entries: (train, val, test).")
    if all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in sizes):
        counts = tuple(int(s) for s in sizes)
        if min(counts) < 1 or sum(counts) > n:
            raise ValueError(f"sizes={counts} as counts must be positive and sum to at most {n} jets.")
        return counts  # type: ignore[return-value]
    fractions = [float(s) for s in sizes]
    if min(fractions) <= 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(
            f"sizes={tuple(sizes)} as fractions must be positive and sum to 1 (they sum to {sum(fractions):g}); "
            "or give three ints (jet counts)."
        )
    n_train, n_val = round(fractions[0] * n), round(fractions[1] * n)
    counts = (n_train, n_val, n - n_train - n_val)
    if min(counts) < 1:
        raise ValueError(f"{n} jets are too few to split as {tuple(sizes)}: a part would be empty.")
    return counts


def split(data: JetData, sizes: Sequence[float] | Sequence[int] = (0.8, 0.1, 0.1), seed: int = 0
          ) -> tuple[JetData, JetData, JetData]:
    """Split into (train, val, test) by a seeded random permutation (not stratified).

    ``np.random.default_rng(seed).permutation`` is the same on every machine, so a seed
    names one split everywhere. The split seed is not a training seed: keep it fixed while
    training seeds vary, so every model is judged on the same locked test split.
    See :func:`split_counts` for the rounding.
    """
    n_train, n_val, n_test = split_counts(len(data), sizes)
    order = np.random.default_rng(seed).permutation(len(data))
    parts = np.split(order[: n_train + n_val + n_test], [n_train, n_train + n_val])
    train, val, test = (data.subset(np.sort(idx), name) for idx, name in zip(parts, ("train", "val", "test")))
    return train, val, test


# --------------------------------------------------------------------------- preprocessing


class Preprocessor:
    """Feature preprocessing fitted on the training split only.

    Kinds: ``"none"``, ``"log"``, ``"standardize"``, ``"log+standardize"``.
    The log is ``log(max(x, floor_j))`` with ``floor_j`` half the smallest positive value of
    feature j in the training data (1e-12 if it has none): taus are exactly 0 for jets with
    no more constituents than N, and these land just below the smallest real value instead
    of at -inf. Standardisation uses training means and standard deviations (1 where 0).
    The statistics are plain arrays (:meth:`state_dict`), so a saved model can reuse them.
    """

    def __init__(self, kind: str = "none") -> None:
        if kind not in PREPROCESSING_KINDS:
            raise ValueError(f"Unknown preprocessing {kind!r}: use one of {PREPROCESSING_KINDS}.")
        self.kind = kind
        self.floor: np.ndarray | None = None
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    @property
    def fitted(self) -> bool:
        return self.kind == "none" or self.mean is not None or self.floor is not None

    def fit(self, X: np.ndarray) -> Preprocessor:
        """Learn the statistics from training features ``X``; returns self."""
        X = np.asarray(X, dtype=np.float64)
        if "log" in self.kind:
            positive = np.where(X > 0, X, np.inf).min(axis=0)
            self.floor = np.where(np.isfinite(positive), positive / 2, 1e-12)
            X = np.log(np.maximum(X, self.floor))
        if "standardize" in self.kind:
            self.mean = X.mean(axis=0)
            std = X.std(axis=0)
            self.std = np.where(std > 0, std, 1.0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Apply the fitted transform; returns float32."""
        if not self.fitted:
            raise ValueError(f"Preprocessor({self.kind!r}) is not fitted: call fit(X_train) first.")
        X = np.asarray(X, dtype=np.float64)
        if "log" in self.kind:
            X = np.log(np.maximum(X, self.floor))
        if "standardize" in self.kind:
            X = (X - self.mean) / self.std
        return X.astype(np.float32)

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return self.fit(X).transform(X)

    def state_dict(self) -> dict[str, object]:
        """Kind and statistics as plain lists (JSON- and ``weights_only``-safe)."""
        state: dict[str, object] = {"kind": self.kind}
        for name in ("floor", "mean", "std"):
            value = getattr(self, name)
            if value is not None:
                state[name] = value.tolist()
        return state

    @classmethod
    def from_state_dict(cls, state: dict) -> Preprocessor:
        """Rebuild a fitted preprocessor from :meth:`state_dict`."""
        pre = cls(state["kind"])
        for name in ("floor", "mean", "std"):
            if name in state:
                setattr(pre, name, np.asarray(state[name], dtype=np.float64))
        return pre

    def __repr__(self) -> str:
        return f"Preprocessor({self.kind!r}, fitted={self.fitted})"


# --------------------------------------------------------------------------- batching


class TensorBatches:
    """Mini-batches sliced from in-memory tensors (no per-sample collate).

    Each pass draws a permutation from ``seed`` and the pass number, so epochs differ but a
    run is reproducible. With ``shuffle=False`` batches come in order. With
    ``batches_per_step=k`` each item is k consecutive mini-batches in one chunk (the model
    splits it again), which cuts the per-step overhead of a training framework.
    """

    def __init__(self, X, y, batch_size: int, shuffle: bool = True, seed: int = 0,
                 batches_per_step: int = 1) -> None:
        if batch_size < 1 or batches_per_step < 1:
            raise ValueError(f"batch_size={batch_size} and batches_per_step={batches_per_step} must be positive.")
        self.batches_per_step = batches_per_step
        self.X = torch.as_tensor(X, dtype=torch.float32)
        self.y = torch.as_tensor(y, dtype=torch.float32)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.y) // (self.batch_size * self.batches_per_step))

    def __iter__(self) -> Iterator[tuple]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(len(self.y), generator=generator)
            X, y = self.X[order], self.y[order]
        else:
            X, y = self.X, self.y
        self.epoch += 1
        step = self.batch_size * self.batches_per_step
        for start in range(0, len(y), step):
            yield X[start:start + step], y[start:start + step]


class QGDataModule(LightningDataModule):
    """Train/val(/test) batches from in-memory tensors, preprocessed by a fitted Preprocessor.

    Args:
        train, val, test: the splits (raw features).
        preprocessor: fitted on ``train`` here if not fitted yet; default ``"none"``.
        batch_size: training batch size; validation and test use ``eval_batch_size``.
        seed: seeds the per-epoch shuffling of the training batches.
        input_channels: use only the first k features.
        batches_per_step: mini-batches per training item (see :class:`TensorBatches`).
    """

    def __init__(self, train: JetData, val: JetData, test: JetData | None = None,
                 preprocessor: Preprocessor | None = None, batch_size: int = 100, seed: int = 0,
                 input_channels: int = len(FEATURE_NAMES), eval_batch_size: int = 10_000,
                 batches_per_step: int = 1) -> None:
        super().__init__()
        self.preprocessor = preprocessor or Preprocessor("none")
        if not self.preprocessor.fitted:
            self.preprocessor.fit(train.X)
        k = input_channels
        self.train_batches = TensorBatches(self.preprocessor.transform(train.X)[:, :k], train.y,
                                           batch_size, shuffle=True, seed=seed,
                                           batches_per_step=batches_per_step)
        self.val_batches = TensorBatches(self.preprocessor.transform(val.X)[:, :k], val.y,
                                         eval_batch_size, shuffle=False)
        self.test_batches = None if test is None else TensorBatches(
            self.preprocessor.transform(test.X)[:, :k], test.y, eval_batch_size, shuffle=False)

    def train_dataloader(self) -> TensorBatches:
        return self.train_batches

    def val_dataloader(self) -> TensorBatches:
        return self.val_batches

    def test_dataloader(self) -> TensorBatches:
        if self.test_batches is None:
            raise ValueError("This QGDataModule was built without a test split.")
        return self.test_batches


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m qgtools.data fetch|info``: fetch and verify the real file, or say what loads."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m qgtools.data", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fetch_cmd = commands.add_parser("fetch", help="download and verify the real EnergyFlow file into the cache")
    fetch_cmd.add_argument("--cache-dir", default=None, help="default: $QG_DATA_DIR, else ~/.energyflow")
    fetch_cmd.add_argument("--timeout", type=float, default=30.0, help="seconds without progress (default 30)")
    info_cmd = commands.add_parser("info", help="say which data load() gives here")
    info_cmd.add_argument("--source", default="auto")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        try:
            path = fetch(args.cache_dir, timeout=args.timeout, progress=True)
        except (OSError, ValueError) as error:
            print(f"Could not fetch the real dataset: {error}")
            return 1
        print(f"OK: {path} is the verified EnergyFlow file (SHA-256 {ENERGYFLOW_SHA256[:12]}...).")
        return 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load(source=args.source)
    for warning in caught:
        print(f"Note: {warning.message}")
    print(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
