"""What the notebooks, documents and bench scripts cite exists: ``search.NAME``s and test ids."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from qgtools import search

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"(?<!\w)search\.([A-Za-z_]\w*)")
FILE_SUFFIXES = {"py", "sh", "ipynb"}  # search.py, slurm_search.sh: file names, not names
TEST_ID = re.compile(r"`(tests/test_\w+\.py)?::(test_\w+)(\*?)`")


def text_of(path: Path) -> str:
    """A file's text; a notebook's code and markdown cells, joined."""
    if path.suffix != ".ipynb":
        return path.read_text()
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(cell["source"]) for cell in cells)


def citing() -> list[Path]:
    folders = ("notebooks", "docs", "bench", "scripts")
    paths = [p for folder in folders for p in sorted((ROOT / folder).rglob("*")) if p.is_file()]
    return [ROOT / "README.md"] + [p for p in paths if p.suffix in (".ipynb", ".md", ".py", ".sh")]


def cited_names(text: str) -> list[str]:
    return [name for name in NAME.findall(text) if name not in FILE_SUFFIXES]


@pytest.mark.parametrize("path", citing(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_search_name_cited_exists(path):
    missing = sorted(set(cited_names(text_of(path))) - set(dir(search)))
    assert missing == [], f"{path.name} cites search names that do not exist: {missing}"


def test_the_name_pattern_skips_file_names():
    found = cited_names("search.run_study, qgtools.search.cli, slurm_search.sh, search.py")
    assert found == ["run_study", "cli"]


def test_every_test_the_reliability_notes_cite_exists():
    cited = TEST_ID.findall((ROOT / "docs" / "reliability.md").read_text())
    assert cited, "the pattern finds the cited tests"
    missing, current = [], None
    for path, name, star in cited:
        current = path or current
        source = (ROOT / current).read_text() if (ROOT / current).is_file() else ""
        pattern = rf"^def {name}\w*\(" if star else rf"^def {name}\("
        if not re.search(pattern, source, flags=re.MULTILINE):
            missing.append(f"{current}::{name}{star}")
    assert missing == []


LINK = re.compile(r"\]\(([^)\s]+)\)|src=\"([^\"]+)\"")


@pytest.mark.parametrize(
    "path",
    [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_every_link_of_the_readme_and_the_docs_points_at_a_file_that_exists(path):
    links = [a or b for a, b in LINK.findall(path.read_text())]
    local = [link.split("#")[0] for link in links if not link.startswith(("http", "mailto:", "#"))]
    missing = [link for link in local if not (path.parent / link).exists()]
    assert missing == [], f"{path.name} links to files that do not exist: {missing}"
    assert path.name != "README.md" or len(local) >= 8  # the README points at the pages


def test_the_package_page_has_a_row_for_every_module():
    page = (ROOT / "docs" / "package.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    modules = {p.stem for p in (ROOT / "qgtools").glob("*.py") if not p.stem.startswith("_")}
    assert modules - named == set(), "docs/package.md lacks these modules"
    assert "search" in named and named - modules - {"search"} == set()
