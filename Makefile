# batterytrace: `make demo`, `make test`, `make bench` work on a fresh machine with Python 3.11.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_HOME ?=
PYTEST_ARGS ?=

.PHONY: venv demo test bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,browser]'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	@chmod 600 keys_example/*.json  # git does not keep file modes
	$(BIN)/batterytrace demo $(if $(DEMO_HOME),--demo-home $(DEMO_HOME),)

# With CI=true, PostgreSQL and Chromium come from Debian packages (.ci/services); elsewhere
# the tests that need them skip with a one-line reason unless they are already available.
test: venv
	@if [ "$$CI" = "true" ]; then ./.ci/services; fi
	@if [ -f .ci/services.env ]; then set -a; . ./.ci/services.env; set +a; fi; \
	  $(BIN)/python -m pytest -n 2 --timeout 600 $(PYTEST_ARGS)

bench: venv
	$(BIN)/python -m bench.run

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis bench/.cache
