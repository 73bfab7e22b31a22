# Two commands a newcomer needs: `make run` and `make test`. See README.md.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test coverage coverage-run coverage-report bench lint format install install-dev \
	migrate clean screenshots lock audit schema schema-check

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Every machine (CI included) installs the exact versions that were tested: the
# lock files, made from pyproject.toml by `make lock`; the project itself goes in
# editable without resolving anything again. The bot SDK is a package of its own
# (compliance_client/pyproject.toml), installed editable next to the project so
# both use the same code.
$(VENV)/.installed: requirements.lock pyproject.toml compliance_client/pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e ./compliance_client -e .
	touch $@

$(VENV)/.installed-dev: requirements-dev.lock pyproject.toml compliance_client/pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.lock
	$(PY) -m pip install --quiet --no-deps -e ./compliance_client -e .
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

# `make coverage`: the suite as `make test` runs it, measured, then the report (the
# floor is fail_under in pyproject.toml). CI measures two passes with coverage-run
# (PostgreSQL, then SQLite) and reports their union with coverage-report.
coverage: install-dev
	rm -rf var/coverage
	$(MAKE) coverage-run coverage-report

coverage-run: install-dev
	mkdir -p var/coverage
	$(VENV)/bin/coverage run -m pytest $(PYTEST_ARGS)

coverage-report: install-dev
	$(VENV)/bin/coverage combine
	$(VENV)/bin/coverage report

# The README's screenshots (docs/screenshots/), taken by the browser tests.
screenshots: install-dev
	COMPLIANCE_SCREENSHOTS=1 $(PY) -m pytest -q -p no:cacheprovider tests/reporting/test_workspace_browser.py

bench: install-dev
	$(PY) -m bench $(BENCH_ARGS)

lint: install-dev schema-check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --config-file compliance_client/pyproject.toml compliance_client
	DJANGO_DEBUG=1 $(PY) manage.py check
	DJANGO_DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

# The OpenAPI schema, committed as docs/openapi.yaml so that an API change shows in
# review: `make schema` regenerates it; `make schema-check` (in lint, hence CI, and
# in pre-commit) fails when the code's schema differs from the committed one.
SCHEMA := docs/openapi.yaml
SPECTACULAR := DJANGO_DEBUG=1 $(PY) manage.py spectacular --validate --fail-on-warn

schema: install-dev
	$(SPECTACULAR) --file $(SCHEMA)

schema-check: install-dev
	@mkdir -p var
	$(SPECTACULAR) --file var/openapi.yaml
	@diff -u $(SCHEMA) var/openapi.yaml || { \
		echo "$(SCHEMA) is not what the code generates: run make schema and commit it" >&2; \
		exit 1; }

# Regenerate both lock files from pyproject.toml (after adding or changing a
# dependency): the newest versions that satisfy it, resolved by uv.
lock: | $(VENV)/bin/python
	$(PY) -m pip install --quiet "uv>=0.5"
	$(VENV)/bin/uv pip compile pyproject.toml --python-version 3.11 --quiet -o requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 --quiet \
		-o requirements-dev.lock

# Known vulnerabilities in the locked versions (needs a vulnerability database
# reachable from this machine; see README, Security).
audit: install-dev
	$(VENV)/bin/pip-audit --strict --requirement requirements-dev.lock --disable-pip --no-deps

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
