# Two commands for a fresh machine: `make demo` and `make test`. Both create .venv if missing and install
# the project into it (idempotent: re-installs only when pyproject.toml changes).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench-skeleton bench-overhead clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

# torch/torchvision are pinned to the wheels on this machine's disk (see README); pip takes them from there.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/adaptune search

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

bench-skeleton: $(STAMP)
	$(BIN)/python benchmarks/skeleton.py

bench-overhead: $(STAMP)
	$(BIN)/python benchmarks/trial_overhead.py

clean:
	rm -rf $(VENV) build dist *.egg-info adaptune-runs
