# Two commands matter: `make run` (demo server on SQLite) and `make test` (the suite).
# Both create .venv and install the project into it first; only Python 3.11+ is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint schema

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

run: $(STAMP)
	$(BIN)/c360 demo --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

schema: $(STAMP)
	$(BIN)/c360 export-schema
