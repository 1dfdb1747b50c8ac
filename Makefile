# The two commands: `make run` (app with demo data on http://127.0.0.1:8000) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
PY_CANDIDATES := python3.14 python3.13 python3.12 python3 python
HOST ?= 127.0.0.1
PORT ?= 8000
HL7_PORT ?= 2575
# The suite's workers (pytest-xdist), each with its own test database: these machines have two cores.
TEST_WORKERS ?= 2

# Find an interpreter >= 3.12 (pyenv honours .python-version for `python3`).
PYTHON := $(shell for p in $(PY_CANDIDATES); do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; break; }; done)

.PHONY: help setup run test lint fmt typecheck check browser-deps bench bench-growth bench-deps profile

help:
	@echo "make run   - set up the database roles, migrate, load demo data, serve on http://$(HOST):$(PORT) with a task worker"
	@echo "make test  - set up and run the whole suite (unit, integration, browser) on Postgres"
	@echo "make bench - benchmark: seeded database, gunicorn, wrk at 16 connections (BENCH_ARGS=...)"
	@echo "make bench-growth - queue p95 at 10k vs 1M historical handoffs"
	@echo "make profile PAGE=queue - one page's CPU, SQL and call tree on the benchmark database (after make bench)"
	@echo "make lint / fmt / typecheck - ruff check, ruff format, mypy"

$(BIN)/python:
	@if [ -z "$(PYTHON)" ]; then echo "Python >= 3.12 is required; install python3.12 or newer (or pyenv) and retry." >&2; exit 1; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "Installing pinned dependencies into $(VENV)/ (log: $(VENV)/install.log)..."
	@$(BIN)/python -m pip install --disable-pip-version-check --progress-bar off -e '.[dev]' > $(VENV)/install.log 2>&1 \
		|| { tail -30 $(VENV)/install.log >&2; echo "dependency install failed; see $(VENV)/install.log" >&2; exit 1; }
	touch $@

setup: $(VENV)/.installed

# Two database roles, as in production (docs/security.md, "Database roles"): db_roles, migrate and the
# demo seed connect as the owner; the web server, the worker and the listener as the app's role, which
# can't change or delete audit rows. DATABASE_URL, if set, must be a superuser's (the embedded one is).
run: setup
	DEBUG=$${DEBUG:-true} DB_CONNECT_AS=owner $(BIN)/python manage.py db_roles
	DEBUG=$${DEBUG:-true} DB_CONNECT_AS=owner $(BIN)/python manage.py migrate --no-input
	DEBUG=$${DEBUG:-true} DB_CONNECT_AS=owner $(BIN)/python manage.py seed_demo
	@# The task worker and the HL7 listener run beside the web server, each in its own process group
	@# (set -m) so that the trap stops them (and the worker's autoreloader) whenever runserver exits.
	@set -m; export DEBUG=$${DEBUG:-true} DB_CONNECT_AS=app; \
	$(BIN)/python manage.py db_worker & worker=$$!; \
	$(BIN)/python manage.py hl7_listen --host $(HOST) --port $(HL7_PORT) & listener=$$!; \
	trap 'kill -TERM -- -$$worker -$$listener 2>/dev/null; wait $$worker $$listener 2>/dev/null' EXIT; \
	echo "Task worker started (pid $$worker); HL7 MLLP listener on $(HOST):$(HL7_PORT) (pid $$listener); both stop with the server."; \
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's chromium for the browser tests..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The browser tests need Chromium: run 'sudo apt-get install chromium' (Debian/Ubuntu) and retry." >&2; exit 1; \
	  fi; }

test: setup browser-deps lint typecheck
	DJANGO_ALLOW_ASYNC_UNSAFE=true $(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# mypy's Django plugin imports settings; it never connects, so a placeholder URL spares the embedded server.
typecheck:
	DATABASE_URL=postgres://typecheck@localhost/none SECRET_KEY=typecheck $(BIN)/mypy

check: lint typecheck test

bench-deps:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else \
	    echo "The benchmark needs wrk: run 'sudo apt-get install wrk' and retry." >&2; exit 1; \
	  fi; }

bench: setup bench-deps
	$(BIN)/python -m backoffice.devtools.bench $(BENCH_ARGS)

bench-growth: setup bench-deps
	$(BIN)/python -m backoffice.devtools.bench --growth $(BENCH_ARGS)

PAGE ?= queue
profile: setup
	$(BIN)/python -m backoffice.devtools.bench.profile $(PAGE) --tree $(PROFILE_ARGS)
