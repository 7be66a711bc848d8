# mastertrail — developer commands. Every target builds .venv from the repo's own files.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test check lint typecheck bench docs soak clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e ".[postgres,mysql,buildbot,web,png]" --group dev
	touch $(STAMP)

# The demo needs the core only: no database drivers, Buildbot, web or plotting extras.
DEMO_STAMP := $(VENV)/.demo-installed

$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/mastertrail --db sqlite:///demo.sqlite demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# The reliability suite with larger sizes (more calls, more kills): the same tests as in
# `make test`, run longer.
SOAK_TESTS := tests/test_reliability_races.py tests/test_reliability_kill.py \
	tests/test_reliability_restart.py tests/test_reliability_sqlite.py \
	tests/test_bad_input.py tests/test_bad_input_database.py \
	tests/test_bad_input_cli.py tests/test_bad_input_buildbot.py tests/test_tampering.py

soak: $(STAMP)
	MASTERTRAIL_SOAK=1 $(BIN)/python -m pytest $(PYTEST_ARGS) $(SOAK_TESTS)

docs: $(STAMP)
	$(BIN)/python -m pip install --quiet --group docs
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis docs/_build
