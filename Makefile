VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run stop test lint migrate demo worker beat bench

$(VENV)/.installed: requirements.txt requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	$(VENV)/bin/pip install -q --no-deps -r requirements-nodeps.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py demo --base-url http://$(HOST):$(PORT)

## make run: fresh checkout → venv, install, migrate, demo data, serve on http://$(HOST):$(PORT) (PORT=8131 make run).
## The port is checked first; Ctrl-C stops the server and the embedded PostgreSQL it started.
run: install
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

## make stop: stop an embedded PostgreSQL left running (by tests, a worker, or a server that was killed)
stop:
	$(PY) -m bothero.embedded_postgres stop

## make test: the whole suite (real embedded PostgreSQL; real Redis when REDIS_URL is set)
test: install
	$(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run

worker: install
	$(VENV)/bin/celery -A bothero worker -l info -Q celery,ingestion,webhooks

beat: install
	$(VENV)/bin/celery -A bothero beat -l info
