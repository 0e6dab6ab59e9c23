"""The settings of a run (``StudySettings``, checked once), and the ones a study records so that
the trials of later runs stay comparable."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import optuna

from qgtools.data import JetData
from qgtools.errors import UsageError
from qgtools.population import device_of, member_bytes
from qgtools.search.objective import SPLIT_SEED, check_max_flops
from qgtools.search.samplers import make_pruner, make_sampler
from qgtools.search.spaces import SPACES, _check_known, extreme_network
from qgtools.stopping import check_rule

SETTING_DEFAULTS = {"population": 1, "seeds": 1, "max_flops": None}
"""Settings a study recorded before they existed had these values."""


@dataclass(frozen=True)
class StudySettings:
    """What one run of a study is given: what :func:`~qgtools.search.run_study` takes, what the
    command line fills from its options and what each worker process receives. Made, it has
    been checked: a bad value or combination is a :class:`~qgtools.errors.UsageError` (a
    ``ValueError``) naming the field and what is allowed, before any storage is touched.

    Attributes:
        study: the study's name: not empty, no ``/`` or ``\\`` (the report names files after it).
        n_trials: finished trials the study should have (complete and pruned); 1 or more.
        workers: worker processes; 1 or more.
        storage: a ``.journal`` path, an RDB URL or ``grpc://host:port``; ``None``:
            ``$QG_STORAGE``, else ``qg-studies.journal``.
        data: what :func:`qgtools.data.load` loads (``auto``, ``energyflow``, ``sample`` or an
            ``.npz`` path).
        jets: the first ``jets`` jets, or -1 for all.
        space: a name of ``SPACES``.
        sampler: a name of ``SAMPLERS``, seeded from ``seed`` and each trial's number.
        pruner: a name of ``PRUNERS``.
        max_epochs: epochs per trial; 1 or more.
        seed: the samplers' seed; 0 or more.
        allow_mismatch: run even if the study recorded other settings.
        population: trials each worker trains at once, sharing one shape; 1 or more.
        seeds: training seeds per trial, whose mean is its value; 1 or more.
        enqueue: names of ``KNOWN_CONFIGURATIONS`` to train first (cpu space only).
        max_flops: a FLOPs-per-jet budget as a constraint, or ``None``.
        keep_models: store each complete trial's model (with ``seeds`` > 1, the ensemble of its
            seeds' models), populations included.
        artifact_dir: the folder for kept models; ``None``: beside the storage file.
        patience: stop after this many finished trials without news, or ``None`` (no rule).
        noise: the rule's noise; ``None``: measured from the trials' seeds (``seeds`` > 1).
        accelerator: where each worker trains, a name of
            :data:`~qgtools.population.ACCELERATORS` (``auto``: a GPU if torch sees one). Not
            recorded: a study may mix CPU and GPU workers.

    Example::

        settings = StudySettings("demo", n_trials=20, workers=2, data="sample")
    """

    study: str
    n_trials: int
    workers: int = 1
    storage: str | None = None
    data: str = "auto"
    jets: int = -1
    space: str = "cpu"
    sampler: str = "tpe"
    pruner: str = "median"
    max_epochs: int = 5
    seed: int = 0
    allow_mismatch: bool = False
    population: int = 1
    seeds: int = 1
    enqueue: tuple[str, ...] = ()
    max_flops: float | None = None
    keep_models: bool = False
    artifact_dir: str | None = None
    patience: int | None = None
    noise: float | None = None
    accelerator: str = "auto"

    def __post_init__(self) -> None:
        for name in ("storage", "artifact_dir"):  # paths as the strings workers are given
            if isinstance(getattr(self, name), os.PathLike):
                object.__setattr__(self, name, os.fspath(getattr(self, name)))
        object.__setattr__(self, "data", str(self.data))
        if isinstance(self.enqueue, str):  # tuple() would split it into letters
            raise UsageError(
                f"enqueue={self.enqueue!r} is one string: give a tuple of names, "
                f"enqueue=({self.enqueue!r},)."
            )
        object.__setattr__(self, "enqueue", tuple(self.enqueue))
        _check_sizes(self)
        _check_search(self)
        _check_extras(self)
        _check_rule(self)
        _check_artifact_dir(self.artifact_dir)
        _check_memory(self)

    def recorded(self, data: JetData) -> dict:
        """What the study records (its user attribute ``settings``) for the data this run
        loaded: what makes its trials comparable."""
        return {
            "data": data.origin,
            "jets": len(data),
            "split_seed": SPLIT_SEED,
            "space": self.space,
            "max_epochs": self.max_epochs,
            "population": self.population,
            "seeds": self.seeds,
            "max_flops": self.max_flops,
        }


def _check_sizes(s: StudySettings) -> None:
    for name in ("n_trials", "workers", "max_epochs", "population", "seeds", "seed"):
        value = getattr(s, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{name}={value!r}: use a whole number.")
    if min(s.n_trials, s.workers, s.max_epochs, s.population, s.seeds) < 1:
        raise UsageError(
            f"n_trials={s.n_trials}, workers={s.workers}, max_epochs={s.max_epochs}, "
            f"population={s.population} and seeds={s.seeds} must be positive."
        )
    if s.seed < 0:
        raise UsageError(f"seed={s.seed}: use a seed of 0 or more.")


def _check_search(s: StudySettings) -> None:
    if s.space not in SPACES:
        raise UsageError(f"Unknown space {s.space!r}: use one of {sorted(SPACES)}.")
    make_pruner(s.pruner)  # unknown names fail here, not in every worker
    make_sampler(s.sampler, s.seed)


def _check_extras(s: StudySettings) -> None:
    try:
        device_of(s.accelerator)  # an unknown name, or a GPU torch does not see, fails here
    except ValueError as error:
        raise UsageError(str(error)) from None
    if s.enqueue and s.space != "cpu":
        raise UsageError(f"enqueue={list(s.enqueue)}: the known configurations are cpu-space ones.")
    if s.population > 1 and (s.enqueue or s.max_flops is not None):
        raise UsageError(
            "A population (population > 1) shares one shape per population: it takes no "
            "enqueued configurations or FLOPs budget. Run with population=1."
        )
    if s.seeds > 1 and s.max_flops is not None:
        raise UsageError(
            f"seeds={s.seeds} trains each trial as a population of its seeds, which takes no "
            "FLOPs budget yet: run with seeds=1 (--seeds 1), or without max_flops (--max-flops)."
        )
    _check_known(s.enqueue)
    check_max_flops(s.max_flops)
    if isinstance(s.jets, bool) or not isinstance(s.jets, int) or s.jets == 0 or s.jets < -1:
        raise UsageError(f"jets={s.jets!r}: use -1 for all jets or a positive number of jets.")
    if "/" in s.study or "\\" in s.study or not s.study.strip():
        raise UsageError(
            f"Study name {s.study!r}: use a non-empty name without '/' or '\\' (the report "
            "names its plot files after the study)."
        )


def _check_rule(s: StudySettings) -> None:
    if s.patience is None:
        if s.noise is not None:
            raise UsageError(
                f"noise={s.noise} is the stopping rule's noise, and without patience there is no "
                "rule: give patience too (--patience N), or leave noise out (--noise)."
            )
        return
    if s.noise is None and s.seeds == 1:
        raise UsageError(
            f"patience={s.patience} needs the noise of a trial's value: give noise (--noise, "
            "the seed-to-seed spread of one configuration), or run with seeds > 1 "
            "(--seeds 3) to have it measured."
        )
    check_rule(s.patience, 0.0 if s.noise is None else s.noise)


def _check_artifact_dir(folder: str | None) -> None:
    """A ``UsageError`` unless ``folder`` is ``None`` or a folder that is or can be made."""
    if folder is None:
        return
    where = f"artifact_dir={folder!r} (--artifact-dir)"
    if not folder.strip():
        raise UsageError(
            f"{where} names no folder: give one, or leave it out to keep the models beside "
            "the storage file."
        )
    path = Path(folder).absolute()
    if path.exists() and not path.is_dir():
        raise UsageError(f"{where} is a file, not a folder: give a folder for the kept models.")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise UsageError(f"{where}: {existing} is a file, so the folder cannot be made there.")
    if not os.access(existing, os.W_OK):
        raise UsageError(f"{where}: {existing} cannot be written to: give a folder you can write.")


def _check_memory(s: StudySettings) -> None:
    """A ``UsageError`` when a population of the space's largest network cannot fit in this
    machine's memory (``population`` x ``seeds`` members)."""
    members = s.population * s.seeds
    if members == 1:
        return
    try:
        largest = extreme_network(s.space, largest=True)
    except Exception:  # noqa: BLE001 - a space that cannot be probed so is checked by its run
        return
    need = members * member_bytes(largest)
    have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > have:
        fits = max(1, have // member_bytes(largest))
        raise UsageError(
            f"seeds={s.seeds} x population={s.population}: {members:,} members of the "
            f"{s.space} space's largest network ({largest.n_layers} x {largest.n_channels}, "
            f"batch {largest.batch_size}) need about {need / 1e9:,.1f} GB of memory, more than "
            f"this machine's {have / 1e9:.1f} GB: use at most {fits:,} members here."
        )


def _check_settings(study: optuna.Study, settings: dict, allow_mismatch: bool) -> None:
    """Record ``settings`` on a study that has none; refuse other settings than the recorded."""
    recorded = study.user_attrs.get("settings")
    if recorded is None:
        study.set_user_attr("settings", settings)
        recorded = study.user_attrs["settings"]  # re-read: a run started at once may have won
    differ = [
        key for key in settings if recorded.get(key, SETTING_DEFAULTS.get(key)) != settings[key]
    ]
    if differ and not allow_mismatch:
        was = ", ".join(f"{key}={recorded.get(key)!r}" for key in differ)
        now = ", ".join(f"{key}={settings[key]!r}" for key in differ)
        raise ValueError(
            f"Study {study.study_name!r} was run with {was} but this run has {now}: the trials "
            "would not be comparable. Use the study's settings, another study name, or "
            "--allow-mismatch (allow_mismatch=True) to mix them anyway."
        )
