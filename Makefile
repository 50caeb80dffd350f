# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export FLASK_APP := wsgi:app

.PHONY: run test install lint migration clean system-deps

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
test: $(STAMP) system-deps
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
