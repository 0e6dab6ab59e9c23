"""The notebooks' shape: no committed outputs, the lesson template, solutions for each.

Running them is nbval's job (`make test` passes `notebooks --nbval-lax`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LESSONS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
ALL = LESSONS + sorted((NOTEBOOKS / "solutions").glob("*.ipynb"))


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def test_there_are_lessons():
    assert len(LESSONS) >= 5


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_no_outputs_are_committed(path):
    dirty = [
        i
        for i, c in enumerate(cells(path))
        if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])
    ]
    assert dirty == [], f"{path.name}: clear the outputs of cells {dirty} before committing"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_template(path):
    first, last = source(cells(path)[0]), source(cells(path)[-1])
    assert (
        first.startswith("# ")
        and "You will learn" in first
        and "Prerequisites" in first
        and "Time" in first
    )
    assert "## Summary" in last and "## What's next" in last and "## Exercises" in last
    solution = NOTEBOOKS / "solutions" / f"{path.stem}_solutions.ipynb"
    assert solution.exists(), f"{path.name} has no {solution.name}"
    assert f"solutions/{solution.name}" in last


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_imports_the_installed_package(path):
    code = "\n".join(source(c) for c in cells(path) if c["cell_type"] == "code")
    assert "sys.path" not in code and "import *" not in code
    assert "from qgtools import" in code
    assert "QG_FAST" not in code, "sizes come from qgtools.config.sizes()"
