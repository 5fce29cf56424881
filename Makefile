# The two commands a fresh machine needs: `make demo` and `make test`.
# Everything else (virtualenv, Python packages, Kafka jars from Maven Central) is set up on demand.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: install jars demo test lint typecheck unit clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

jars: install
	$(BIN)/deskstream kafka fetch

## Bring up a local Kafka, the worker and the sandboxes, post sample webhooks, show the events.
demo: jars
	$(BIN)/deskstream demo

## Lint, format check, type check and the whole test suite against a real broker.
test: jars lint typecheck
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

## Only the tests that need no broker.
unit: install
	$(BIN)/pytest -m "not kafka and not cluster and not java"

clean:
	$(BIN)/deskstream kafka down || true
	rm -rf $(VENV) .deskstream .mypy_cache .pytest_cache .ruff_cache
