# The two commands (each does all set-up first, on a fresh machine too):
#   make lab    JupyterLab on 127.0.0.1, opening notebooks/00_start_here.ipynb
#   make test   the whole test suite and the linter (what CI runs, via .ci/run)
# Variables: PORT=8888, LAB_ARGS="--no-browser", MT_DEVICE=cpu|cuda|mps|auto,
#            PYTEST_ARGS="-k attention", BENCH_ARGS="--quick", VENV=.venv, PYTHON=python3.
# Also: make bench (speed table, tens of minutes), make lint, make clean.

VENV ?= .venv
PYTHON ?= python3
PORT ?= 8888
LAB_ARGS ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=

export VENV PYTHON

.PHONY: setup lab test bench lint clean

setup:
	@bash scripts/ensure_venv.sh

lab: setup
	@PORT="$(PORT)" bash scripts/lab.sh $(LAB_ARGS)

# In CI (CI=true) the browser tests need Chromium: install it first when absent.
# A pytest run that collects nothing exits 5, which make counts as a failure.
test: setup
	@if [ "$${CI:-}" = "true" ]; then bash scripts/ensure_chromium.sh; fi
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# Speed against peers, MFU, cost of looking, time to accuracy, generation, memory: one table.
bench: setup
	$(VENV)/bin/python -m benchmarks.run_all $(BENCH_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf .pytest_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
