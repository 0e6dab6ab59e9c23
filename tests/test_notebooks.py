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


def main_path(path: Path) -> list[dict]:
    """The cells before the first ``## Appendix`` heading: the lesson a workshop reads."""
    every = cells(path)
    starts = [i for i, c in enumerate(every) if source(c).startswith("## Appendix")]
    return every[: starts[0]] if starts else every


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_template(path):
    first, last = source(cells(path)[0]), source(main_path(path)[-1])
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
    last = source(main_path(path)[-1])
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


# ------------------------------------------------------------ every number from the run

FIXED_FACTS = {
    # split and dataset sizes, shares, confidence levels, notebook-independent constants
    *"0 1 2 3 10% 45 50 50% 68% 80% 95% 100 1,000 10,000 80,000 100,000 1024".split(),
}
PROSE_NUMBERS = {  # what each notebook's markdown may state besides FIXED_FACTS: fixed facts only
    "01_data": "0.30 0.5 8 8.230 10 15 80 2011",  # a question's AUC, Pythia versions, tau_15, years
    "02_benchmark_mlp": "5 6 20 30 32 64 128 256",  # configurations, repeats of 20 steps, 30 runs
    "03_rejection_metric": "0 0.5 20 25 30% 70% 100",  # working points, a question's rejection
    "04_manual_search": "0 0.1 0.3 0.7 0.8 1.96 3.16 4 64 1993 2010 2012",  # exercise values, years
    "05_optuna_search": "0 0.5 5 10 13 15 18 20 24 27 2018 2020",  # space size, TPE's 24 candidates
    "06_scaling_out": "5 20",  # n_startup_trials, a question's study
    "07_final_model": "5 5% 6 2002 2020",  # ensemble sizes, the choice rule, 6 x 1024, years
    "08_populations": "0 16 64 256",  # --population 16, 3 x 64 at batch 256
    "09_beyond_defaults": "0 0.3 1.2 4 5 5.0 6 6.0 9 15 200 256 400",  # Optuna versions, a question
    "01_data_solutions": "0 0.30 0.5 0.70",
    "02_benchmark_mlp_solutions": "0 0.3 5 15 16 20 31 46 64",  # the StepLR schedule worked out
    "03_rejection_metric_solutions": "0 1.96 24 25 40 960",  # the question's arithmetic
    "04_manual_search_solutions": "0.8 1.96 7 20 25",  # the question's arithmetic
    "05_optuna_search_solutions": "0 0.5 4 5",
    "06_scaling_out_solutions": "5 50",
    "07_final_model_solutions": "0.12 0.56 0.88 0.998 6",  # the worked example of two logits
    "08_populations_solutions": "",
    "09_beyond_defaults_solutions": "0.3 1.2 5 6 15 20,000",  # the question's values, the budget
}


def prose_numbers(text: str) -> set[str]:
    """The numbers a markdown cell states in prose: not in code, maths, links, list markers,
    notebook and exercise numbers, references or the header's measured times (checked below)."""
    text = text.split("## References")[0]
    text = re.sub(r"\*\*Time:\*\*[^\n]*(\n[^\n]+)*", " ", text)
    for pattern in (
        r"`[^`]*`",
        r"\$[^$]*\$",
        r"\]\([^)]*\)",
        r"https?://\S+",
        r"arXiv:\S+|doi:\S+",
        r"\S+\.(?:ipynb|md|py)",
    ):
        text = re.sub(pattern, " ", text)
    text = re.sub(r"(?m)^\s*\d+\.\s", " ", text)
    text = re.sub(
        r"\b(notebooks?|Notebooks?|exercises?|Exercise|questions?|step|section)\s+\d+"
        r"(\s*(-|and|,|to)\s*\d+)*",
        " ",
        text,
    )
    text = re.sub(r"(?<!\d)0\d(?= ·|'s|\b)", " ", text)  # notebook numbers 01-09
    return {n.rstrip(",") for n in re.findall(r"(?<![\w.])\d[\d,]*(?:\.\d+)?%?", text)}


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_prose_states_no_number_a_run_produces(path):
    allowed = FIXED_FACTS | set(PROSE_NUMBERS[path.stem].split())
    stated = set().union(
        *(prose_numbers(source(c)) for c in cells(path) if c["cell_type"] == "markdown")
    )
    unexpected = sorted(stated - allowed)
    assert not unexpected, (
        f"{path.name} states {unexpected} in markdown: if a run produced it, print it from a cell "
        "and refer to the output; if it is a fixed fact (a size, a setting, a paper's figure), add "
        "it to PROSE_NUMBERS with what it is."
    )


def test_prose_numbers_finds_what_a_run_would_print():
    text = "In full mode TPE led by 1.7 units [0.8, 3.4] after `n_trials=15`, in notebook 05."
    assert prose_numbers(text) == {"1.7", "0.8", "3.4"}


# ------------------------------------------------------------ one set of measured times

RAN_IN = re.compile(r"full mode ran in ([\d.]+(?:-[\d.]+)? (?:min|s))\b")


def header_time(path: Path) -> str:
    """The measured full-mode time a notebook's first cell quotes, e.g. ``"3.6-3.8 min"``."""
    found = RAN_IN.findall(source(cells(path)[0]))
    assert len(found) == 1, (
        f"{path.name}: say 'full mode ran in X min' (or 'X s') once in the header"
    )
    return found[0]


def row_cells(line: str) -> list[str]:
    """The cells of one markdown table row."""
    return [cell.strip() for cell in line.strip("|").split("|")]


def table_row(text: str, start: str) -> list[str]:
    rows = [line for line in text.splitlines() if line.startswith(start)]
    assert len(rows) == 1, f"one table row starting {start!r}"
    return row_cells(rows[0])


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_readme_headers_and_instructors_quote_the_same_times(path):
    readme = (NOTEBOOKS.parent / "README.md").read_text()
    instructors = (NOTEBOOKS.parent / "docs" / "instructors.md").read_text()
    full_mode = table_row(readme, f"| `{path.stem}` |")[3]
    solution = NOTEBOOKS / "solutions" / f"{path.stem}_solutions.ipynb"
    assert full_mode == f"{header_time(path)} (+{header_time(solution)})", (
        f"README's tour row of {path.stem} says {full_mode!r}: the headers say otherwise"
    )
    line = next(line for line in instructors.splitlines() if f"| {path.name[:2]} ·" in line)
    _, _, run, planned = row_cells(line)
    assert run == header_time(path), f"docs/instructors.md gives {run!r} for {path.stem}"
    session = re.search(r"\*\*Time:\*\* about (\d+) minutes", source(cells(path)[0]))
    assert session, f"{path.name}: the header's time starts 'about N minutes'"
    assert planned == f"{session.group(1)} min", (
        f"instructors' session for {path.stem}: {planned!r}"
    )
