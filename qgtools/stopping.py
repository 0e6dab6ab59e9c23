"""When to stop a search: no improvement larger than the noise for ``patience`` finished trials.

Explained in notebook 09. Optuna's own terminator (``optuna.terminator``) is deprecated in
Optuna 5.0 and goes in 6.0, so ``qgtools`` does not build on it. The rule here is the one a
physicist would apply by eye: the best validation value is only known to within its
seed-to-seed noise, so a new best that beats the old one by less than that noise is no news.
Stop when ``patience`` finished trials in a row brought no news. The sampler's random start-up
(``startup`` trials) is never judged on its own: random draws are not expected to keep
improving, so the rule stops no earlier than ``startup + patience`` finished trials, when at least
``patience`` trials chosen by the sampler's model have brought nothing.

Use it as a study callback (:class:`NoImprovementStopper`), on a finished study
(:func:`stop_point`), or from the command line (``python -m qgtools.search run --patience N
--noise X``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def check_rule(patience: int, noise: float, startup: int = 0) -> None:
    """A ``ValueError`` naming the bad value when ``patience``, ``noise`` or ``startup`` cannot
    be used."""
    if isinstance(startup, bool) or not isinstance(startup, int) or startup < 0:
        raise ValueError(f"startup={startup!r}: use a whole number of trials, 0 or more.")
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise ValueError(
            f"patience={patience!r}: use a whole number of finished trials, 1 or more."
        )
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
        raise ValueError(
            f"noise={noise!r}: use the seed-to-seed spread of one configuration's value, a "
            "number >= 0 (train one configuration with several seeds, or run with --seeds 3)."
        )
    if not math.isfinite(noise):
        raise ValueError(f"noise={noise!r} is not finite: use a number >= 0.")


def finished_values(study: optuna.Study) -> list[float | None]:
    """The values of the study's finished trials in trial-number order (``None`` for a pruned
    trial, which never beats the best). Failed and running trials are left out."""
    trials = sorted(study.get_trials(deepcopy=False, states=FINISHED), key=lambda t: t.number)
    return [t.value if t.state == TrialState.COMPLETE else None for t in trials]


def trials_without_news(values: Sequence[float | None], noise: float) -> list[int]:
    """After each finished trial, how many trials in a row have not improved on the record by
    more than ``noise`` (maximised values; ``None`` for a pruned trial).

    The record is the value at the last improvement that counted, so many small steps add up
    to news once together they exceed the noise.
    """
    counts, record, count = [], -math.inf, 0
    for value in values:
        if value is not None and value > record + noise:
            record, count = value, 0
        else:
            count += 1
        counts.append(count)
    return counts


def stop_point(
    values: Sequence[float | None], noise: float, patience: int, startup: int = 0
) -> int | None:
    """How many finished trials the rule lets run before it says stop; ``None`` if it never does.

    Args:
        values: the finished trials' values in order (``None`` for pruned ones).
        noise: the seed-to-seed spread of one configuration's value.
        patience: finished trials in a row without news before stopping.
        startup: the sampler's random start-up trials (``search.TPE_STARTUP_TRIALS`` for TPE and
            the GP, 0 for random search); the rule never stops before ``startup + patience``.
    """
    check_rule(patience, noise, startup)
    for index, count in enumerate(trials_without_news(values, noise)):
        if count >= patience and index + 1 >= startup + patience:
            return index + 1
    return None


@dataclass
class NoImprovementStopper:
    """A study callback (``study.optimize(..., callbacks=[NoImprovementStopper(5, 1.2)])``) that
    calls ``study.stop()`` once ``patience`` finished trials in a row have not improved the best
    value by more than ``noise``. It reads the whole study, so every worker of a shared study
    sees the same verdict. Single-objective, maximised studies only.

    Attributes:
        patience: finished trials in a row without news.
        noise: the seed-to-seed spread of one configuration's value.
        startup: the sampler's random start-up trials (see :func:`stop_point`).
    """

    patience: int
    noise: float
    startup: int = 0

    def __post_init__(self) -> None:
        check_rule(self.patience, self.noise, self.startup)

    def should_stop(self, study: optuna.Study) -> bool:
        """Whether the rule says stop for the study as it is now."""
        if len(study.directions) != 1 or study.direction.name != "MAXIMIZE":
            raise ValueError(
                "NoImprovementStopper needs a single-objective study that maximises its value."
            )
        values = finished_values(study)
        return stop_point(values, self.noise, self.patience, self.startup) is not None

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.should_stop(study):
            study.stop()
