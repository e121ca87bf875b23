# One-command set-up: `make run` starts the app, `make test` runs the whole suite.
# Both create .venv, install pinned requirements and make the data available; every
# step is skipped when already done, so a second call starts in seconds.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PORT   ?= 8501
# GPU=1 (an NVIDIA server): also installs JAX's CUDA build and runs Keras on JAX, where the
# compiled JAX engine trains every network. TensorFlow stays the CPU default.
GPU    ?= 0
ifeq ($(GPU),1)
BACKEND_ENV := KERAS_BACKEND=jax
else
BACKEND_ENV :=
endif
# RAY=1 (or RAY=<address>): also installs Ray (requirements-cluster.txt) and trains the app's
# jobs on it: RAY=1 starts a Ray instance on this machine (EXPLORER_RAY_ADDRESS=local),
# RAY=ray://head:10001 joins a cluster. `make test` always installs Ray, for its tests.
RAY    ?= 0
ifeq ($(RAY),0)
RAY_ENV :=
RUN_CLUSTER :=
else ifeq ($(RAY),1)
RAY_ENV := EXPLORER_RAY_ADDRESS=local
RUN_CLUSTER := cluster
else
RAY_ENV := EXPLORER_RAY_ADDRESS=$(RAY)
RUN_CLUSTER := cluster
endif

.PHONY: setup cluster run test lint format bench data models kernels browser requirements-check clean help

help:
	@echo "make run    set up everything and start the app on http://127.0.0.1:$(PORT)"
	@echo "make test   set up everything and run ruff and the whole test suite"
	@echo "make bench  run the benchmarks and rewrite BENCHMARKS.md"
	@echo "options:    PORT=8502  GPU=1 (NVIDIA server: JAX's CUDA build, Keras on JAX)"
	@echo "            RAY=1 (train on a local Ray instance)  RAY=ray://head:10001 (on a Ray cluster)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# The stamp records which requirement files (and which TensorFlow build) were installed.
$(VENV)/.installed-gpu$(GPU): $(PY) requirements.txt requirements-gpu.txt requirements-dev.txt
	@echo "Installing pinned requirements into $(VENV) (GPU=$(GPU))..."
ifeq ($(GPU),1)
	$(PY) -m pip install -q -r requirements.txt -r requirements-gpu.txt -r requirements-dev.txt
else
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
endif
	rm -f $(VENV)/.installed-gpu*
	touch $@

setup: $(VENV)/.installed-gpu$(GPU) data models kernels

# The numpy engines' kernels, compiled once into numba's disk cache (core/shallow/__pycache__);
# a training process then loads each in milliseconds instead of compiling it (about 4 s).
KERNELS_STAMP := core/shallow/__pycache__/.compiled-kernels
$(KERNELS_STAMP): $(VENV)/.installed-gpu$(GPU) core/shallow/compiled.py
	@$(PY) -m core.shallow.compiled
	@mkdir -p $(dir $@) && touch $@

kernels: $(KERNELS_STAMP)

# Ray, the optional cluster executor, on top of whichever requirements were installed.
$(VENV)/.installed-cluster: $(VENV)/.installed-gpu$(GPU) requirements-cluster.txt
	$(PY) -m pip install -q -r requirements-cluster.txt
	touch $@

cluster: $(VENV)/.installed-cluster

data: $(VENV)/.installed-gpu$(GPU)
	@scripts/ensure-data.sh $(PY)

# Model files (e.g. the ported cat-or-dog network) are built once and cached under models/.
models: $(VENV)/.installed-gpu$(GPU)
	@scripts/ensure-models.sh $(PY)

browser:
	@scripts/ensure-browser.sh

run: setup $(RUN_CLUSTER)
	$(BACKEND_ENV) $(RAY_ENV) $(PY) scripts/serve.py --server.address 127.0.0.1 --server.port $(PORT)

lint: $(VENV)/.installed-gpu$(GPU)
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --no-cache --check .

format: $(VENV)/.installed-gpu$(GPU)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Resolves the pins for Linux x86-64, Linux aarch64 and macOS arm64 without installing. The
# result is cached in .venv; an index that does not answer is a warning, not a failure.
requirements-check: $(VENV)/.installed-gpu$(GPU)
	@$(PY) scripts/check_requirements.py

test: setup cluster browser lint requirements-check
	$(PY) -m pytest

bench: setup browser
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache tests/artifacts
