# The two commands a fresh machine needs: `make demo` and `make test`.
# Everything else (virtualenv, Python packages, Kafka jars and Apicurio Registry from Maven
# Central) is set up on demand.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: install jars demo test lint typecheck unit soak clean

# `.[dev]` includes the `sandbox` extra (`make demo` and `make test` run the sandboxes; the demo
# reads the events with confluent-kafka) and the `analytics` extra (pyarrow and DuckDB:
# `deskstream replay --out`, the demo's replay and query, and their tests).
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

## The randomized convergence tests at soak size: the planner models (two and three members)
## with SOAK_EXAMPLES interleavings each (default 5000), then the end-to-end test against a
## real broker with SOAK_SCRIPTS conversations (default 200); DESKSTREAM_E2E_SEED=<n> replays
## a printed seed. Then the burst under platform faults with SOAK_SCRIPTS conversations.
## Then the cluster suite at full size: 60 conversations per failure, a 60 s platform outage,
## 10,000 hostile webhooks, and the tests sized by DESKSTREAM_SOAK (the CDC takeover under a
## person's steady Case changes: four Cases every 0.7 s). Logs stay in .deskstream/soak/
## until the next soak.
SOAK_EXAMPLES ?= 5000
SOAK_SCRIPTS ?= 200
soak: jars
	DESKSTREAM_MODEL_EXAMPLES=$(SOAK_EXAMPLES) $(BIN)/pytest -q --timeout=3600 \
		tests/streams/test_convergence_model.py tests/streams/test_convergence_model_three.py
	DESKSTREAM_E2E_SCRIPTS=$(SOAK_SCRIPTS) $(BIN)/pytest -s -q --basetemp=.deskstream/soak \
		tests/e2e/test_concurrent_edits.py::test_randomized_concurrent_edits_converge
	DESKSTREAM_FAULT_CONVERSATIONS=$(SOAK_SCRIPTS) $(BIN)/pytest -s -q --timeout=3600 \
		--basetemp=.deskstream/soak-faults tests/e2e/test_convergence_under_faults.py
	DESKSTREAM_SOAK=1 DESKSTREAM_CLUSTER_CONVERSATIONS=60 DESKSTREAM_CLUSTER_OUTAGE_SECONDS=60 \
		DESKSTREAM_HOSTILE_WEBHOOKS=10000 $(BIN)/pytest -s -q --timeout=3600 \
		--basetemp=.deskstream/soak-cluster tests/cluster

clean:
	$(BIN)/deskstream kafka down || true
	rm -rf $(VENV) .deskstream .mypy_cache .pytest_cache .ruff_cache
