"""The ensemble of a study's top trials: their kept models, or the trials trained again from what
the study recorded; the size rule is :mod:`qgtools.ensembles`' (notebook 07)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from qgtools.data import JetData, load
from qgtools.ensembles import ENSEMBLE_SIZES, choose_size, members_of
from qgtools.errors import UsageError
from qgtools.model import Ensemble, Predictor
from qgtools.population import fit_population
from qgtools.search.artifacts import artifacts_beside, trial_model
from qgtools.search.objective import SPLIT_SEED
from qgtools.search.spaces import hparams_of
from qgtools.search.storage import _open_existing
from qgtools.train import fit, rejection


@dataclass(frozen=True)
class StudyEnsemble:
    """What :func:`top_trials_ensemble` built, and the numbers to print beside it.

    Attributes:
        study: the study's name.
        ensemble: the model: the top trials' models, best trial first (a trial of ``seeds`` > 1
            brings each seed's model).
        trials: the numbers of its trials, best first.
        val_rejection: the ensemble's validation rejection.
        best_val_rejection: the best trial's, from the same models and jets (with ``seeds`` > 1
            the mean over its seeds' models, as the search's value is).
        best_seeds: the number of models of the best trial (its training seeds).
        chosen: whether the number of trials was chosen by the rule on these validation jets
            (then ``val_rejection`` is optimistic).
        tried: each size's validation rejection, by its number of trials.
        retrained: whether the members were trained again rather than loaded.
        source: the jets the numbers come from (``JetData.source``).
    """

    study: str
    ensemble: Ensemble
    trials: tuple[int, ...]
    val_rejection: float
    best_val_rejection: float
    best_seeds: int
    chosen: bool
    tried: dict[int, float]
    retrained: bool
    source: str

    def lines(self) -> str:
        """Two lines: the ensemble's validation rejection (optimistic when its size was chosen
        on these jets), then the best single trial's beside it and the data they come from."""
        k, how = len(self.trials), "retrained" if self.retrained else "kept models"
        first = (
            f"Ensemble of the top {k} trial{'s' * (k != 1)} of {self.study!r} "
            f"({', '.join(f'#{n}' for n in self.trials)}; {how}): validation rejection "
            f"{self.val_rejection:.1f}"
        )
        if self.chosen:
            tried = ", ".join(f"k={size} {value:.1f}" for size, value in self.tried.items())
            first += f" (k chosen by the rule on these jets: {tried}; optimistic)"
        seeds = f" (mean of its {self.best_seeds} seeds' models)" if self.best_seeds > 1 else ""
        return (
            f"{first}\nBest single trial #{self.trials[0]}: validation rejection "
            f"{self.best_val_rejection:.1f}{seeds}; on the validation jets of {self.source}"
        )


def top_trials_ensemble(
    study: str | optuna.Study,
    top: int | None = None,
    *,
    storage: str | os.PathLike | None = None,
    artifact_dir: str | os.PathLike | None = None,
    retrain: bool = False,
    data: JetData | str | os.PathLike = "auto",
    combine: str = "probability",
    num_threads: int | None = None,
) -> StudyEnsemble:
    """The ensemble of a study's top trials by validation rejection (``python -m qgtools.search
    ensemble``).

    The complete (and feasible) trials are ranked by validation rejection, best first, ties to
    the earlier trial; in a multi-objective study by its ``val_rejection`` objective (named by
    ``study.metric_names``, else the first, where the series' studies put it). With ``top`` the
    first ``top`` trials are the ensemble; without, :func:`qgtools.ensembles.choose_size`
    chooses their number from ``ENSEMBLE_SIZES`` on the validation split (its value is then
    optimistic). The members are the trials' kept models (:func:`trial_model`; a trial of
    ``seeds`` > 1 brings each seed's) or, with ``retrain``, the trials trained again as the
    search trained them: ``hparams_of(trial)`` with its epochs and seeds, on the recorded split
    (:func:`qgtools.train.fit`, :func:`qgtools.population.fit_population` for a population's
    trial). Only the validation split is read.

    Args:
        study: a study, or the name of one in ``storage``.
        top: how many trials, from 1 to the complete ones; ``None``: chosen by the rule.
        storage: the storage of a study given by name; ``None``: ``$QG_STORAGE``, else
            ``qg-studies.journal``.
        artifact_dir: where the run kept its models; ``None``: beside the storage.
        retrain: train the trials again instead of loading their kept models.
        data: the jets the study ran on, or what :func:`qgtools.data.load` loads them from
            (``auto``, ``energyflow``, ``sample`` or an ``.npz`` path), as many as the study
            recorded; checked against the data the study recorded.
        combine: what the ensemble averages (:class:`qgtools.model.Ensemble`).
        num_threads: torch threads while retraining; ``None`` leaves them.

    Returns:
        A :class:`StudyEnsemble`.

    Raises:
        ValueError: no such study, no complete trial, a bad ``top``, trials without kept models
            (and no ``retrain``), no artifact folder, other data than the study's, or members
            of different data or splits.
    """
    the_study = study
    if not isinstance(study, optuna.Study):
        the_study = optuna.load_study(study_name=study, storage=_open_existing(study, storage))
    name = the_study.study_name
    ranked = _ranked(the_study)
    _check_top(name, top, len(ranked))
    candidates = ranked[: top or max(ENSEMBLE_SIZES)]
    folder = None if retrain else _kept_folder(name, candidates, storage, artifact_dir)
    jets = _jets(the_study, data)
    if retrain:
        split_seed = the_study.user_attrs.get("settings", {}).get("split_seed", SPLIT_SEED)
        models = [_retrained(t, jets, split_seed, num_threads) for t in candidates]
    else:
        models = [trial_model(t, folder) for t in candidates]
    choice = choose_size(models, jets, ENSEMBLE_SIZES if top is None else (top,), combine)
    best = [rejection(member, jets) for member in members_of(models[:1])]
    return StudyEnsemble(
        study=name,
        ensemble=choice.ensemble,
        trials=tuple(t.number for t in candidates[: choice.k]),
        val_rejection=choice.val_rejection[choice.k],
        best_val_rejection=sum(best) / len(best),
        best_seeds=len(best),
        chosen=top is None,
        tried=choice.val_rejection,
        retrained=retrain,
        source=jets.source,
    )


