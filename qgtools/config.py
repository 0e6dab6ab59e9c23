"""Fast mode and full mode: the one place that reads ``QG_FAST``.

Notebooks and command-line defaults ask :func:`sizes` how big to make things; only the
sizes change between modes, never the code path. ``load`` and training never read the
environment themselves.
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


FULL = Sizes(fast=False, n_jets=-1, max_epochs=20, n_trials=30, n_seeds=3, grid_points=3)
FAST = Sizes(fast=True, n_jets=6000, max_epochs=2, n_trials=4, n_seeds=2, grid_points=2)


def fast_mode() -> bool:
    """Whether ``QG_FAST`` asks for fast mode (``1``, ``true``, ``yes``, ``on``)."""
    value = os.environ.get("QG_FAST", "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"QG_FAST={value!r} is not understood: use QG_FAST=1 for fast mode or unset it.")


def sizes() -> Sizes:
    """The sizes for the current mode: small ones when ``QG_FAST=1``, else the full ones."""
    return FAST if fast_mode() else FULL
