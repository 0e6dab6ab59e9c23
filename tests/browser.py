"""JupyterLab in a real browser, for tests/test_browser.py: start a server, open a notebook,
run every cell from the menu as a person would, read back what the notebook shows.

The server runs on 127.0.0.1 with a token, from a temporary copy of the notebooks (nothing is
saved into the repository), with its own settings and workspace folders (a user's JupyterLab
configuration plays no part), and with the environment's own ``overrides.json``, the one
``make install`` and Binder's ``postBuild`` put into the prefix. Chromium is Debian's (``which
chromium``), driven by Playwright; Playwright's own browser download is never used.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
EXPECTED_STDERR = "expected-stderr:"  # a cell tag `expected-stderr:<reason>` allows stderr there
NEWS_QUESTION = "Would you like to get notified"  # JupyterLab's news pop-up
USER_SETTINGS = {  # the test's own user settings: never autosave outputs into the copy either
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


def chromium_path() -> str | None:
    """Debian's Chromium binary, or None."""
    return shutil.which("chromium")


class JupyterLab:
    """A JupyterLab server started for a test; use as a context manager."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.workdir, self.extra_env = workdir, env or {}
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.root = workdir / "root"
        self.process: subprocess.Popen | None = None
        self.log = workdir / "jupyterlab.log"

    def url(self, path: str = "lab") -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def __enter__(self) -> JupyterLab:
        for folder in ("notebooks", "docs"):  # notebooks link to ../docs
            shutil.copytree(ROOT / folder, self.root / folder)
        settings = self.workdir / "settings"
        for name, values in USER_SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(values))
        env = os.environ | self.extra_env
        env |= {
            "JUPYTER_CONFIG_DIR": str(self.workdir / "config"),
            "JUPYTER_RUNTIME_DIR": str(self.workdir / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(self.workdir / "workspaces"),
        }
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, to read cells back
        ]
        if os.geteuid() == 0:  # CI runs as root
            command.append("--allow-root")
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"JupyterLab did not answer in 90 s: {self.log.read_text()[-3000:]}")

    def __exit__(self, *_) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def shut_down_kernels(self) -> None:
        """Shut every kernel down (one notebook's kernel must not hold memory for the next)."""
        with urllib.request.urlopen(self.url("api/sessions"), timeout=10) as response:
            sessions = json.load(response)
        for session in sessions:
            request = urllib.request.Request(
                self.url(f"api/sessions/{session['id']}"), method="DELETE"
            )
            urllib.request.urlopen(request, timeout=30).close()


@contextmanager
def chromium_page(width: int = 1400, height: int = 1000) -> Iterator:
    """A Playwright page in Debian's Chromium (headless; Playwright runs it without sandbox)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path())
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


KERNEL_STATE = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.content.model || !panel.sessionContext) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.model.toJSON().cells.filter(c => c.cell_type === 'code');
  return {
    kernel: kernel ? kernel.status : 'none',
    unrun: cells.filter(c => c.execution_count === null).length,
    errors: cells.filter(c => c.outputs.some(o => o.output_type === 'error')).length,
    cells: cells.length,
  };
}"""


def open_notebook(page, lab: JupyterLab, name: str, timeout_s: float = 90) -> None:
    """Open notebooks/`name` in a fresh JupyterLab workspace and wait for an idle kernel."""
    page.goto(lab.url(f"lab/tree/notebooks/{name}") + "&reset", wait_until="domcontentloaded")
    wait_for(page, "k => k && k.kernel === 'idle'", timeout_s, f"{name}: no idle kernel")


def wait_for(page, predicate: str, timeout_s: float, message: str):
    """Poll KERNEL_STATE until `predicate` (a JavaScript function of it) holds; its value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = page.evaluate(KERNEL_STATE)
        if page.evaluate(f"({predicate})", state):
            return state
        time.sleep(0.5)
    raise AssertionError(f"{message} after {timeout_s:.0f} s (last state: {state})")


def run_all_from_menu(page, timeout_s: float) -> dict:
    """Run > Run All Cells, as a person would; wait until every cell ran or one failed."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()
    finished = "k => k && k.kernel === 'idle' && (k.unrun === 0 || k.errors > 0)"
    wait_for(
        page, "k => k && (k.kernel === 'busy' || k.unrun < k.cells)", 30, "Run All did not start"
    )
    wait_for(page, finished, timeout_s, "the cells did not all run")
    time.sleep(1)  # a last output message may still be on its way
    return wait_for(page, finished, 30, "the kernel did not settle")


def notebook_json(page) -> dict:
    """The open notebook as nbformat JSON, outputs as the browser holds them."""
    return page.evaluate("() => window.jupyterapp.shell.currentWidget.content.model.toJSON()")


def unexpected_outputs(notebook: dict) -> list[str]:
    """Error outputs anywhere; stderr outputs in cells without an `expected-stderr:<reason>` tag;
    and the offline-data note on stderr, which no tag allows."""
    problems = []
    code_cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    for number, cell in enumerate(code_cells, 1):
        tags = cell.get("metadata", {}).get("tags", [])
        allowed = any(t.startswith(EXPECTED_STDERR) and len(t) > len(EXPECTED_STDERR) for t in tags)
        first_line = "".join(cell["source"]).strip().splitlines()[:1]
        where = f"code cell {number} ({first_line[0][:60] if first_line else 'empty'})"
        for output in cell.get("outputs", []):
            if output["output_type"] == "error":
                problems.append(f"{where}: {output['ename']}: {output['evalue']}")
            elif output["output_type"] == "stream" and output["name"] == "stderr":
                text = "".join(output["text"])
                if "offline sample" in text or not allowed:
                    problems.append(f"{where}: stderr: {text.strip()[:400]}")
    return problems


def news_default(lab: JupyterLab) -> str:
    """The `fetchNews` default the server gives (overrides.json in the prefix sets "false")."""
    plugin = "@jupyterlab/apputils-extension:notification"
    with urllib.request.urlopen(lab.url(f"lab/api/settings/{plugin}"), timeout=10) as response:
        return json.load(response)["schema"]["properties"]["fetchNews"]["default"]


def screenshots(page, folder: Path, stem: str) -> list[Path]:
    """Screenshots of the open notebook from top to bottom, one per screenful."""
    folder.mkdir(parents=True, exist_ok=True)
    scroller = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer").first
    scroller.evaluate("e => e.scrollTo(0, 0)")
    step = max(200, int(scroller.evaluate("e => e.clientHeight") * 0.9))
    paths, top = [], -1
    while scroller.evaluate("e => e.scrollTop") > top:  # until a scroll no longer moves it
        top = scroller.evaluate("e => e.scrollTop")
        time.sleep(0.3)
        path = folder / f"{stem}-{len(paths):02d}.png"
        page.screenshot(path=str(path))
        paths.append(path)
        scroller.evaluate(f"e => e.scrollBy(0, {step})")
    return paths