def _ranked(study: optuna.Study) -> list[FrozenTrial]:
    """The complete, feasible trials, best validation rejection first (ties: the earlier)."""
    names = study.metric_names or []
    index = names.index("val_rejection") if "val_rejection" in names else 0
    if study.directions[index] != optuna.study.StudyDirection.MAXIMIZE:
        raise UsageError(
            f"Study {study.study_name!r} minimises its objective {index}, so it is not a "
            "validation rejection: rank its trials yourself and build a qgtools.model.Ensemble."
        )
    complete = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if all(v <= 0 for v in t.constraints.values())
    ]
    return sorted(complete, key=lambda t: (-t.values[index], t.number))


def _check_top(name: str, top: int | None, complete: int) -> None:
    """A ``UsageError`` without complete trials, or for a ``top`` they cannot fill."""
    if complete == 0:
        raise UsageError(
            f"Study {name!r} has no complete trial to build an ensemble of: run it first "
            f"(python -m qgtools.search run --study {name} ...)."
        )
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise UsageError(f"top={top!r} (--top): use a whole number of trials, 1 or more.")
    if top is not None and top > complete:
        raise UsageError(
            f"top={top} (--top): study {name!r} has only {complete} complete trial"
            f"{'s' * (complete != 1)}: use 1 to {complete}, or --choose (top=None)."
        )


def _kept_folder(
    name: str,
    trials: list[FrozenTrial],
    storage: str | os.PathLike | None,
    artifact_dir: str | os.PathLike | None,
) -> Path:
    """The folder of the trials' kept models, or a ``UsageError`` saying to keep or retrain."""
    missing = [t.number for t in trials if "model_artifact" not in t.user_attrs]
    if len(missing) == len(trials):
        raise UsageError(
            f"Study {name!r} kept no models: rerun it with --keep-models (keep_models=True), "
            "or pass --retrain (retrain=True) to train its top trials from its settings."
        )
    if missing:
        raise UsageError(
            f"Trials {missing} of study {name!r} kept no model (run without --keep-models): "
            "pass --retrain (retrain=True) to train the top trials from the study's settings."
        )
    folder = Path(artifact_dir if artifact_dir is not None else artifacts_beside(storage))
    if not folder.expanduser().is_dir():
        raise UsageError(
            f"No folder {folder} of kept models: point --artifact-dir (artifact_dir) to the "
            "folder the run kept its models in, or pass --retrain (retrain=True)."
        )
    return folder


def _jets(study: optuna.Study, data: JetData | str | os.PathLike) -> JetData:
    """The jets ``data`` names, checked against those the study recorded (if it did)."""
    recorded = study.user_attrs.get("settings", {})
    jets = data if isinstance(data, JetData) else load(recorded.get("jets", -1), source=data)
    if recorded and (jets.origin, len(jets)) != (recorded["data"], recorded["jets"]):
        raise UsageError(
            f"Study {study.study_name!r} ran on {recorded['jets']} jets of {recorded['data']}, "
            f"but data={str(data)!r} (--data) gives {jets.source}: pass the data its run was "
            "given (sample, energyflow or the .npz path)."
        )
    return jets


def _retrained(
    trial: FrozenTrial, jets: JetData, split_seed: int, num_threads: int | None
) -> Predictor | Ensemble:
    """A trial trained again as the search trained it: its model, or its seeds' ensemble."""
    hparams = hparams_of(trial)
    population = trial.user_attrs.get("population")
    if population is None:
        run = fit(hparams, jets, split_seed=split_seed, progress=False, num_threads=num_threads)
        runs = [run]
    else:
        seeds = [hparams.replace(seed=hparams.seed + s) for s in range(population.get("seeds", 1))]
        runs = fit_population(seeds, jets, split_seed=split_seed, num_threads=num_threads)
    diverged = [run for run in runs if run.status != "ok"]
    if diverged:
        raise ValueError(
            f"Trial #{trial.number} {diverged[0].status} when retrained: leave it out "
            "(a smaller --top), or use its kept model."
        )
    models = [run.predictor for run in runs]
    return models[0] if len(models) == 1 else Ensemble(models)
