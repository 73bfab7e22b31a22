# Two commands a newcomer needs: `make run` and `make test`. See README.md.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test bench lint format install install-dev migrate clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# The bot SDK is a package of its own (compliance_client/pyproject.toml),
# installed editable next to the project so both use the same code.
$(VENV)/.installed: pyproject.toml compliance_client/pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ./compliance_client -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml compliance_client/pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ./compliance_client -e ".[dev]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Development run: SQLite under var/ and Celery's filesystem broker unless
# DATABASE_URL / CELERY_BROKER_URL are set. Web, worker and beat from the Procfile.
run: export DJANGO_DEBUG ?= 1
run: install
	mkdir -p var/broker/queue var/broker/processed var/media
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_log_key
	$(PY) manage.py collectstatic --noinput --verbosity 0
	PORT=$(PORT) $(VENV)/bin/honcho start -f Procfile -p $(PORT)

test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install-dev
	$(PY) -m bench $(BENCH_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --config-file compliance_client/pyproject.toml compliance_client
	DJANGO_DEBUG=1 $(PY) manage.py check
	DJANGO_DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
