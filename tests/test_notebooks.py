"""The notebooks' shape: no committed outputs, the lesson template, solutions for each.

Running them is nbval's job (`make test` passes `notebooks --nbval-lax`).
"""

from __future__ import annotations

import json
import re
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


def section(text: str, heading: str) -> str:
    """The text under ``## heading`` up to the next ``## `` heading (empty if there is none)."""
    marker = f"## {heading}\n"
    if marker not in text:
        return ""
    return text.split(marker, 1)[1].split("\n## ", 1)[0]


def numbered(text: str) -> list[str]:
    """The numbered items (``1. ...``) of a markdown section."""
    return re.findall(r"^\d+\. ", text, flags=re.MULTILINE)


def markdown(path: Path) -> str:
    return "\n".join(source(c) for c in cells(path) if c["cell_type"] == "markdown")


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_ends_with_questions_and_references(path):
    last = source(cells(path)[-1])
    questions = numbered(section(last, "Check your understanding"))
    assert 2 <= len(questions) <= 3, f"{path.name}: 2-3 'Check your understanding' questions"
    references = re.findall(r"^- ", section(last, "References"), flags=re.MULTILINE)
    assert len(references) >= 2, f"{path.name}: a '## References' list at the end"
    assert "../docs/glossary.md" in markdown(path), f"{path.name}: link the glossary"
    solution = NOTEBOOKS / "solutions" / f"{path.stem}_solutions.ipynb"
    answers = numbered(section(markdown(solution), "Check your understanding: answers"))
    assert len(answers) == len(questions), f"{solution.name}: one answer per question"


TEST_SPLIT_RULE = "The test split judges a finished choice; it never makes one"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_the_test_split_rule_is_said_the_same_way(path):
    text = markdown(path)
    if "test split" in text.lower() and path.name[:2] in {"04", "05", "07"}:
        assert TEST_SPLIT_RULE in text, f"{path.name}: say the rule as the glossary does"
    glossary = (NOTEBOOKS.parent / "docs" / "glossary.md").read_text()
    assert TEST_SPLIT_RULE.lower() in glossary.lower()


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_imports_the_installed_package(path):
    code = "\n".join(source(c) for c in cells(path) if c["cell_type"] == "code")
    assert "sys.path" not in code and "import *" not in code
    assert "from qgtools import" in code
    assert "QG_FAST" not in code, "sizes come from qgtools.config.sizes()"
