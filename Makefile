# Deep Land Cover — developer commands. On a fresh Debian 12 machine `make demo` and `make test`
# each work alone: every target that needs Python depends on `setup`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

SYS_PY   ?= /usr/bin/python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.setup-stamp
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TORCH    ?= torch==2.13.0
SITE     := $(VENV)/lib/python3.11/site-packages
# QGIS's embedded Python finds its stdlib through the first python3 on PATH: drop pyenv/venv shims.
CLEAN_PATH := $(shell echo "$$PATH" | tr ':' '\n' | grep -v -e pyenv -e '/\.venv/' | paste -sd: -)
export QT_QPA_PLATFORM := offscreen
PYTEST_ARGS ?=

.PHONY: help setup data sample-data test test-fast test-matrix demo bench lint format package install clean

help:
	@echo "make setup    install QGIS (Debian), create .venv with all Python dependencies"
	@echo "make test     run the whole test suite: tests/ and tools/tests/ (pytest, headless QGIS, qgis_process)"
	@echo "make test-matrix  the suite on QGIS 3.40 (Debian trixie) and 3.44 (Debian forky) chroots (root)"
	@echo "make data     fetch the sample data (~30 MB, checked by SHA-256) into the per-user cache"
	@echo "make demo     run the demo on real Sentinel-2 data into demo_output/"
	@echo "make bench    run the benchmarks and update BENCHMARKS.md"
	@echo "make lint     ruff check and ruff format --check (CI runs it)"
	@echo "make package  build dist/deeplandcover.zip for Plugins > Install from ZIP"
	@echo "make install  link this folder into the default QGIS profile's plugins"

setup: $(STAMP)

CONSTRAINTS := $(VENV)/qgis-constraints.txt

$(STAMP): requirements.txt requirements-train.txt requirements-batch.txt requirements-dev.txt
	@if ! command -v qgis_process.bin >/dev/null || ! $(SYS_PY) -c 'import qgis.core' 2>/dev/null; then \
	  echo ">> installing QGIS from Debian"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	    qgis python3-qgis python3-venv xvfb >/dev/null; fi
	$(SYS_PY) -m venv --system-site-packages $(VENV)
	@# Make the package importable as `deeplandcover` (the repository root is the plugin folder).
	mkdir -p .pkgroot && ln -sfn "$(CURDIR)" .pkgroot/deeplandcover
	@# Pin what Debian's QGIS ships (its NumPy, GDAL, PyQt): pip installs around them, never over them.
	PYTHONPATH=.pkgroot $(SYS_PY) -m deeplandcover.core.deps constraints > $(CONSTRAINTS)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -c $(CONSTRAINTS) "$(TORCH)"
	$(PY) -m pip install -q --disable-pip-version-check -c $(CONSTRAINTS) -r requirements-dev.txt "$(TORCH)"
	echo "$(CURDIR)/.pkgroot" > $(SITE)/deeplandcover-dev.pth
	$(PY) -c "import deeplandcover.core, numpy, rasterio, onnxruntime, torch; print('setup ok: numpy', numpy.__version__, 'rasterio', rasterio.__version__, 'onnxruntime', onnxruntime.__version__, 'torch', torch.__version__)"
	touch $(STAMP)

# The sample data live outside the repository: $DLC_DATA when set (CI: ../shared/data), else the per-user
# cache that `make data` fills from the upstream repositories (pinned commits, SHA-256), once.
data: setup
	PATH="$(CLEAN_PATH)" $(PY) -m deeplandcover.tools.sampledata
	PATH="$(CLEAN_PATH)" $(PY) -m deeplandcover.tools.sampledata.weights

sample-data: setup
	@if [ -z "$$DLC_DATA" ]; then PATH="$(CLEAN_PATH)" $(PY) -m deeplandcover.tools.sampledata; fi
	@if [ -z "$$DLC_WEIGHTS_DIR" ]; then PATH="$(CLEAN_PATH)" $(PY) -m deeplandcover.tools.sampledata.weights; fi

DATA_DIR = $$(PATH="$(CLEAN_PATH)" $(PY) -c 'from deeplandcover.tests.helpers.sample_data import data_dir; print(data_dir())')

# Both suites: the plugin's (tests/) and the tools' (tools/tests/), pyproject's testpaths.
test: setup sample-data
	PATH="$(CLEAN_PATH)" $(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup sample-data
	PATH="$(CLEAN_PATH)" $(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# Needs root; builds (or reuses) the chroots under /var/cache/deeplandcover/chroots. SUITES="trixie" for one.
test-matrix: setup sample-data
	$(SUDO) env PYTEST_ARGS="$(PYTEST_ARGS)" DLC_DATA="$(DATA_DIR)" DLC_WEIGHTS_DIR="$$DLC_WEIGHTS_DIR" bash tools/dev/test_matrix.sh $(SUITES)

demo: setup
	PATH="$(CLEAN_PATH)" $(PY) -m deeplandcover.tools.demo

bench: setup sample-data
	PATH="$(CLEAN_PATH)" $(PY) -m deeplandcover.tools.bench

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .

package:
	rm -rf dist && mkdir -p dist
	$(SYS_PY) tools/dev/package.py dist/deeplandcover.zip
	@echo "dist/deeplandcover.zip: install with Plugins > Manage and Install Plugins > Install from ZIP"

QGIS_PROFILE ?= $(HOME)/.local/share/QGIS/QGIS3/profiles/default
install:
	mkdir -p "$(QGIS_PROFILE)/python/plugins"
	ln -sfn "$(CURDIR)" "$(QGIS_PROFILE)/python/plugins/deeplandcover"
	@echo "linked into $(QGIS_PROFILE)/python/plugins/deeplandcover; enable it in Plugins > Manage and Install Plugins"

clean:
	rm -rf $(VENV) .pkgroot dist .pytest_cache demo_output bench_output matrix_output gui_output
