# The two quick-start commands (README): `make run` and `make test`.
# `make run` installs only the core package (a few small wheels) and answers at once;
# `make test` adds the test extras (torch, transformers, ...), which take minutes.
# Each step leaves a stamp in .venv, redone when pyproject.toml changes.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test clean

$(VENV)/.core: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test: $(VENV)/.core
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: $(VENV)/.core
	$(BIN)/rigsize plan 72B

test: $(VENV)/.test
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV)
