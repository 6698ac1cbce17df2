# Setup and the two everyday commands: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(BIN)/pip install --quiet -e '.[dev,ray,birdnet,resemblyzer]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/iml-tui demo

test: $(STAMP)
	$(BIN)/ruff check iml_tui tests benchmarks demo_build
	$(BIN)/ruff format --check iml_tui tests benchmarks demo_build
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check iml_tui tests benchmarks demo_build
	$(BIN)/ruff format --check iml_tui tests benchmarks demo_build
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_selection.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_stream.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
