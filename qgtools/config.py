"""Fast mode and full mode: the one place for notebook sizes, and the one that reads ``QG_FAST``.

Notebooks and command-line defaults ask :func:`sizes` how big to make things; only the
sizes change between modes, never the code path. ``load`` and training never read the
environment themselves. Besides the base sizes, :class:`Sizes` derives ``grid_epochs``
(per run of a hand-made grid or random search), ``trial_epochs`` (per Optuna trial) and
``study_trials`` (per study where several are compared), so no notebook computes its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    """Problem sizes for one mode.

    Attributes:
        fast: whether these are the fast (CI) sizes.
        n_jets: jets to load (``-1``: all of them).
        max_epochs: training epochs for one model.
        n_trials: trials for one search.
        n_seeds: training seeds when seed-to-seed noise is measured.
        grid_points: values per hyperparameter in a hand-made grid.
    """

    fast: bool
    n_jets: int
    max_epochs: int
    n_trials: int
    n_seeds: int
    grid_points: int

    @property
    def grid_epochs(self) -> int:
        """Epochs per run of a hand-made grid or random search (notebook 04): half of
        ``max_epochs``."""
        return max(1, self.max_epochs // 2)

    @property
    def trial_epochs(self) -> int:
        """Epochs per Optuna trial (notebooks 05-07): a quarter of ``max_epochs``; the chosen
        configuration is retrained for ``max_epochs``."""
        return max(1, self.max_epochs // 4)

    @property
    def study_trials(self) -> int:
        """Trials per study where a notebook runs several studies to compare (05, 06): half of
        ``n_trials``, at least 2."""
        return max(2, self.n_trials // 2)


FULL = Sizes(fast=False, n_jets=-1, max_epochs=20, n_trials=30, n_seeds=3, grid_points=3)
FAST = Sizes(fast=True, n_jets=6000, max_epochs=2, n_trials=4, n_seeds=2, grid_points=2)


def fast_mode() -> bool:
    """Whether ``QG_FAST`` asks for fast mode (``1``, ``true``, ``yes``, ``on``)."""
    value = os.environ.get("QG_FAST", "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(
        f"QG_FAST={value!r} is not understood: use QG_FAST=1 for fast mode or unset it."
    )


def sizes() -> Sizes:
    """The sizes for the current mode: small ones when ``QG_FAST=1``, else the full ones."""
    return FAST if fast_mode() else FULL
