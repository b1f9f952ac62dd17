# VCISC — the README's two commands live here: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= var
TEST_DATA_DIR ?= $(CURDIR)/var/test
TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?=

.PHONY: install run test lint typecheck test-sqlite test-postgres browser-check bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# axe-core for the browser tests' accessibility checks (tests/browser injects it into pages).
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

## Say whether the real-browser tests (tests/browser, Debian's /usr/bin/chromium) run or skip.
browser-check: $(NODE_STAMP)
	@if [ -x /usr/bin/chromium ]; then \
	  echo "browser tests: run (Chromium at /usr/bin/chromium)"; \
	elif [ "$$CI" = "true" ]; then \
	  echo "browser tests: FAIL (CI=true but /usr/bin/chromium is missing; .ci/run installs it)"; \
	else \
	  echo "browser tests: skipped (no /usr/bin/chromium; apt-get install chromium to run them)"; \
	fi

## Set up, migrate, load the demo federation and serve on 127.0.0.1:8000 (SQLite in ./var), with
## a notification worker beside the server; the worker stops when the server does.
run: install
	VCISC_DATA_DIR=$(DATA_DIR) $(BIN)/vcisc migrate
	VCISC_DATA_DIR=$(DATA_DIR) $(BIN)/vcisc demo
	VCISC_DATA_DIR=$(DATA_DIR) $(BIN)/vcisc worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	VCISC_DATA_DIR=$(DATA_DIR) $(BIN)/vcisc serve

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	VCISC_DATA_DIR=$(TEST_DATA_DIR) $(BIN)/mypy

test-sqlite: install browser-check
	VCISC_DATA_DIR=$(TEST_DATA_DIR) $(BIN)/pytest -q $(PYTEST_ARGS)

test-postgres: install
	@$(BIN)/python -c "import psycopg,sys; psycopg.connect('$(TEST_POSTGRES_URL)', connect_timeout=5).close()" \
	  || { echo "PostgreSQL is not reachable at $(TEST_POSTGRES_URL); start it (see README) or set TEST_POSTGRES_URL"; exit 1; }
	VCISC_DATA_DIR=$(TEST_DATA_DIR) VCISC_DATABASE_URL=$(TEST_POSTGRES_URL) $(BIN)/pytest -q --ignore=tests/browser $(PYTEST_ARGS)

## Lint, type-check, then the whole suite on SQLite and on PostgreSQL (the browser tests serve
## their own SQLite database, so they run once, in the SQLite pass).
test: lint typecheck test-sqlite test-postgres

bench: install
	$(BIN)/python bench/bench_matching.py
	$(BIN)/python bench/bench_notify.py
	$(BIN)/python bench/bench_sharing.py
	$(BIN)/python bench/bench_taxii.py
	$(MAKE) leak-deep

## The leak hunt's deep profile: thousands of larger scenarios, more probes each (about half an
## hour; docs/need-to-know.md). `make test` runs the small profile; LEAK_EXAMPLES=N to change.
.PHONY: leak-deep
leak-deep: install
	VCISC_DATA_DIR=$(TEST_DATA_DIR) LEAK_PROFILE=deep $(BIN)/pytest -q -p no:cacheprovider \
	  tests/leak/test_leak_hunt.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var node_modules test-artifacts .pytest_cache .mypy_cache .ruff_cache
