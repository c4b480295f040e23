# Chat4All: every target installs what it needs first, so each works on a fresh clone.
# Needs Java 17, Maven, Python 3.11 and Go (Jaeger, the gRPC test tools); the rest is installed here.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
C4A    := $(BIN)/chat4all

.PHONY: help venv deps up down status run test test-unit lint protos bench-pipeline bench-api bench-upload bench-step bench-burst bench-scaling bench-soak bench-overload bench-inspector clean

help:
	@echo "make run    - start the local stack and the platform (worker + API) in the foreground"
	@echo "make test   - run the whole test suite on the real local stack (starts/stops what it needs)"
	@echo "make up | down | status - manage the local stack only"

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Re-installs when the declared dependencies change.
$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

# Jars (Maven), redis-server, prometheus and Chromium with its driver (apt), Jaeger (built with Go), the Go gRPC tools; each step is skipped when already there.
deps: venv
	$(C4A) stack install
	@if [ -x scripts/install_go_tools.sh ]; then scripts/install_go_tools.sh; fi

up: deps
	$(C4A) stack up

down: venv
	$(C4A) stack down

status: venv
	$(C4A) stack status

run: deps
	scripts/run.sh

test: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	scripts/run_tests.sh

test-unit: venv
	$(BIN)/pytest -q -m "not integration"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

protos: venv
	scripts/gen_protos.sh

bench-pipeline: up
	$(BIN)/python bench/pipeline_bench.py

bench-api: up
	bench/api_bench.sh

bench-upload: up
	$(BIN)/python bench/upload_bench.py

# Step load through the gRPC API (issue 9): RATES=50,100,200,300,400 STEP_SECONDS=20 by default.
bench-burst: up
	$(BIN)/python bench/burst.py

bench-scaling: up
	$(BIN)/python bench/scaling.py

bench-soak: up
	$(BIN)/python bench/soak.py

bench-overload: up
	$(BIN)/python bench/overload.py

# The step load at 300 msg/s for 60 s twice, plain and while the inspector's pages load (issue 11).
bench-inspector: up
	$(BIN)/python bench/inspector_load.py

bench-step: up
	$(BIN)/python bench/step_load.py --rates $(or $(RATES),50,100,200,300,400) --step-seconds $(or $(STEP_SECONDS),20)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
