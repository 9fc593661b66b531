# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run serve worker prod-local demo db-status db-stop test test-all lint format schema bench cluster cluster-down verify-model

$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

install: $(BIN)/.installed

# The developer's server: manage.py's development settings (DEBUG on, plain HTTP,
# a development secret key) and, unless DATABASE_URL is set, the embedded
# PostgreSQL in .pgdata, stopped when the last process using it exits.
run demo: export DEBUG ?= true
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# Production: the production settings, whose environment (.env.example lists it;
# docs/operations.md, "Configuration") says the rest; never the embedded PostgreSQL.
# Every line it prints is a log line (JSON with LOG_FORMAT=json, the production
# default): make echoes no command, migrate logs what it applied.
serve: export DJANGO_SETTINGS_MODULE ?= payledger_project.settings
serve: install
	@$(BIN)/python manage.py migrate --noinput --verbosity 0
	@$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@exec $(BIN)/gunicorn --config gunicorn.conf.py

# The webhook worker (docs/webhooks.md, "The worker"); start as many as you like.
# Like serve, it prints log lines only: each delivery attempt, its start and stop.
worker: install
	@exec $(BIN)/python manage.py deliver_webhooks

# Production on this laptop (scripts/prod_local.py, docs/operations.md): make serve
# and make worker with the production settings and throwaway secrets (.prod-local/,
# git-ignored), on the embedded PostgreSQL unless DATABASE_URL is set, behind a TLS
# proxy on https://localhost:$(HTTPS_PORT) that sets X-Forwarded-For and -Proto
# (PROXY_COUNT=1).
HTTPS_PORT ?= 8443
PROD_LOCAL_DIR ?= .prod-local
prod-local: install
	@exec $(BIN)/python scripts/prod_local.py --https-port $(HTTPS_PORT) --state-dir $(PROD_LOCAL_DIR)

# Demo data for a developer's database: known passwords, so DEBUG only.
demo: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo

# The embedded PostgreSQL (.pgdata): whether it runs and for which processes;
# stop it now (the next manage.py command starts it again).
db-status: install
	$(BIN)/python -m payledger_project.postgresql.embedded status

db-stop: install
	$(BIN)/python -m payledger_project.postgresql.embedded stop

# The everyday run: lint, then every test but the long ones (servers, browsers,
# subprocesses, the fuzz, the cluster proof, the model's many examples).
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -m "not long"

# The full tier, as .ci/run runs it: every test, the long ones included.
test-all: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The schema does not depend on secrets: the development settings need none.
SCHEMA_FILE ?= openapi.yaml
schema: install
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file $(SCHEMA_FILE)

# Charge throughput beside a bare DRF view and pgbench (PostgreSQL, wrk).
bench: install
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/run.py

# Scaled out on this machine: the primary, a streaming replica, PgBouncer and two
# app servers (scripts/cluster.sh; run as root). `make cluster-down` stops them and
# removes what `make cluster` added.
cluster: install
	bash scripts/cluster.sh up

cluster-down:
	bash scripts/cluster.sh down

# The ledger against its model with many examples, then the bank test under
# faults, on the embedded PostgreSQL unless DATABASE_URL says otherwise.
MODEL_EXAMPLES ?= 100
BANK_SECONDS ?= 60
verify-model: install
	PAYLEDGER_MODEL_EXAMPLES=$(MODEL_EXAMPLES) PAYLEDGER_BANK_SECONDS=$(BANK_SECONDS) \
	$(BIN)/python -m pytest -rP --show-capture=stderr -p no:cacheprovider \
	payments/tests/test_model.py payments/tests/test_found_by_the_model.py payments/tests/test_bank.py
