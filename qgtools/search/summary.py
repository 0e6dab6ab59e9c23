"""What a run leaves behind: the summary, its parameters wrapped, and the best trial."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial


@dataclass(frozen=True)
class StudySummary:
    """What :func:`run_study` leaves behind.

    Attributes:
        study: the study's name.
        n_trials: the budget (finished trials the study should have).
        finished: complete and pruned trials now in the study.
        status: ``"done"`` (budget met), ``"stopped"`` (the stopping rule said stop before the
            budget), ``"incomplete"`` (workers stopped early: run again) or ``"failing"`` (a
            worker stopped after ``MAX_FAILS_IN_A_ROW`` failed trials).
        best_number, best_value, best_params: the best trial so far (``None`` without one).
        recovered: trials of dead workers marked failed by this run.
        exit_codes: the exit codes of every worker process started, replacements of killed
            ones included (empty when the budget was met already).
        last_fail_reason: why the last failed trial failed, if any did.
    """

    study: str
    n_trials: int
    finished: int
    status: str
    best_number: int | None = None
    best_value: float | None = None
    best_params: dict = field(default_factory=dict)
    recovered: tuple[int, ...] = ()
    exit_codes: tuple[int | None, ...] = ()
    last_fail_reason: str | None = None
    best_model: str | None = None  # the best trial's kept model file, if models were kept

    def __str__(self) -> str:
        finished = f"{self.finished} finished trial{'s' * (self.finished != 1)}"
        if self.best_value is None:
            return f"Study {self.study!r}: {finished}; no complete (and feasible) trial yet"
        return (
            f"Study {self.study!r}: {finished}; best #{self.best_number}: "
            f"validation rejection {self.best_value:.1f} with\n{format_params(self.best_params)}"
        )


def format_params(params: Mapping[str, object], width: int = 88, indent: str = "    ") -> str:
    """``name=value`` pairs, floats to 3 significant digits, wrapped into lines of at most
    ``width`` characters that each start with ``indent`` (a long line runs off a terminal, and
    JupyterLab breaks it mid-word). Notebook 06 and the report.

    Args:
        params: name -> value.
        width: the longest line.
        indent: what starts each line.

    Returns:
        The lines joined by newlines (``""`` for no parameters), each pair whole on one line, a
        comma ending every line but the last: ``    lr=0.00123, n_channels=64, batch_size=256``.
    """
    pairs = [
        f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in params.items()
    ]
    lines: list[str] = []
    for pair in pairs:
        if lines and len(indent) + len(lines[-1]) + len(pair) + 3 <= width:  # ", " and ","
            lines[-1] += f", {pair}"
        else:
            lines.append(pair)
    return ",\n".join(indent + line for line in lines)


def _best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best complete trial, feasible if the study has constraints (``study.best_trial``);
    ``None`` when there is no complete (or no feasible) trial."""
    try:
        return study.best_trial
    except ValueError:
        return None
