# The two commands a newcomer needs: `make serve` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all venv gtest build test test-cpp test-py serve bench clean

all: build

# Virtualenv with the pinned dependencies; redone when a requirements file changes.
$(VENV)/.installed: requirements.txt requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $@

venv: $(VENV)/.installed

# GoogleTest from Debian's packages, installed only when missing.
gtest:
	@[ -f /usr/include/gtest/gtest.h ] || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq libgtest-dev; }

# Builds the core, the pybind11 module (into pythia/) and the C++ tests (into build/cmake).
build: venv gtest
	PYTHIA_BUILD_TESTS=ON $(BIN)/pip install --quiet --no-build-isolation --no-deps -e .

test-cpp: build
	$(BIN)/ctest --test-dir build/cmake --output-on-failure

test-py: build
	$(BIN)/python -m pytest tests

test: test-cpp test-py

# Serves the embedded SmolLM2-135M-Instruct on port 30000; pass flags with ARGS="--port 8000 ...".
serve: build
	$(BIN)/python -m pythia.launch_server $(ARGS)

bench: build
	$(BIN)/python -m benchmarks.bench_core

clean:
	rm -rf build pythia/_core*.so *.egg-info
