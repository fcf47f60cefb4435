# bnnotes: two commands.
#   make serve   set up .venv and node_modules if needed, then serve the site at http://127.0.0.1:8000
#   make test    the same setup, then ruff and every test (unit, docstrings, page snippets, strict build,
#                browser checks of every page in Chromium, link check), on every core
# Also: make check (ruff and the tests without the site or a browser, for the edit loop), make build,
# make translations (stale ko/zh pages), make lighthouse (speed and accessibility report),
# make screenshots (every page in Chromium at two widths, as images).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TORCH  := torch==2.13.0
export NO_MKDOCS_2_WARNING := 1
export MPLCONFIGDIR := $(CURDIR)/.cache/matplotlib
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Python's bytecode and pytest's rewritten test modules are cached in __pycache__/ (git-ignored)
# even where the environment turns that off: each pytest process would otherwise compile and
# rewrite every test module again (about 4 s per process on 2 cores).
unexport PYTHONDONTWRITEBYTECODE
# pytest-xdist workers for make test and make check (auto: one per core). Each file's tests
# run in one worker (--dist loadfile): a page's snippets share one namespace, in order, and
# a module's expensive fixtures (an experiment run, the executed notebooks) are set up
# once; the files go out longest first, and the per-page browser checks one by one at the
# end (tests/conftest.py). One BLAS and OpenMP thread per worker: the workers use every core.
JOBS   ?= auto
TEST_THREADS := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
PYTEST := $(TEST_THREADS) $(PY) -m pytest -n $(JOBS) --dist loadfile --no-loadscope-reorder

.PHONY: setup system-serve system-test system-lighthouse serve test check lint build clean bench translations lighthouse pdf screenshots

setup: $(VENV)/.deps-installed node_modules/.npm-installed

# The Debian packages (nodejs, npm, python3-venv; for the tests also chromium-headless-shell,
# fonts-noto-cjk, poppler-utils, git; for make lighthouse chromium), installed when missing:
# apt-get as root, sudo without a password, or one line naming the command to run. A few milliseconds when nothing is missing.
system-serve:
	@bash tools/system-deps.sh serve

system-test:
	@bash tools/system-deps.sh test

system-lighthouse:
	@bash tools/system-deps.sh lighthouse

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

# mkdocs' live-reload server; after an edit of existing pages it rewrites only the pages that can
# have changed (tools/serve.py), and every build reuses .cache/site/ (hooks/site_cache.py).
serve: system-serve setup
	$(PY) tools/serve.py -a 127.0.0.1:8000

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The site is built once per run (by the pytest process that hands the tests to the workers).
test: system-test setup lint
	$(PYTEST)

# For the edit loop: ruff, the unit tests, the docstring examples and the English page snippets;
# nothing that needs the built site or a browser, runs experiments, notebooks or processes
# (make test runs those too).
check: system-serve setup lint
	$(PYTEST) -m "not site and not slow" tests bnnotes docs/en

# The per-page browser checks of make test, with full-page screenshots of every page of every
# language at desktop and mobile width in test-artifacts/screenshots/ (for reading the site).
screenshots: system-test setup
	BNNOTES_SCREENSHOTS=1 $(PYTEST) tests/test_browser.py -k page-root

build: system-serve setup
	$(VENV)/bin/mkdocs build --strict

# A PDF of each language, site/pdf/bnnotes-{en,ko,zh}.pdf, printed by Chromium from a strict
# build whose home pages link them (BNNOTES_PDF=1: hooks/pdf_link.py; tools/pdf.py).
pdf: system-test setup
	BNNOTES_PDF=1 $(VENV)/bin/mkdocs build --strict
	$(PY) tools/pdf.py site

# Speed: NumPy kernels against torch, site build and rebuild, --quick experiments (never timed tests).
# Prints a markdown table and writes it to bench-results.md (ignored by git).
bench: setup
	$(PY) benchmarks/bench.py

# The ko/zh pages whose English page has a later commit (a report; exits 0).
translations:
	@$(PYTHON) tools/translations.py

# Lighthouse (tools/lighthouse, kept out of the site's npm ci) with /usr/bin/chromium on the
# home page and the heaviest pages of each language; prints the scores (a report, not a gate).
tools/lighthouse/node_modules/.npm-installed: tools/lighthouse/package.json tools/lighthouse/package-lock.json
	cd tools/lighthouse && npm ci --no-audit --no-fund
	touch $@

lighthouse: system-lighthouse setup tools/lighthouse/node_modules/.npm-installed
	$(PY) tools/lighthouse/run.py $(LIGHTHOUSE_ARGS)

clean:
	rm -rf site .pytest_cache .hypothesis test-artifacts
