"""Fast mode and full mode: the one place for notebook sizes, and the one that reads ``QG_FAST``.

Notebooks and command-line defaults ask :func:`sizes` how big to make things; only the
sizes change between modes, never the code path. ``load`` and training never read the
environment themselves. Besides the base sizes, :class:`Sizes` derives ``grid_epochs``
(per run of a hand-made grid or random search), ``trial_epochs`` (per Optuna trial) and
``study_trials`` (per study where several are compared), so no notebook computes its own.

:func:`env_flag` is the one parser of on/off environment variables (``QG_FAST`` here,
``QG_OFFLINE`` in :mod:`qgtools.data`).
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

    @property
    def first_look_trials(self) -> int:
        """Trials of a first, hand-written study that only shows how a study runs (notebook 05):
        a sixth of ``n_trials``, at least 2."""
        return max(2, self.n_trials // 6)


FULL = Sizes(fast=False, n_jets=-1, max_epochs=20, n_trials=30, n_seeds=3, grid_points=3)
FAST = Sizes(fast=True, n_jets=6000, max_epochs=2, n_trials=4, n_seeds=2, grid_points=2)


FLAG_SPELLINGS: dict[str, bool] = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}
"""How an on/off environment variable may be spelled: any case, surrounding spaces ignored;
unset or empty means off."""


def env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is on.

    Args:
        name: e.g. ``"QG_FAST"`` or ``"QG_OFFLINE"``.

    Returns:
        True for 1, true, yes, on; False for 0, false, no, off, empty or unset (any case,
        surrounding spaces ignored).

    Raises:
        ValueError: any other value, named with the variable and the allowed spellings.
    """
    raw = os.environ.get(name, "")
    value = raw.strip().lower()
    if not value:
        return False
    if value in FLAG_SPELLINGS:
        return FLAG_SPELLINGS[value]
    raise ValueError(
        f"{name}={raw!r} is not understood: use {name}=1 (or true, yes, on) to turn it on, "
        f"{name}=0 (or false, no, off) or unset it to turn it off; any case."
    )


def fast_mode() -> bool:
    """Whether ``QG_FAST`` asks for fast mode (see :func:`env_flag` for the spellings)."""
    return env_flag("QG_FAST")


def sizes() -> Sizes:
    """The sizes for the current mode: small ones when ``QG_FAST=1``, else the full ones."""
    return FAST if fast_mode() else FULL
