"""Baselines the MLP must beat, on the same split; shown in notebook 03.

* the best single observable used as a cut (chosen on the training split),
* the classic tau_2/tau_1 ratio (beta = 1),
* gradient-boosted trees on the 45 log-taus (scikit-learn's HistGradientBoostingClassifier).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qgtools import metrics
from qgtools.data import DEFAULT_SPLIT, FEATURE_NAMES, SPLIT_NAMES, JetData
from qgtools.data import split as split_data
from qgtools.preprocessing import Preprocessor

TAU1_BETA1, TAU2_BETA1 = FEATURE_NAMES.index("tau_1^(1)"), FEATURE_NAMES.index("tau_2^(1)")


@dataclass(frozen=True)
class BaselineResult:
    """One baseline's figures on one split; ``scores`` are its quark scores there and
    ``labels`` the true labels of the same jets."""

    name: str
    rejection: float
    auc: float
    split: str
    scores: np.ndarray
    labels: np.ndarray

    def __repr__(self) -> str:
        return f"{self.name}: rejection {self.rejection:.1f}, AUC {self.auc:.3f} ({self.split})"


def best_single_observable(train: JetData) -> tuple[int, float]:
    """The feature whose cut separates best on ``train`` (by AUC), and its sign.

    Returns ``(index, sign)``: the quark score is ``sign * X[:, index]`` (gluons are wider, so
    the sign is usually -1).
    """
    aucs = np.array([metrics.roc_auc(train.y, train.X[:, j]) for j in range(train.X.shape[1])])
    j = int(np.argmax(np.abs(aucs - 0.5)))
    return j, (1.0 if aucs[j] >= 0.5 else -1.0)


def tau21(X: np.ndarray) -> np.ndarray:
    """tau_2/tau_1 at beta = 1 (0 where tau_1 is 0)."""
    tau1 = X[:, TAU1_BETA1].astype(np.float64)
    return np.divide(X[:, TAU2_BETA1], tau1, out=np.zeros(len(X)), where=tau1 > 0)


def run_baselines(
    data: JetData,
    *,
    split_seed: int = 0,
    evaluate_on: str = "val",
    split_sizes: Sequence[float] | Sequence[int] = DEFAULT_SPLIT,
    seed: int = 0,
    include: Sequence[str] = ("single", "tau21", "trees"),
) -> list[BaselineResult]:
    """Fit the baselines on the training split and score them on ``evaluate_on``.

    Args:
        data: all jets, split like :func:`qgtools.train.fit` does (same ``split_seed``).
        evaluate_on: ``"val"`` (default) or ``"test"`` (only for a closing table).
        seed: the boosted trees' random state.
        include: which of ``"single"``, ``"tau21"``, ``"trees"`` to run.
    """
    if evaluate_on not in SPLIT_NAMES:
        raise ValueError(f"evaluate_on={evaluate_on!r}: use 'train', 'val' or 'test'.")
    unknown = set(include) - {"single", "tau21", "trees"}
    if unknown:
        raise ValueError(f"Unknown baseline(s) {sorted(unknown)}: use 'single', 'tau21', 'trees'.")
    train, val, test = split_data(data, split_sizes, split_seed)
    target = {"train": train, "val": val, "test": test}[evaluate_on]
    results = []

    def add(name: str, scores: np.ndarray) -> None:
        rejection = metrics.background_rejection(target.y, scores)
        auc = metrics.roc_auc(target.y, scores)
        results.append(BaselineResult(name, rejection, auc, evaluate_on, scores, target.y))

    if "single" in include:
        j, sign = best_single_observable(train)
        add(
            f"best single observable ({FEATURE_NAMES[j]})", sign * target.X[:, j].astype(np.float64)
        )
    if "tau21" in include:
        sign = 1.0 if metrics.roc_auc(train.y, tau21(train.X)) >= 0.5 else -1.0
        add("tau_2/tau_1 (beta=1)", sign * tau21(target.X))
    if "trees" in include:
        add("boosted trees (45 log-taus)", boosted_trees(train, seed=seed).predict(target.X))
    return results


class _TreeModel:
    def __init__(self, classifier, preprocessor: Preprocessor) -> None:
        self.classifier, self.preprocessor = classifier, preprocessor

    def predict(self, X_raw: np.ndarray) -> np.ndarray:
        return self.classifier.predict_proba(self.preprocessor.transform(X_raw))[:, 1]


def boosted_trees(train: JetData, seed: int = 0) -> _TreeModel:
    """HistGradientBoostingClassifier on the log-taus of ``train`` (early stopping on 10% of it)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    preprocessor = Preprocessor("log").fit(train.X)
    classifier = HistGradientBoostingClassifier(
        max_iter=300,
        learning_rate=0.1,
        early_stopping=True,
        validation_fraction=0.1,
        random_state=seed,
    )
    classifier.fit(preprocessor.transform(train.X), train.y)
    return _TreeModel(classifier, preprocessor)
