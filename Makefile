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

.PHONY: help setup test test-fast demo bench lint format package install clean

help:
	@echo "make setup    install QGIS (Debian), create .venv with all Python dependencies"
	@echo "make test     run the whole test suite (pytest, headless QGIS, qgis_process)"
	@echo "make demo     run the demo on real Sentinel-2 data into demo_output/"
	@echo "make bench    run the benchmarks and update BENCHMARKS.md"
	@echo "make lint     ruff check"
	@echo "make package  build dist/deeplandcover.zip for Plugins > Install from ZIP"
	@echo "make install  link this folder into the default QGIS profile's plugins"

setup: $(STAMP)

$(STAMP): requirements.txt requirements-train.txt requirements-batch.txt requirements-dev.txt
	@if ! command -v qgis_process.bin >/dev/null || ! $(SYS_PY) -c 'import qgis.core' 2>/dev/null; then \
	  echo ">> installing QGIS from Debian"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	    qgis python3-qgis python3-venv xvfb >/dev/null; fi
	$(SYS_PY) -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH)"
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt "numpy<2" "$(TORCH)"
	@# Make the package importable as `deeplandcover` (the repository root is the plugin folder).
	mkdir -p .pkgroot && ln -sfn "$(CURDIR)" .pkgroot/deeplandcover
	echo "$(CURDIR)/.pkgroot" > $(SITE)/deeplandcover-dev.pth
	$(PY) -c "import deeplandcover.core, numpy, rasterio, onnxruntime, torch; print('setup ok: numpy', numpy.__version__, 'rasterio', rasterio.__version__, 'onnxruntime', onnxruntime.__version__, 'torch', torch.__version__)"
	touch $(STAMP)

test: setup
	PATH="$(CLEAN_PATH)" $(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	PATH="$(CLEAN_PATH)" $(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

demo: setup
	PATH="$(CLEAN_PATH)" $(PY) -m deeplandcover.tools.demo

bench: setup
	PATH="$(CLEAN_PATH)" $(PY) -m deeplandcover.tools.bench

lint: setup
	$(VENV)/bin/ruff check .

format: setup
	$(VENV)/bin/ruff format .

package:
	rm -rf dist && mkdir -p dist
	git archive --format=zip --prefix=deeplandcover/ -o dist/deeplandcover.zip HEAD \
	  ':!tests' ':!.ci' ':!tools/bench*' ':!BENCHMARKS.md'
	@echo "dist/deeplandcover.zip: install with Plugins > Manage and Install Plugins > Install from ZIP"

QGIS_PROFILE ?= $(HOME)/.local/share/QGIS/QGIS3/profiles/default
install:
	mkdir -p "$(QGIS_PROFILE)/python/plugins"
	ln -sfn "$(CURDIR)" "$(QGIS_PROFILE)/python/plugins/deeplandcover"
	@echo "linked into $(QGIS_PROFILE)/python/plugins/deeplandcover; enable it in Plugins > Manage and Install Plugins"

clean:
	rm -rf $(VENV) .pkgroot dist .pytest_cache demo_output bench_output
