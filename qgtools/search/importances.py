"""Hyperparameter importances: when a study has enough trials for them, and their spread over
repeated studies (notebook 09)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import optuna
from optuna.trial import TrialState

MIN_TRIALS_FOR_IMPORTANCES = 8
"""Complete trials a study needs before its hyperparameter importances are drawn (notebook 05
and the report). Optuna estimates them from the trials alone (by default in Optuna 5 with
PED-ANOVA, which compares the best tenth of the trials with the rest): from fewer trials than
this, fewer than the cpu space has hyperparameters, the ranking is noise."""


def importances_skipped(n_complete: int) -> str | None:
    """Why importances are not drawn from ``n_complete`` complete trials; ``None`` when they are.

    Args:
        n_complete: the study's complete trials.

    Returns:
        The reason, or ``None``.
    """
    if n_complete >= MIN_TRIALS_FOR_IMPORTANCES:
        return None
    return (
        f"{n_complete} complete trials, fewer than {MIN_TRIALS_FOR_IMPORTANCES}: "
        "importances would be noise"
    )


def importance_spread(studies: Sequence[optuna.Study]) -> dict[str, np.ndarray]:
    """Optuna's hyperparameter importances (PED-ANOVA, Optuna 5's default) of each study, one
    array per parameter, one value per study (0 where a study's importances leave it out), the
    parameters ordered by their mean importance. Notebook 09: which rankings survive repeats.

    Args:
        studies: repeats of one study (same space and objective).

    Raises:
        ValueError: a study with fewer than ``MIN_TRIALS_FOR_IMPORTANCES`` complete trials.

    Returns:
        Parameter name -> an array of its importance in each study.
    """
    per_study = []
    for study in studies:
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        skipped = importances_skipped(len(complete))
        if skipped:
            raise ValueError(f"Study {study.study_name!r}: {skipped}.")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            per_study.append(optuna.importance.get_param_importances(study))
    params = {name for importances in per_study for name in importances}
    table = {
        name: np.array([importances.get(name, 0.0) for importances in per_study]) for name in params
    }
    return dict(sorted(table.items(), key=lambda item: -item[1].mean()))
