# Two commands a newcomer needs: `make run` and `make test`. See README.md.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test bench lint format install install-dev migrate clean screenshots

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Development run: SQLite under var/ and Celery's filesystem broker unless
# DATABASE_URL / CELERY_BROKER_URL are set. Web, worker and beat from the Procfile.
# var/dev.env (DJANGO_DEBUG=1, a random secret key) is written once and read by
# manage.py whenever DJANGO_SECRET_KEY is unset, so commands work in a second shell.
run: export DJANGO_DEBUG ?= 1
run: install
	mkdir -p var/broker/queue var/broker/processed var/media
	rm -rf var/prometheus && mkdir -p var/prometheus  # /metrics counters of this run's workers
	$(PY) -m compliance_site.devenv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_log_key
	$(PY) manage.py collectstatic --noinput --verbosity 0
	PORT=$(PORT) $(VENV)/bin/honcho start -f Procfile -p $(PORT)

test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

# The README's screenshots (docs/screenshots/), taken by the browser tests.
screenshots: install-dev
	COMPLIANCE_SCREENSHOTS=1 $(PY) -m pytest -q -p no:cacheprovider tests/reporting/test_workspace_browser.py

bench: install-dev
	$(PY) -m bench $(BENCH_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	DJANGO_DEBUG=1 $(PY) manage.py check
	DJANGO_DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
