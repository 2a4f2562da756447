# invoice_pipelines: `make run` (Dagster UI with demo data) and `make test` (the whole suite).
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -euo pipefail -c

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# uv for make install where none is on PATH (requirements-tools.lock)
TOOLS := .venv-tools
HOST ?= 127.0.0.1
PORT ?= 3000
BENCH_ORDERS ?= 5000
BENCH_DOCS ?= 200
# The official e-invoice rules the intake judges by (docs/intake.md) are in no package: a
# deployment provides their folders; here the ones beside the clone (../shared), when present,
# serve `make run`, the demo and the tests. Empty: the verdicts say "not configured".
export INVOICE_PIPELINES_EN16931_RULES_DIR ?= $(wildcard $(abspath ../shared/reference/en16931))
export INVOICE_PIPELINES_XRECHNUNG_RULES_DIR ?= $(wildcard $(abspath ../shared/reference/xrechnung))
export INVOICE_PIPELINES_PEPPOL_RULES_DIR ?= $(wildcard $(abspath ../shared/reference/peppol))
# One machine (make run, the tests, bench): the audit chain may be sealed with the key generated
# into the data folder on PostgreSQL too; a deployment of several machines sets
# INVOICE_PIPELINES_AUDIT_SEAL_KEY instead (docs/tax-audit.md, "The seal key")
export INVOICE_PIPELINES_AUDIT_SEAL_LOCAL_KEY ?= true

.PHONY: install system-packages run migrate seed-demo test lint format bench clean screenshots lock

install: system-packages $(STAMP)

system-packages:
	@scripts/ensure-system-packages.sh

# Exactly the versions in requirements-dev.lock (the runtime lock plus the dev tools the tests need;
# both generated from pyproject.toml by `make lock`, with hashes), then the project itself without
# dependencies: a fresh machine and CI install the same set every time. With uv (seconds): the one
# on PATH, else the version requirements-tools.lock pins with its hashes, put into $(TOOLS) by pip
# (one wheel, ~15 s; pip for all ~200 packages took 80 s on an idle machine and 340 s on a loaded
# one, most of it CPU). pip for everything where no uv wheel fits. The container image installs
# requirements.lock only (deploy/Containerfile).
# Quiet, with one progress line per step. With the bytecode of every module written at install
# (uv's --compile-bytecode, compileall for ours): a process reads it instead of compiling each
# module it imports at every start, also where PYTHONDONTWRITEBYTECODE keeps Python from writing it
# (`import dagster` 4.2-4.9 s against 7.4-9.5 s without, at load 7-11).
$(STAMP): pyproject.toml requirements-dev.lock requirements-tools.lock
	@started=$$(date +%s)
	step() { echo "make install: $$*"; }
	uv=$$(command -v uv || true)
	if [ -z "$$uv" ] && [ -x $(TOOLS)/bin/uv ]; then uv=$(TOOLS)/bin/uv; fi
	if [ -z "$$uv" ]; then
	  step "[0/2] uv into $(TOOLS) (requirements-tools.lock)"
	  if "$(PYTHON)" -m pip install -q --disable-pip-version-check --root-user-action=ignore \
	      --require-hashes --target $(TOOLS) -r requirements-tools.lock; then
	    uv=$(TOOLS)/bin/uv
	  else
	    step "no uv for this machine: pip installs everything"
	  fi
	fi
	if [ -n "$$uv" ]; then
	  step "[1/2] the pinned dependencies into $(VENV) (uv, with their bytecode)"
	  [ -x $(BIN)/python ] || "$$uv" venv -q --seed -p "$(PYTHON)" $(VENV)  # --seed: pip too
	  "$$uv" pip sync -q -p $(BIN)/python --require-hashes --compile-bytecode requirements-dev.lock
	  step "[2/2] invoice-pipelines itself, editable"
	  "$$uv" pip install -q -p $(BIN)/python --no-deps -e .
	else
	  step "[1/3] $(VENV) and a current pip"
	  [ -x $(BIN)/python ] || "$(PYTHON)" -m venv $(VENV)
	  $(BIN)/python -m pip install -q --upgrade pip
	  step "[2/3] the pinned dependencies of requirements-dev.lock (pip, about 90 s on a fresh machine)"
	  $(BIN)/python -m pip install -q --require-hashes -r requirements-dev.lock
	  step "[3/3] invoice-pipelines itself, editable"
	  $(BIN)/python -m pip install -q --no-deps -e .
	fi
	$(BIN)/python -m compileall -q -j 0 invoice_pipelines invoice_pipelines_devtools >/dev/null
	touch $(STAMP)
	step "done in $$(( $$(date +%s) - started )) s"

