"""The package's shape: imports run one way, modules and functions stay small, the wheel holds
every module, and the public names keep working."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import qgtools
from qgtools import search

PACKAGE = Path(qgtools.__file__).parent
ROOT = PACKAGE.parent
SEARCH = PACKAGE / "search"
MAX_MODULE_LINES = 400  # in qgtools/search/
MAX_FUNCTION_LINES = 80  # anywhere in qgtools, the docstring included

LAYERS: dict[str, int] = {
    # foundations: need nothing of qgtools
    "config": 0,
    "errors": 0,
    "metrics": 0,
    # data: numpy only (download and preprocessing are parts of it)
    "download": 1,
    "preprocessing": 1,
    "data": 2,
    "baselines": 3,
    "plots": 3,  # matplotlib on data and metrics; search's report draws with it
    # model: torch
    "model": 4,
    # batches: in-memory mini-batches (torch)
    "batches": 5,
    # lightning_mlp: the Lightning module fit trains (Lightning)
    "lightning_mlp": 6,
    # train: fit (imports lightning_mlp when it trains) and evaluate
    "train": 7,
    # population: many trainings at once (torch, on train's results)
    "population": 8,
    # stopping: when a study is done (Optuna, nothing of qgtools)
    "stopping": 9,
    # ensembles: averages of trained networks (model, train, population)
    "ensembles": 9,
    # search: Optuna (a subpackage; its own order is search.MODULE_ORDER)
    "search": 10,
    # on top: anything below
    "widgets": 11,
    "check": 11,
    "generate": 11,
}
"""data -> model -> train -> search, then what sits on top; a module may import only lower ones."""


def files() -> list[Path]:
    """Every module of the package, subpackages included."""
    return sorted(PACKAGE.rglob("*.py"))


def layer_of(path: Path) -> str:
    """The top-level name a file belongs to: ``search`` for everything in ``qgtools/search/``."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def qgtools_imports(path: Path, depth: int = 1) -> set[str]:
    """The qgtools modules a file imports anywhere (top level or inside functions), named by
    their first ``depth`` parts after ``qgtools``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qgtools"):
            parts = node.module.split(".")[1:]
            if len(parts) < depth:  # `from qgtools import data`, `from qgtools.search import x`
                found.update(".".join([*parts, alias.name]) for alias in node.names)
            else:
                found.add(".".join(parts[:depth]))
        elif isinstance(node, ast.Import):
            found.update(
                ".".join(a.name.split(".")[1 : depth + 1])
                for a in node.names
                if a.name.startswith("qgtools.")
            )
    return found


def test_every_module_has_a_layer():
    assert {layer_of(path) for path in files()} - {"__init__"} == set(LAYERS), (
        "give each new module its place in LAYERS"
    )


@pytest.mark.parametrize("path", files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path):
    module = layer_of(path)
    if module == "__init__":
        return
    later = {
        name: LAYERS[name]
        for name in qgtools_imports(path)
        if LAYERS[name] >= LAYERS[module] and name != module
    }
    assert later == {}, f"{path.name} imports modules of its own layer or later: {later}"


def test_the_walk_would_catch_a_backward_import(tmp_path):
    bad = tmp_path / "model.py"
    bad.write_text("def f():\n    from qgtools.train import fit\n")
    assert qgtools_imports(bad) == {"train"}
    inner = tmp_path / "spaces.py"
    inner.write_text("from qgtools.search.run import run_study\nfrom qgtools.search import cli\n")
    assert qgtools_imports(inner, depth=2) == {"search.run", "search.cli"}


def test_the_search_order_names_every_module_once():
    modules = {path.stem for path in SEARCH.glob("*.py")} - {"__init__", "__main__"}
    assert sorted(search.MODULE_ORDER) == sorted(modules)
    assert len(set(search.MODULE_ORDER)) == len(search.MODULE_ORDER)
    listed = re.findall(r"^- ``(\w+)``:", search.__doc__, flags=re.MULTILINE)
    assert tuple(listed) == search.MODULE_ORDER, "the docstring lists the modules in their order"


@pytest.mark.parametrize("module", search.MODULE_ORDER)
def test_a_search_module_imports_only_the_ones_before_it(module):
    earlier = set(search.MODULE_ORDER[: search.MODULE_ORDER.index(module)])
    imported = {
        name.split(".")[1]
        for name in qgtools_imports(SEARCH / f"{module}.py", depth=2)
        if name.startswith("search.")
    }
    assert imported <= earlier, f"search.{module} imports later modules: {imported - earlier}"


def test_the_search_modules_import_absolutely_from_their_module():
    for path in SEARCH.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: a relative import"
                if path.stem != "__init__":
                    assert node.module != "qgtools.search", f"{path.name}: import from the module"


def test_search_modules_stay_small():
    long_modules = {
        path.name: n
        for path in SEARCH.glob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long_modules == {}, f"split these modules (over {MAX_MODULE_LINES} lines)"


def test_functions_stay_small():
    long_functions = {
        f"{path.relative_to(PACKAGE)}:{node.name}": node.end_lineno - node.lineno + 1
        for path in files()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    }
    assert long_functions == {}, f"split these functions (over {MAX_FUNCTION_LINES} lines)"


def test_only_search_and_stopping_import_optuna_and_only_widgets_ipywidgets():
    for path in files():
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
        if layer_of(path) not in ("search", "stopping"):
            assert not names & {"optuna", "optuna_integration"}, path.name
        if layer_of(path) != "widgets":
            assert "ipywidgets" not in names, path.name


def defined_names(path: Path) -> set[str]:
    """The names a module defines at its top level (functions, classes, assignments)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                elts = target.elts if isinstance(target, ast.Tuple) else [target]
                names.update(e.id for e in elts if isinstance(e, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_search_gathers_every_public_name_of_its_modules_in_all():
    public = {
        name
        for module in search.MODULE_ORDER
        for name in defined_names(SEARCH / f"{module}.py")
        if not name.startswith("_")
    }
    assert set(search.__all__) == public
    assert all(hasattr(search, name) for name in search.__all__)


def test_the_wheel_holds_every_module(tmp_path):
    """An editable install finds ``qgtools/search/`` on disk whatever ``pyproject.toml`` says;
    a wheel holds only the packages it lists. Built offline, from this checkout."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["--wheel-dir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = tmp_path.glob("qgtools-*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())
    expected = {str(path.relative_to(ROOT)) for path in files()}
    assert expected - inside == set()
    assert "qgtools/sample/qg_nsubs_sample.npz" in inside


def test_public_names_keep_working():
    from qgtools import data, metrics, model, train

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
    assert train.Predictor is model.Predictor
    assert {
        "cpu": search.cpu_space,
        "reference": search.reference_space,
    }.items() <= search.SPACES.items()
    assert search.DEFAULT_STORAGE == "qg-studies.journal"


def test_public_search_functions_document_their_arguments():
    undocumented = [
        f"{module}.{node.name}"
        for module in search.MODULE_ORDER
        for node in ast.parse((SEARCH / f"{module}.py").read_text()).body
        if isinstance(node, ast.FunctionDef)
        and not node.name.startswith("_")
        and (node.args.args or node.args.kwonlyargs)
        and "Args:" not in (ast.get_docstring(node) or "")
    ]
    assert undocumented == []


def test_the_search_and_train_start_without_lightning():
    """Lightning is imported when ``fit`` first trains: the command line's supervising process,
    ``report`` and ``proxy`` start in about a third of the time."""
    code = (
        "import sys; from qgtools import ensembles, population, search, train; "
        "from qgtools.search.cli import _parser; print(_parser().format_usage()); "
        "print(sorted(m for m in sys.modules if 'lightning' in m))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "usage:" in out.stdout and out.stdout.strip().endswith("[]"), out.stdout + out.stderr
