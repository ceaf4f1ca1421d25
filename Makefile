# Two commands for a fresh machine: `make demo` and `make test`. Both create .venv if missing and install
# the project into it (idempotent: re-installs only when pyproject.toml changes).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench-skeleton bench-cluster clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

# torch/torchvision are pinned to the wheels on this machine's disk (see README); pip takes them from there.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Headless Chromium (Debian's package) for the browser check of `adaptune report` in tests/reports/test_report.py:
# installed through apt-get when missing and we are root. Otherwise that test skips, or fails when CI is set.
CHROMIUM ?= $(or $(shell command -v chromium || command -v chromium-browser),/usr/bin/chromium)

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "chromium: not installed and not root; the report's browser test will skip (and fail when CI is set)"; \
	fi

demo: $(STAMP)
	$(BIN)/adaptune search

# The Ray tests one after another and the others beside them at a lower priority (see tests/run-suite).
test: $(STAMP) | $(CHROMIUM)
	$(BIN)/ruff check .
	tests/run-suite $(BIN)/python

lint: $(STAMP)
	$(BIN)/ruff check .

bench-skeleton: $(STAMP)
	$(BIN)/python -m benchmarks.skeleton

bench-cluster: $(STAMP)
	$(BIN)/python -m benchmarks.cluster_bench

clean:
	rm -rf $(VENV) build dist *.egg-info adaptune-runs