# after a change of the dependencies in pyproject.toml: resolve and pin them again (needs uv).
# requirements.lock: [project.dependencies] only, what the container image installs.
# requirements-dev.lock: the same plus the dev extra, resolved under requirements.lock as a
# constraint, so it pins every runtime package at the image's version; a dev tool that cannot live
# with those versions fails here instead of holding a runtime package back. An existing lock's pins
# are kept wherever they still fit.
lock:
	uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q \
	  --custom-compile-command "make lock" -o requirements.lock
	uv pip compile pyproject.toml --extra dev --constraint requirements.lock \
	  --python-version 3.11 --generate-hashes -q \
	  --custom-compile-command "make lock" -o requirements-dev.lock

# PostgreSQL takes three logins (docs/postgresql-and-scale-out.md): INVOICE_PIPELINES_DB_URL is the
# runtime role's, which seed-demo and every service of `make run` use for one organization's work,
# INVOICE_PIPELINES_SYSTEM_DB_URL the system login's, which the same processes use for the work
# over every organization (sensors, schedules, cleanup), and OWNER_DB_URL the tables' owner's,
# which only the migrations log in as (scripts/migrate.py: migrate as the owner, grant the runtime
# login invoice_app and the system login invoice_app_system, check both are logins the pipelines
# start with). SQLite, the default: one file, no roles, the other two URLs unused.
migrate: install
	@$(BIN)/python scripts/migrate.py

seed-demo: migrate
	$(BIN)/invoice-pipelines seed-demo

# compileall: our modules' bytecode as they are now (seconds the first time, then only what
# changed), read by every process `make run` starts even where PYTHONDONTWRITEBYTECODE is set
run: seed-demo
	@$(BIN)/python -m compileall -q -j 0 invoice_pipelines >/dev/null
	@HOST=$(HOST) PORT=$(PORT) scripts/run-dagster.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The suite in TEST_WORKERS processes (pytest-xdist; one more than the cores, at most 4: each
# worker has its own scratch databases and PostgreSQL connections), the longest tests first,
# spread over the workers' first shares (conftest.py), each idle worker taking tests from the others' queues. The longest tests wait on
# processes of their own (make run, daemons, parse servers), so a third worker on 2 cores fills
# that time: 2,948-3,014 tests took 1,070 s with 2 workers (its first third beside other work)
# and 710 s with 3 (alone), 2026-11-26; earlier, with fewer tests, 2 workers 559-768 s, one
# process 949 s. TEST_WORKERS=0: one process, in file order.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n < 3 ? n + 1 : 4 )))
test: install
	@scripts/ensure-postgres.sh
	@scripts/ensure-node-packages.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	OMP_THREAD_LIMIT=1 NO_GCE_CHECK=true $(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal --durations=20

# the README's pictures of the UI (docs/screenshots), taken by the browser test in the system
# Chromium that install provides; with INVOICE_PIPELINES_SCREENSHOTS set, a skip is a failure
screenshots: install
	INVOICE_PIPELINES_SCREENSHOTS=docs/screenshots OMP_THREAD_LIMIT=1 NO_GCE_CHECK=true \
	  $(BIN)/pytest -q -p no:cacheprovider -m browser invoice_pipelines_tests/test_browser.py

# every benchmark at a small size, on INVOICE_PIPELINES_DB_URL (default: embedded SQLite)
bench: install
	$(BIN)/invoice-pipelines bench batch-invoicing --orders $(BENCH_ORDERS)
	$(BIN)/invoice-pipelines bench intake --n $(BENCH_DOCS)

clean:
	rm -rf .data .pytest_cache .ruff_cache
