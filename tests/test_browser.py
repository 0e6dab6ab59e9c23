"""The notebooks as a participant meets them: JupyterLab in Chromium, every cell run from the
menu, no error and no undeclared stderr on the page; the explorer of 04 clicked through.

Needs Debian's ``chromium`` (``.ci/run`` installs it with apt) and the ``playwright`` package
(requirements-test.txt). Without them the tests skip with the reason; with ``CI=true`` they
fail. ``QG_SCREENSHOTS=DIR`` saves screenshots of every notebook there; on a failure they are
saved anyway (to DIR, else to the test's temporary folder, printed). The notebooks run in
fast mode unless ``QG_FAST`` says otherwise (``QG_FAST=0`` for full-mode screenshots).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from browser import (
    EXPECTED_STDERR,
    NEWS_QUESTION,
    JupyterLab,
    chromium_page,
    chromium_path,
    news_default,
    notebook_json,
    open_notebook,
    run_all_from_menu,
    screenshots,
    unexpected_outputs,
)
from conftest import require

from qgtools.config import env_flag

NOTEBOOKS = (
    "01_data.ipynb",
    "04_manual_search.ipynb",
    "05_optuna_search.ipynb",
    "07_final_model.ipynb",
    "08_populations.ipynb",
    "09_beyond_defaults.ipynb",
)
FAST = env_flag("QG_FAST") if os.environ.get("QG_FAST") else True
RUN_LIMIT_S = 240 if FAST else 1800  # one notebook, all cells


def require_browser() -> None:
    missing = []
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -r requirements-test.txt)")
    if chromium_path() is None:
        missing.append("Debian's chromium on PATH (apt install chromium)")
    require(
        "The browser test needs " + " and ".join(missing) if missing else None,
        ".ci/run installs both",
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_browser()
    env = {"QG_FAST": "1" if FAST else "0"}
    with JupyterLab(tmp_path_factory.mktemp("jupyterlab"), env=env) as server:
        yield server


@pytest.fixture(scope="module")
def page(lab):
    with chromium_page() as browser_page:
        yield browser_page


def test_jupyterlab_is_set_not_to_ask_about_news(lab):
    assert news_default(lab) == "false", (
        "binder/overrides.json is not installed in this environment's prefix: `make install` "
        "copies it to <prefix>/share/jupyter/lab/settings/"
    )


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_cell_runs_from_the_menu_without_error_or_stderr(lab, page, name, tmp_path):
    folder = Path(os.environ["QG_SCREENSHOTS"]) if os.environ.get("QG_SCREENSHOTS") else None
    stem = name.removesuffix(".ipynb")
    try:
        open_notebook(page, lab, name)
        run_all_from_menu(page, RUN_LIMIT_S)
        problems = unexpected_outputs(notebook_json(page))
        assert not problems, "\n".join(problems)
        if name.startswith("04"):
            check_the_explorer(page)
        assert NEWS_QUESTION not in page.inner_text("body"), "JupyterLab asked about news"
    except Exception:
        saved = screenshots(page, folder or tmp_path, stem)
        print(f"{len(saved)} screenshots of {name} in {saved[0].parent}")
        raise
    else:
        if folder:
            screenshots(page, folder, stem)
    finally:
        lab.shut_down_kernels()


def check_the_explorer(page) -> None:
    """The explorer renders as controls; a typed learning rate of 3.0e-4 and a click on Train
    redraw the curve and add a table row showing 3.0e-4."""
    cell = page.locator(".jp-CodeCell").filter(has=page.locator(".widget-button", has_text="Train"))
    assert cell.count() == 1, "the explorer did not render as widgets"
    text = cell.inner_text()
    assert "VBox(children" not in text and "Loading widget" not in text, text[:300]
    assert cell.locator(".widget-slider").count() >= 3 and cell.locator("select").count() >= 3
    rows, image = cell.locator("table tr"), cell.locator(".jp-OutputArea-output img").first
    before, drawn = rows.count(), image.get_attribute("src")
    lr = cell.locator(".widget-inline-hbox").filter(has_text="learning rate").locator("input")
    lr.fill("3.0e-4")
    lr.press("Enter")
    cell.locator(".widget-button", has_text="Train").click()
    deadline = time.monotonic() + 120
    while rows.count() == before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert rows.count() == before + 1, "no new row in the results table after Train"
    assert cell.locator("td", has_text="3.0e-4").count() == 1, cell.locator("table").inner_text()
    assert image.get_attribute("src") != drawn, "the curve was not redrawn"


def code_cell(outputs: list[dict], tags: list[str] = ()) -> dict:
    return {
        "cell_type": "code",
        "source": ["x = 1\n"],
        "metadata": {"tags": list(tags)},
        "outputs": outputs,
    }


def stderr(text: str) -> dict:
    return {"output_type": "stream", "name": "stderr", "text": [text]}


def test_only_declared_stderr_passes_and_never_the_offline_data_note():
    error = {"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": []}
    stdout = {"output_type": "stream", "name": "stdout", "text": ["fine\n"]}
    reason = f"{EXPECTED_STDERR}lightning-says-so"
    cells = [
        code_cell([stdout]),  # 1: fine
        code_cell([stderr("noise\n")]),  # 2: undeclared stderr
        code_cell([stderr("noise\n")], [reason]),  # 3: declared, with a reason: fine
        code_cell([stderr("noise\n")], [EXPECTED_STDERR]),  # 4: a tag without a reason
        code_cell([stderr("Using offline sample (...)\n")], [reason]),  # 5: never allowed
        code_cell([error], [reason]),  # 6: an error, whatever the tags
    ]
    problems = unexpected_outputs({"cells": [{"cell_type": "markdown", "source": []}, *cells]})
    assert [p.split(" (")[0] for p in problems] == [f"code cell {n}" for n in (2, 4, 5, 6)]
    assert "ValueError: bad" in problems[-1]
