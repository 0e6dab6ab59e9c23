"""The conda and Binder environments cannot be built here: their pins must agree with
requirements.txt, as must check.PINNED; test-only tools stay out of them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch", "psycopg2-binary": "psycopg2"}


def pinned_requirements(file: str = "requirements.txt") -> dict[str, str]:
    pins = {}
    for line in (ROOT / file).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def conda_pins(path: Path) -> dict[str, str]:
    pins = {}
    for entry in yaml.safe_load(path.read_text())["dependencies"]:
        if isinstance(entry, dict):
            for pip_line in entry["pip"]:
                if "==" in pip_line:
                    name, version = pip_line.split("==")
                    pins[name.lower()] = version
        elif "=" in entry:
            name, version = entry.split("=")[:2]
            pins[name.lower()] = version
    return pins


def test_torch_is_pinned_exactly():
    assert pinned_requirements()["torch"] == "2.13.0"


@pytest.mark.parametrize("env_file", ["environment.yml", "binder/environment.yml"])
def test_conda_pins_agree(env_file):
    conda = conda_pins(ROOT / env_file)
    for name, version in pinned_requirements().items():
        assert conda.get(CONDA_NAMES.get(name, name)) == version, f"{name} in {env_file}"
    assert "=cpu_" in (ROOT / env_file).read_text(), "CPU-only PyTorch"


def test_check_pins_are_requirements_pins():
    from qgtools import check

    pins = pinned_requirements()
    assert {name: pins.get(name) for name in check.PINNED} == check.PINNED


def test_test_tools_are_pinned_in_their_own_file_only():
    test_pins = pinned_requirements("requirements-test.txt")
    assert {"pytest", "nbval", "ruff"} <= set(test_pins)
    assert not set(test_pins) & set(pinned_requirements()), "pinned twice"
    for env_file in ("environment.yml", "binder/environment.yml"):
        assert not set(test_pins) & set(conda_pins(ROOT / env_file)), env_file
    assert "requirements-test.txt" in (ROOT / "Makefile").read_text()


def test_binder_installs_qgtools():
    assert "pip install --no-deps -e ." in (ROOT / "binder" / "postBuild").read_text()


def test_jupyterlab_settings_are_shipped_into_the_environments_prefix():
    import json

    overrides = json.loads((ROOT / "binder" / "overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    assert "share/jupyter/lab/settings/overrides.json" in (ROOT / "Makefile").read_text()
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert "sys.prefix" in post_build and "binder/overrides.json" in post_build
    # never the user's own configuration
    assert "~/.jupyter" not in post_build and "$HOME" not in post_build
