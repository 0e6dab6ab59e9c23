"""Hyperparameter search with Optuna: spaces, the objective, storages, parallel workers.

Explained in notebooks 05 (study, objective, pruning, storage), 06 (workers, storages), 08
(populations) and 09 (beyond the defaults). The command line, ``python -m qgtools.search
run|report|ensemble|proxy``, is described in :mod:`qgtools.search.cli`; the storage named by the
environment variable ``QG_STORAGE`` keeps a password off the command line.

One module per concept, each importing only the modules before it in ``MODULE_ORDER``:

- ``spaces``: the search spaces, the known configurations and warm starts;
- ``samplers``: samplers and pruners by name, and the per-trial seeded sampler;
- ``urls``: which storage a run uses, passwords masked, the file a URL names;
- ``journal``: Optuna's journal file, repaired before each append;
- ``storage``: opening a journal, a database or a client of the gRPC proxy;
- ``proxy``: Optuna's gRPC storage proxy in front of a database;
- ``artifacts``: kept models in Optuna's artifact store;
- ``recovery``: which worker runs a trial; failing the trials of dead workers and ended SLURM jobs;
- ``objective``: one trial trains one configuration; its metrics and the FLOPs constraint;
- ``populations``: K trials of one shape at once, through ask-and-tell;
- ``summary``: what a run leaves behind, and the best trial;
- ``settings``: the settings of a run (``StudySettings``) and those a study records;
- ``workers``: one worker process;
- ``supervise``: the worker processes followed, replaced when killed, stopped on Ctrl-C;
- ``run``: ``run_study``;
- ``importances``: hyperparameter importances and their spread over repeats;
- ``repeats``: several whole studies side by side;
- ``reporting``: the report and its plots;
- ``ensemble``: the ensemble of a study's top trials, kept or trained again;
- ``cli``: the command line.

This file only gathers the public names (as Optuna's ``optuna/samplers/__init__.py`` does):
``from qgtools import search`` then ``search.run_study``, ``search.make_objective``, ...
"""

from qgtools.model import flops_per_jet  # noqa: F401 - the model layer's, search.flops_per_jet too
from qgtools.search.artifacts import (
    ARTIFACTS_SUFFIX,
    artifact_store,
    artifacts_beside,
    keep_model,
    model_file,
    trial_model,
)
from qgtools.search.cli import main
from qgtools.search.ensemble import StudyEnsemble, top_trials_ensemble
from qgtools.search.importances import (
    MIN_TRIALS_FOR_IMPORTANCES,
    importance_spread,
    importances_skipped,
)
from qgtools.search.objective import (
    METRICS,
    SPLIT_SEED,
    check_max_flops,
    directions,
    make_objective,
)
from qgtools.search.populations import (
    SHAPE_PARAMS,
    TRIALS_PER_SHAPE,
    optimize_population,
    population_size,
    search_populations,
)
from qgtools.search.proxy import serve_proxy
from qgtools.search.recovery import (
    SLURM_LIVE_STATES,
    count_finished,
    fail_dead_workers_trials,
    fail_ended_slurm_trials,
    fail_unclaimed_trials,
    record_worker,
    slurm_jobs_running,
)
from qgtools.search.repeats import StudyPlan, run_studies
from qgtools.search.reporting import report
from qgtools.search.run import run_study
from qgtools.search.samplers import (
    PRUNERS,
    SAMPLERS,
    TPE_STARTUP_TRIALS,
    make_pruner,
    make_sampler,
)
from qgtools.search.settings import SETTING_DEFAULTS, StudySettings
from qgtools.search.spaces import (
    ACTIVATIONS,
    CPU_CHOICES,
    CPU_FIXED,
    CPU_RANGES,
    KNOWN_CONFIGURATIONS,
    REFERENCE_ON_CPU,
    SPACES,
    Space,
    continuous_space,
    cpu_space,
    cpu_space_params,
    enqueue_known,
    extreme_network,
    hparams_of,
    reference_space,
)
from qgtools.search.storage import (
    GRACE_S,
    HEARTBEAT_S,
    PROXY_PORT,
    PROXY_WAIT_S,
    SCHEMA_RACE_RETRIES,
    open_storage,
)
from qgtools.search.summary import StudySummary, format_params
from qgtools.search.supervise import INTERRUPTED_EXIT_CODE, MAX_RESTARTS
from qgtools.search.urls import DEFAULT_STORAGE, STORAGE_VARIABLE, storage_url
from qgtools.search.workers import (
    FAILING_EXIT_CODE,
    MAX_FAILS_IN_A_ROW,
    STORAGE_LOST_EXIT_CODE,
    rule_noise,
)

MODULE_ORDER = (
    "spaces",
    "samplers",
    "urls",
    "journal",
    "storage",
    "proxy",
    "artifacts",
    "recovery",
    "objective",
    "populations",
    "summary",
    "settings",
    "workers",
    "supervise",
    "run",
    "importances",
    "repeats",
    "reporting",
    "ensemble",
    "cli",
)
"""The modules of ``qgtools.search`` in import order: each imports only modules before it."""

__all__ = [
    "ACTIVATIONS",
    "ARTIFACTS_SUFFIX",
    "CPU_CHOICES",
    "CPU_FIXED",
    "CPU_RANGES",
    "DEFAULT_STORAGE",
    "FAILING_EXIT_CODE",
    "STORAGE_LOST_EXIT_CODE",
    "GRACE_S",
    "HEARTBEAT_S",
    "INTERRUPTED_EXIT_CODE",
    "KNOWN_CONFIGURATIONS",
    "MAX_FAILS_IN_A_ROW",
    "MAX_RESTARTS",
    "METRICS",
    "MIN_TRIALS_FOR_IMPORTANCES",
    "PROXY_PORT",
    "PRUNERS",
    "PROXY_WAIT_S",
    "REFERENCE_ON_CPU",
    "SAMPLERS",
    "SCHEMA_RACE_RETRIES",
    "SETTING_DEFAULTS",
    "SHAPE_PARAMS",
    "SLURM_LIVE_STATES",
    "SPACES",
    "SPLIT_SEED",
    "STORAGE_VARIABLE",
    "TPE_STARTUP_TRIALS",
    "TRIALS_PER_SHAPE",
    "Space",
    "StudyPlan",
    "StudyEnsemble",
    "StudySettings",
    "StudySummary",
    "artifact_store",
    "artifacts_beside",
    "check_max_flops",
    "continuous_space",
    "count_finished",
    "cpu_space",
    "cpu_space_params",
    "directions",
    "enqueue_known",
    "extreme_network",
    "fail_dead_workers_trials",
    "fail_ended_slurm_trials",
    "fail_unclaimed_trials",
    "format_params",
    "hparams_of",
    "importance_spread",
    "importances_skipped",
    "keep_model",
    "main",
    "make_objective",
    "make_pruner",
    "make_sampler",
    "model_file",
    "open_storage",
    "optimize_population",
    "population_size",
    "record_worker",
    "reference_space",
    "report",
    "rule_noise",
    "run_studies",
    "run_study",
    "search_populations",
    "serve_proxy",
    "slurm_jobs_running",
    "storage_url",
    "top_trials_ensemble",
    "trial_model",
]
