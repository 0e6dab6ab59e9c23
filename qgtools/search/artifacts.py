"""Kept models: each complete trial's trained model in Optuna's artifact store (notebook 09).

One artifact per trial, whichever way the study runs: the trial's model as
:func:`qgtools.model.save_model` writes it, a :class:`~qgtools.model.Predictor` for a trial of one
training seed, a :class:`~qgtools.model.Ensemble` of its seeds' models (seed ``seed`` first) for a
trial of ``seeds`` > 1. A study that kept models before seeds could hold predictors only; both load
with :func:`trial_model`.
"""

from __future__ import annotations

import os
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, Trial

from qgtools.model import Ensemble, Predictor, load_model, save_model
from qgtools.search.urls import _local_file, _mask, storage_url

ARTIFACTS_SUFFIX = ".artifacts"


def artifacts_beside(url: str | os.PathLike | None = None) -> Path:
    """The folder for a study's kept models: ``<file>.artifacts`` beside a journal or SQLite
    file (``qg-studies.journal.artifacts``). A database server has no file to sit beside: name a
    folder yourself (``--artifact-dir``), one every worker reaches.

    Args:
        url: the storage (a journal path or ``sqlite:///`` URL); ``None``: ``$QG_STORAGE``,
            else ``qg-studies.journal``.

    Raises:
        ValueError: for a storage that is not a local file.

    Returns:
        The folder's path (not created here).
    """
    resolved = storage_url(url)
    path = _local_file(resolved)
    if path is None:
        raise ValueError(
            f"Storage {_mask(resolved)!r} is not a file, so there is no place beside it for the "
            "models: give a folder every worker can reach (--artifact-dir DIR)."
        )
    return path.with_name(path.name + ARTIFACTS_SUFFIX)


def artifact_store(folder: str | os.PathLike) -> optuna.artifacts.FileSystemArtifactStore:
    """Optuna's file-system artifact store in ``folder`` (created if missing); what
    ``optuna-dashboard --artifact-dir FOLDER`` reads.

    Args:
        folder: the folder for the models.

    Returns:
        The store.

    Raises:
        ValueError: ``folder`` is a file.
    """
    path = Path(folder).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file, not a folder: name a folder for the models.")
    path.mkdir(parents=True, exist_ok=True)
    return optuna.artifacts.FileSystemArtifactStore(path)


def keep_model(
    trial: Trial,
    predictor: Predictor | Ensemble,
    artifacts: optuna.artifacts.FileSystemArtifactStore,
) -> str:
    """Store a trial's trained model (:func:`qgtools.model.save_model`'s file) as an artifact of
    the trial; its id goes into the user attribute ``model_artifact``. Returns the id.

    Args:
        trial: the trial the model belongs to.
        predictor: its trained model: a :class:`qgtools.model.Predictor`, or for a trial of
            several training seeds the :class:`qgtools.model.Ensemble` of its seeds' models.
        artifacts: the store (:func:`artifact_store`).

    Returns:
        The artifact id.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="qg-model-") as folder:
        path = save_model(predictor, Path(folder) / f"trial-{trial.number}-model.pt")
        artifact_id = optuna.artifacts.upload_artifact(
            artifact_store=artifacts, file_path=str(path), study_or_trial=trial
        )
    trial.set_user_attr("model_artifact", artifact_id)
    return artifact_id


def model_file(trial: FrozenTrial, folder: str | os.PathLike) -> Path:
    """The file holding a trial's kept model in the artifact ``folder``; load it with
    :func:`qgtools.model.load_model`.

    Args:
        trial: a trial of a run with ``keep_models``.
        folder: the run's artifact folder.

    Raises:
        ValueError: the trial kept no model (not run with ``keep_models``, or not complete), or
            the file is not in ``folder``.

    Returns:
        The file's path.
    """
    artifact_id = trial.user_attrs.get("model_artifact")
    if artifact_id is None:
        raise ValueError(
            f"Trial #{trial.number} ({trial.state.name}) kept no model: only complete trials of "
            "a run with keep_models (--keep-models) keep theirs. Retrain it from "
            "hparams_of(trial) instead."
        )
    path = Path(folder).expanduser() / artifact_id
    if not path.is_file():
        raise ValueError(
            f"Trial #{trial.number}'s model {artifact_id} is not in {Path(folder)}: point "
            "to the folder the run kept its models in (--artifact-dir)."
        )
    return path


def trial_model(trial: FrozenTrial, folder: str | os.PathLike) -> Predictor | Ensemble:
    """A trial's kept model, loaded without retraining: a :class:`qgtools.model.Predictor`, or
    for a trial of ``seeds`` > 1 the :class:`qgtools.model.Ensemble` of its seeds' models (its
    ``members``, seed ``seed`` first; the trial's value is the mean of their values, not the
    ensemble's).

    Args:
        trial: a trial of a run with ``keep_models``.
        folder: the run's artifact folder.

    Returns:
        The model.

    Raises:
        ValueError: as :func:`model_file` raises it.
    """
    return load_model(model_file(trial, folder))
