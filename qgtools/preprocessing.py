"""Feature preprocessing fitted on the training split only; explained in notebook 01."""

from __future__ import annotations

import numpy as np

PREPROCESSING_KINDS = ("none", "log", "standardize", "log+standardize")


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
