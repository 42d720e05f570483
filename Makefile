# Two commands: `make run` starts the gateway on its embedded defaults, `make test` runs every test.
# `make test` first runs ruff and mypy (what mypy checks, and how strictly: pyproject.toml).
# Both install what they need (system packages, a virtual environment) and are idempotent.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench system-deps

# llama.cpp is compiled for a portable x86-64 (AVX2) instead of -march=native: on CPUs that
# advertise AMX inside VMs that do not grant it, the native build dies with SIGSEGV on the
# first matrix product. --no-cache-dir: pip's wheel cache ignores CMAKE_ARGS.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c 'import llama_cpp' 2>/dev/null || CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
		$(PY) -m pip install -q --no-cache-dir 'llama-cpp-python>=0.3.7'
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/emancipate serve

system-deps:
	bash scripts/system-deps.sh

test: $(STAMP) system-deps
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

bench: $(STAMP) system-deps
	$(PY) bench/run.py
