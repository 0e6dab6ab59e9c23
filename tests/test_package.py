"""The package's shape: imports run one way, and today's public names keep working."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import qgtools

PACKAGE = Path(qgtools.__file__).parent

LAYERS: dict[str, int] = {
    # foundations: need nothing of qgtools
    "config": 0,
    "metrics": 0,
    # data: numpy only (download and preprocessing are parts of it)
    "download": 1,
    "preprocessing": 1,
    "data": 2,
    "baselines": 3,
    "plots": 3,  # matplotlib on data and metrics; search's report draws with it
    # model: torch
    "model": 4,
    # train: Lightning
    "train": 5,
    # population: many trainings at once (torch, on train's results)
    "population": 6,
    # stopping: when a study is done (Optuna, nothing of qgtools)
    "stopping": 7,
    # ensembles: averages of trained networks (model, train, population)
    "ensembles": 7,
    # search: Optuna
    "search": 8,
    # on top: anything below
    "widgets": 9,
    "check": 9,
    "generate": 9,
}
"""data -> model -> train -> search, then what sits on top; a module may import only lower ones."""


def qgtools_imports(path: Path) -> set[str]:
    """The qgtools modules a file imports anywhere (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qgtools"):
            if node.module == "qgtools":
                found.update(alias.name for alias in node.names)
            else:
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("qgtools."))
    return found


def test_every_module_has_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(LAYERS), "give each new module its place in LAYERS"


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_imports_run_one_way(module):
    later = {
        name: LAYERS[name]
        for name in qgtools_imports(PACKAGE / f"{module}.py")
        if LAYERS[name] >= LAYERS[module] and name != module
    }
    assert later == {}, f"qgtools.{module} imports modules of its own layer or later: {later}"


def test_the_walk_would_catch_a_backward_import(tmp_path):
    bad = tmp_path / "model.py"
    bad.write_text("def f():\n    from qgtools.train import fit\n")
    assert qgtools_imports(bad) == {"train"}


def test_only_search_and_stopping_import_optuna_and_only_widgets_ipywidgets():
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {
            a.name.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.Import)
            for a in n.names
        }
        names |= {
            n.module.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module
        }
        if path.stem not in ("search", "stopping"):
            assert not names & {"optuna", "optuna_integration"}, path.name
        if path.stem != "widgets":
            assert "ipywidgets" not in names, path.name


def test_public_names_and_old_aliases_keep_working():
    from qgtools import data, metrics, model, search, train

    for name in ("load", "split", "fetch", "Preprocessor", "JetData", "FEATURE_NAMES"):
        assert hasattr(data, name), name
    for name in ("fit", "evaluate", "TrainResult", "Predictor"):
        assert hasattr(train, name), name
    for name in ("HParams", "save_model", "load_model", "make_mlp", "Predictor"):
        assert hasattr(model, name), name
    for name in ("background_rejection", "roc_auc", "bootstrap_interval", "rejection_curve"):
        assert hasattr(metrics, name), name
    for name in ("make_objective", "make_sampler", "make_pruner", "hparams_of", "run_study"):
        assert hasattr(search, name), name
    assert model.CPU_MODEL is model.CPU_HPARAMS and model.HAND_TUNED is model.HAND_TUNED_HPARAMS
    assert train.QGClassifier is train.LightningMLP and train.Predictor is model.Predictor
    assert search.cpu is search.cpu_space and search.reference is search.reference_space
    assert {
        "cpu": search.cpu_space,
        "reference": search.reference_space,
    }.items() <= search.SPACES.items()
    assert search.DEFAULT_STORAGE == "qg-studies.journal"
    assert train.TrainResult.model.fget.__doc__.startswith("The old name of")
