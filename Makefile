# The two set-up commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint format bench bench-parts clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "handover needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/handover demo --workspace demo-workspace

test: install lint
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The whole run against the stock tools (README "Performance"): make bench SIZES=100k,300k NIGHTS=3
bench: install
	$(BIN)/python -m bench.e2e $(if $(SIZES),--sizes $(SIZES)) $(if $(NIGHTS),--nights $(NIGHTS))

# Parts without Prefect: the demo shop generator, and the data stages in one process.
bench-parts: install
	$(BIN)/python bench/bench_demo_data.py
	$(BIN)/python bench/bench_eligibility.py

clean:
	rm -rf $(VENV) demo-workspace .pytest_cache .ruff_cache
