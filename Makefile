# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two stamps: `make run` installs only what the site needs (the runtime dependencies);
# `make test` adds the test extra (Playwright, schemathesis, hypothesis, ruff, psycopg...).
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
# axe-core (the accessibility checker the browser tests run), pinned in package-lock.json,
# installed into ./node_modules (never served to patients).
AXE_STAMP := node_modules/.installed
export FLASK_APP := wsgi:app

.PHONY: run test install install-test lint migration clean system-deps axe screenshots

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(TEST_STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

install: $(RUN_STAMP)

install-test: $(TEST_STAMP)

## axe-core from the npm registry (package-lock.json); without npm, or when it fails, the
## accessibility tests are skipped with a message saying so.
$(AXE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1 && npm ci --no-audit --no-fund --loglevel=error; then \
	  touch $(AXE_STAMP); \
	else \
	  echo "could not install axe-core with npm: the accessibility tests will be skipped."; \
	fi

axe: $(AXE_STAMP)

## Serve the directory with fictional demo data on http://127.0.0.1:8000
run: $(RUN_STAMP)
	$(BIN)/flask db upgrade
	$(BIN)/flask demo load
	$(BIN)/gunicorn -c config/gunicorn.conf.py wsgi:app

## Debian's packages the tests drive for real: Chromium (browser tests), libfaketime (processes
## whose clocks differ), nginx (the proxy in front of gunicorn), systemd-analyze (the units).
## One apt-get for whatever is missing; a test whose tool could not be installed is skipped
## with a message saying which.
SYSTEM_DEPS := /usr/bin/chromium:chromium \
  /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1:faketime \
  /usr/sbin/nginx:nginx /usr/bin/systemd-analyze:systemd

system-deps:
	@missing=$$(for pair in $(SYSTEM_DEPS); do [ -e "$${pair%%:*}" ] || echo "$${pair##*:}"; done); \
	[ -z "$$missing" ] || \
	  ( (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) \
	    || (sudo -n apt-get update -qq && sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) \
	    || echo "could not install $$missing: the tests that need them will be skipped." )

## Lint and the whole test suite
test: $(TEST_STAMP) system-deps axe
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

## Screenshots of the main pages (demo data; phone 390x844 and desktop 1280x800) into
## docs/screenshots/, shown in docs/pages.md: re-run after a page changes, commit the PNGs.
screenshots: $(TEST_STAMP) system-deps
	$(BIN)/python tools/screenshots.py

lint: $(TEST_STAMP)
	$(BIN)/ruff check .

## Write a new migration for what changed in the models: make migration MESSAGE="add x"
migration: $(RUN_STAMP)
	rm -f /tmp/directory-migration.sqlite3
	DIRECTORY_SQLALCHEMY_DATABASE_URI=sqlite:////tmp/directory-migration.sqlite3 \
	  $(BIN)/flask db upgrade
	DIRECTORY_SQLALCHEMY_DATABASE_URI=sqlite:////tmp/directory-migration.sqlite3 \
	  $(BIN)/flask db migrate -m "$(or $(MESSAGE),schema change)"
	rm -f /tmp/directory-migration.sqlite3

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache node_modules
