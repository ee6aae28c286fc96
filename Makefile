# The front door: `make run`, `make test`, `make cycle`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export AIRFLOW_HOME ?= $(CURDIR)/.airflow

.PHONY: run test lint cycle maintenance bench capacity faults venv clean dist docs

venv: $(STAMP)

# A fresh machine has only Python: make the venv, put uv in it, install pinned requirements.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed (Airflow providers)"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip --version >/dev/null 2>&1 || $(PY) -m ensurepip --default-pip >/dev/null
	$(PY) -m pip install -q --disable-pip-version-check uv
	$(VENV)/bin/uv pip install -q --python $(PY) --compile-bytecode -r requirements.txt -r requirements-dev.txt -e .
	touch $(STAMP)

run: $(STAMP)
	@mkdir -p $(AIRFLOW_HOME)
	$(PY) -m models_core.devstack run

cycle: $(STAMP)
	@mkdir -p $(AIRFLOW_HOME)
	$(PY) -m models_core.devstack cycle

maintenance: $(STAMP)
	@mkdir -p $(AIRFLOW_HOME)
	$(PY) -m models_core.devstack maintenance

# Benchmarks (apart from the tests): ratios against their floors; exits 1 if a goal is missed.
bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

# How many versions a 5-minute cycle holds, on LocalExecutor and two Celery workers: about
# 1.5-2.5 h on 2 cores with the default sizes (50..800; 119 min measured); BENCH_ARGS="--capacity-versions 50,100,200,400" 45-75 min.
capacity: $(STAMP)
	$(PY) -m bench capacity $(BENCH_ARGS)

# Fault injection (apart from the tests): kills, restarts, outages, storms, bad input; exits 1 if
# any fault's outcome is wrong (20-25 min; worker_loss needs Redis). FAULTS_ARGS="kill_persist --kill-trials 40", or --help.
faults: $(STAMP)
	$(PY) -m faults $(FAULTS_ARGS)

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# ruff's lint (with its Airflow rules), its format check and mypy's type check of include/, as
# pyproject.toml configures them; CI runs it.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The wheel and sdist for installing into an existing Airflow (docs/how-to/install-into-airflow.md).
dist: $(STAMP)
	rm -rf dist
	$(PY) -m build --outdir dist .

# The documentation site (mkdocs.yml, docs/) into site/; any warning (a broken link or anchor, a page
# missing from the nav) fails it. CI runs it.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) $(AIRFLOW_HOME) dist build
