"""The report: the best trials, where the best kept model is, and the plots as PNG files."""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from qgtools.search.artifacts import artifacts_beside, model_file
from qgtools.search.importances import importances_skipped
from qgtools.search.storage import _open_existing
from qgtools.search.summary import _best_trial, format_params


def report(
    study: str,
    storage: str | os.PathLike | None = None,
    out: str | os.PathLike = "reports",
    artifact_dir: str | os.PathLike | None = None,
) -> list[Path]:
    """Print the best trials and write the plots as PNG files; returns their paths.

    The plots: the optimisation history, the hyperparameter importances (only from
    ``MIN_TRIALS_FOR_IMPORTANCES`` complete trials on; fewer are said in a line instead) and
    :func:`qgtools.plots.slice_plot` of every hyperparameter, with the objective's name on the
    y axes and fonts that stay readable at the PNG's own size. No contour plot: from a few trials
    in a space of many dimensions it interpolates where the sampler went, not the objective.

    Optuna's warnings about the plots (experimental API, parameters with one value in a small
    study) are silenced here only, not for the caller. A study that does not exist is a
    ``ValueError`` naming the studies there, and creates no file (no storage, no ``out``).
    When the best trial kept its model (``--keep-models``), says where it is (in
    ``artifact_dir``, by default beside the storage).

    Args:
        study: the study's name.
        storage: its storage; ``None``: ``$QG_STORAGE``, else ``qg-studies.journal``.
        out: the folder for the plots (created).
        artifact_dir: where the run kept its models, if not beside the storage.

    Returns:
        The paths of the plots written (empty without a complete trial).

    Raises:
        ValueError: no such study or storage.
    """
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module="optuna")
            return _report(study, storage, out, artifact_dir)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _report(
    study: str,
    storage: str | os.PathLike | None,
    out: str | os.PathLike,
    artifact_dir: str | os.PathLike | None = None,
) -> list[Path]:
    the_study = optuna.load_study(study_name=study, storage=_open_existing(study, storage))
    complete = the_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    states = {
        state.name: len(the_study.get_trials(deepcopy=False, states=(state,)))
        for state in TrialState
    }
    print(f"Study {study!r}: {states}")
    _say_fail_reasons(the_study)
    if not complete:
        print("No complete trial yet.")
        return []
    for trial in sorted(complete, key=lambda t: -t.values[0])[:5]:
        values = ", ".join(f"{v:.4g}" for v in trial.values)
        params = format_params(trial.params, indent=" " * 8)
        over = " (infeasible)" if any(v > 0 for v in trial.constraints.values()) else ""
        print(f"  #{trial.number:<4} value {values}{over} with\n{params}")
    _say_best_model(the_study, storage, artifact_dir)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    file_stem = re.sub(r"[/\\]", "_", study)  # a study made elsewhere may hold them
    written = []
    for name, draw in _report_plots(the_study, complete).items():
        path = folder / f"{file_stem}-{name}.png"
        if _save_plot(draw, path, name):
            written.append(path)
    return written


def _say_fail_reasons(the_study: optuna.Study) -> None:
    """Print why the failed trials failed, each reason once with its count, most common first."""
    failed = the_study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    reasons = Counter(
        t.user_attrs.get("fail_reason") or t.system_attrs.get("fail_reason") or "no reason kept"
        for t in failed
    )
    for reason, count in reasons.most_common():
        print(f"  failed: {reason} ({count} trial{'s' if count > 1 else ''})")


def _say_best_model(
    the_study: optuna.Study,
    storage: str | os.PathLike | None,
    artifact_dir: str | os.PathLike | None,
) -> None:
    """Print where the best trial's kept model is, if it kept one."""
    best = _best_trial(the_study) if len(the_study.directions) == 1 else None
    if best is None or "model_artifact" not in best.user_attrs:
        return
    try:
        folder = artifact_dir if artifact_dir is not None else artifacts_beside(storage)
        path = model_file(best, folder)
    except ValueError as error:
        print(f"Best trial #{best.number} kept a model, but: {error}")
        return
    size = path.stat().st_size / 1e6
    print(
        f"Best trial #{best.number}'s model: {path} ({size:.2f} MB); "
        "load it with qgtools.model.load_model(path)"
    )


def _report_plots(the_study: optuna.Study, complete: list[FrozenTrial]) -> dict[str, Callable]:
    """The report's plots by name, each a function that draws it on a new figure."""
    from matplotlib import ticker
    from optuna.visualization import matplotlib as ovm

    from qgtools import plots

    target = (lambda t: t.values[0]) if len(the_study.directions) > 1 else None
    target_name = _target_name(the_study)
    params = list(dict.fromkeys(name for trial in complete for name in trial.params))

    def history() -> None:
        ax = ovm.plot_optimization_history(the_study, target=target, target_name=target_name)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))

    def importances() -> None:
        skipped = importances_skipped(len(complete))
        if skipped:
            raise ValueError(skipped)
        ovm.plot_param_importances(the_study, target=target, target_name=target_name)

    return {
        "history": history,
        "importances": importances,
        "slice": lambda: plots.slice_plot(complete, params, target_name),
    }


def _target_name(the_study: optuna.Study) -> str:
    """The (first) objective's name for the plots' axes."""
    if the_study.metric_names:
        return the_study.metric_names[0]
    return "validation rejection" if "settings" in the_study.user_attrs else "objective value"


def _save_plot(draw: Callable[[], object], path: Path, name: str) -> bool:
    """Draw a plot with readable fonts and save it as ``path``; say so, or why it was skipped."""
    import matplotlib
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"font.size": 12, "figure.dpi": 100}):
        try:
            draw()
        except (ValueError, RuntimeError, ZeroDivisionError) as error:
            plt.close("all")
            print(f"  ({name} plot skipped: {error})")
            return False
        plt.gcf().savefig(path, dpi=100, bbox_inches="tight")
    plt.close("all")
    print(f"  wrote {path}")
    return True
