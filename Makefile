# bnnotes: two commands.
#   make serve   set up .venv and node_modules if needed, then serve the site at http://127.0.0.1:8000
#   make test    the same setup, then every test (unit, docstrings, page snippets in en/ko/zh, strict build)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TORCH  := torch==2.13.0
export NO_MKDOCS_2_WARNING := 1
export MPLCONFIGDIR := $(CURDIR)/.cache/matplotlib
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup serve test build clean

setup: $(VENV)/.deps-installed node_modules/.npm-installed

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)

# torch first and pinned: an unpinned torch (or one pulled in by another package) is the CUDA build.
$(VENV)/.torch-installed: | $(VENV)/bin/python
	$(PY) -m pip install -q $(TORCH)
	touch $@

$(VENV)/.deps-installed: pyproject.toml $(VENV)/.torch-installed
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

node_modules/.npm-installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

serve: setup
	$(VENV)/bin/mkdocs serve -a 127.0.0.1:8000

test: setup
	$(PY) -m pytest

build: setup
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf site .pytest_cache .hypothesis
