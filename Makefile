# Workbench: `make run` serves the embedded default; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run up test install migrate demo lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py load_demo

run: demo
	$(BIN)/python manage.py runserver 127.0.0.1:8000

# Web (gunicorn), worker, beat and the trail sequencer (Procfile) on the real services: PostgreSQL
# and Redis, by default the local ones. Creates the database if needed,
# migrates and loads the demo (once).
UP_DATABASE_URL ?= $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/workbench)
UP_REDIS_URL ?= $(or $(REDIS_URL),redis://127.0.0.1:6379/0)
up: $(STAMP)
	DATABASE_URL=$(UP_DATABASE_URL) $(BIN)/python -m workbench.dbcreate
	DATABASE_URL=$(UP_DATABASE_URL) REDIS_URL=$(UP_REDIS_URL) $(BIN)/python manage.py migrate --noinput
	DATABASE_URL=$(UP_DATABASE_URL) REDIS_URL=$(UP_REDIS_URL) $(BIN)/python manage.py load_demo
	DATABASE_URL=$(UP_DATABASE_URL) REDIS_URL=$(UP_REDIS_URL) DJANGO_DEBUG=false PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/honcho start

# The suite twice: against PostgreSQL + Redis (a fresh database per run), then
# on the embedded default (SQLite, eager Celery). With CI=true a missing
# service fails the run instead of skipping it.
test: $(STAMP)
	$(BIN)/python -m tests.run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.trail

clean:
	rm -rf $(VENV) var
