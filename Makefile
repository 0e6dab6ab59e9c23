# Two commands: `make lab` (set up, open the notebooks) and `make test` (set up, run every test).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: lab test install clean
.DEFAULT_GOAL := lab

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "Need Python 3.11 as '$(PYTHON)' (or: make PYTHON=python3 ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python requirements.txt requirements-generate.txt pyproject.toml binder/overrides.json
	$(BIN)/pip install -r requirements.txt -r requirements-generate.txt
	$(BIN)/pip install --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	# JupyterLab settings for this environment only (no news pop-up, long code lines wrap)
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp binder/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(BIN)/pip install -r requirements-test.txt
	touch $@

install: $(VENV)/.installed

lab: install
	$(BIN)/jupyter lab notebooks/

LINTED := qgtools tests bench scripts notebooks

test: $(VENV)/.installed-test
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	QG_FAST=1 $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

clean:
	rm -rf $(VENV) .pytest_cache qg-studies.journal lightning_logs .slurm
