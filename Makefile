# gansr: `make run` trains, evaluates and registers a generator end to end;
# `make test` runs the test suite. Both set up .venv from the lock file first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export PATH := $(BIN):$(PATH)

.PHONY: install run test test-fast lint ui shell lock clean

install: $(STAMP)

# uv (pinned in the lock) installs the lock in seconds where pip takes minutes, and byte-compiles
# on every core. It does not read pip's configuration: where only pip can reach the package index
# (a pip.conf mirror), the install falls back to pip.
UV_INSTALL := $(BIN)/uv pip install --quiet --python $(BIN)/python
PIP_INSTALL := $(BIN)/python -m pip install --quiet

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) "$$(grep '^uv==' requirements.lock)"
	$(UV_INSTALL) --compile-bytecode -r requirements.lock && $(UV_INSTALL) --no-deps -e . \
	  || { echo "make install: uv could not install the lock; installing with pip instead"; \
	       $(PIP_INSTALL) --no-compile -r requirements.lock && $(BIN)/python -m compileall -q -j 0 $(VENV)/lib \
	       && $(PIP_INSTALL) --no-deps -e .; }
	touch $(STAMP)

run: install
	dvc repro
	gansr summary

test: lint
	python -m pytest

# The edit-test loop: the suite without the tests marked slow (training phases, whole pipelines, servers),
# spread over two processes (pytest-xdist).
test-fast: lint
	python -m pytest -m "not slow" -n 2

# Style and import order (ruff, configured in pyproject.toml); part of every test run.
lint: install
	ruff check src tests stages bench

# A shell with .venv active, for dvc, gansr and mlflow commands (exit to leave).
shell: install
	@echo "gansr: .venv is active in this shell; type exit to leave"
	@VIRTUAL_ENV="$(CURDIR)/$(VENV)" exec "$${SHELL:-/bin/sh}" -i

# The MLflow UI on the project's store; it prints the pages of the training runs and the registered model.
ui: install
	gansr ui

# Re-pin every dependency after changing pyproject.toml.
lock: install
	python -m pip install --quiet -e ".[test]"
	{ echo "# Pinned dependencies of gansr (Python 3.11). Regenerate with: make lock"; \
	  python -m pip freeze --exclude-editable; } > requirements.lock

clean:
	rm -rf data/raw data/pairs reports models metrics plots .dvc/cache .dvc/tmp
