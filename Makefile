# The two quick-start commands (README): `make run` and `make test`.
# Each creates the local virtualenv it needs on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test clean

$(BIN)/rigsize: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: $(BIN)/rigsize
	$(BIN)/rigsize estimate 72B --gpus 4 --batch 16

test: $(BIN)/rigsize
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV)
