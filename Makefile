# batterytrace: `make demo`, `make test`, `make bench` work on a fresh machine with Python 3.11.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make demo` keeps its home in one fixed folder, replaced at each run (DEMO_HOME=... to choose).
DEMO_HOME ?= demo-home
PYTEST_ARGS ?=

.PHONY: venv demo test bench bench-audit lint clean

$(STAMP): pyproject.toml
	@echo "== 1/3 creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	@echo "== 2/3 upgrading pip"
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "== 3/3 installing batterytrace and its dependencies (about a minute the first time)"
	$(BIN)/python -m pip install --quiet --progress-bar on -e '.[dev,browser]'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	@chmod 600 keys_example/*.json  # git does not keep file modes
	@echo "== demo home: $(DEMO_HOME) (the previous run's demo home there is replaced)"
	$(BIN)/batterytrace demo --demo-home $(DEMO_HOME) --replace

# With CI=true, PostgreSQL and Chromium come from Debian packages (.ci/services); elsewhere
# the tests that need them skip with a one-line reason unless they are already available.
test: venv
	@if [ "$$CI" = "true" ]; then ./.ci/services; fi
	@if [ -f .ci/services.env ]; then set -a; . ./.ci/services.env; set +a; fi; \
	  $(BIN)/python -m pytest -n 2 --timeout 600 $(PYTEST_ARGS)

# `make bench` runs every group, the whole-ledger audit at 10^5 and 10^6 entries (its 10^6
# fixture, ~4.5 GB in bench/.cache, is built once, ~30 min, and never timed; docs/performance.md,
# "Whole-ledger audit"). BENCH_AUDIT_SIZES=100000 keeps the audit to 10^5;
# `make bench-audit` runs the audit group alone.
bench: venv
	BENCH_AUDIT_SIZES=$${BENCH_AUDIT_SIZES:-100000,1000000} $(BIN)/python -m bench.run

bench-audit: venv
	BENCH_AUDIT_SIZES=$${BENCH_AUDIT_SIZES:-100000,1000000} $(BIN)/python -m bench.run audit

# mypy and lint-imports cannot follow the package-dir mapping of the editable install (an
# import hook), so the folders are linked as build/lint/batterytrace/<folder> first. Every tool
# runs, then lint fails if any of them failed. `ruff format --check .` is not run yet: most of
# the tree is not ruff-formatted (add it back once it is).
LINT_TREE := build/lint
lint: venv
	@rm -rf $(LINT_TREE) && mkdir -p $(LINT_TREE)/batterytrace
	@ln -s ../../../batterytrace/__init__.py $(LINT_TREE)/batterytrace/__init__.py
	@for part in credentials ledger verifier api; do \
	  ln -s ../../../$$part $(LINT_TREE)/batterytrace/$$part; done
	@status=0; \
	  echo "== ruff check"; $(BIN)/ruff check . || status=1; \
	  echo "== mypy"; $(BIN)/mypy || status=1; \
	  echo "== lint-imports"; (cd $(LINT_TREE) && ../../$(BIN)/lint-imports ../../pyproject.toml) \
	    || status=1; \
	  exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis bench/.cache
