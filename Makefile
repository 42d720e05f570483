# Two commands: `make run` starts the gateway on its embedded defaults, `make test` runs every test.
# Both install what they need (system packages, a virtual environment) and are idempotent.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench system-deps

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/emancipate serve

system-deps:
	bash scripts/system-deps.sh

test: $(STAMP) system-deps
	$(VENV)/bin/ruff check src tests bench
	$(PY) -m pytest -q

bench: $(STAMP) system-deps
	$(PY) bench/run.py
