# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export FLASK_APP := wsgi:app

.PHONY: run test install lint migration clean browser-deps clock-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Serve the directory with fictional demo data on http://127.0.0.1:8000
run: $(STAMP)
	$(BIN)/flask db upgrade
	$(BIN)/flask demo load
	$(BIN)/gunicorn -c config/gunicorn.conf.py wsgi:app

## Debian's Chromium for the browser tests (skipped with a message where it cannot install)
browser-deps:
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || \
	  ( (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	    || (sudo -n apt-get update -qq && sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	    || echo "Chromium could not be installed: the browser tests will be skipped." )

## Debian's libfaketime, for the tests that run processes whose clocks differ (else skipped)
clock-deps:
	@[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || \
	  ( (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime) \
	    || (sudo -n apt-get update -qq && sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime) \
	    || echo "faketime could not be installed: the clock-skew process tests will be skipped." )

## Lint and the whole test suite
test: $(STAMP) browser-deps clock-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

## Write a new migration for what changed in the models: make migration MESSAGE="add x"
migration: $(STAMP)
	rm -f /tmp/directory-migration.sqlite3
	DIRECTORY_SQLALCHEMY_DATABASE_URI=sqlite:////tmp/directory-migration.sqlite3 \
	  $(BIN)/flask db upgrade
	DIRECTORY_SQLALCHEMY_DATABASE_URI=sqlite:////tmp/directory-migration.sqlite3 \
	  $(BIN)/flask db migrate -m "$(or $(MESSAGE),schema change)"
	rm -f /tmp/directory-migration.sqlite3

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
