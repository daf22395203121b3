# Two commands for a newcomer: `make demo` (whole pipeline on the embedded sample) and `make test` (the fast tests,
# a few minutes); `make test-all` adds the slow and integration tests (what CI runs).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo test test-all test-py313 lint lock wheel clean browser

# The development set is exact (LOCK: what is tested here); the package itself declares ranges (pyproject.toml).
LOCK := requirements/py311-dev.txt
EXTRAS := dev,hazm,onnx,serve,browser,ray,crf,docs

$(BIN)/parsner: pyproject.toml setup.py $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c $(LOCK) -e '.[$(EXTRAS)]'
	@touch $@

install: $(BIN)/parsner

demo: install
	$(BIN)/parsner quickstart --overwrite

# The fast set: everything but the tests marked slow (they train models, start servers and browsers, send
# signals mid-run) or integration (a real Label Studio). Under 5 minutes on 2 cores.
test: install
	$(BIN)/python -m pytest -q -m "not slow and not integration"

test-all: install browser
	$(BIN)/python -m pytest -q

# The page's browser test needs Chromium; Playwright's own download is not reachable offline, so install
# Debian's (as root, only when absent). If that fails, the browser test skips and says why.
browser:
	@test -x /usr/bin/chromium || ( command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null 2>&1 ) || \
	  echo "make: Chromium not installed; the browser test will skip"

# The suite on Python 3.13 (Debian 13: numpy 2, Debian's CPU torch 2.6), in a root built once outside the clone
# (~/.cache/parsner; root only) and a venv reused while the dependency spec is unchanged. PYTEST_ARGS narrows it.
test-py313:
	bash tools/py313.sh test $(PYTEST_ARGS)

# The same on Python 3.14 (Debian 14 forky, testing: numpy 2.4, Debian's CPU torch 2.14; the same recipe,
# tools/debian-py.sh), its exact set requirements/py314-dev.txt. Testing moves: tools/py314.sh clean renews the root.
.PHONY: test-py314
test-py314:
	bash tools/py314.sh test $(PYTEST_ARGS)

# Regenerate the lock from the ranges (a fresh venv resolves them; review the diff before committing).
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv && .lockvenv/bin/pip install -q --upgrade pip
	.lockvenv/bin/pip install -q torch==2.13.0 && .lockvenv/bin/pip install -q '.[$(EXTRAS)]'
	{ sed -n '1,/^# change: make lock/p' $(LOCK); .lockvenv/bin/pip freeze --all | grep -vE '^(pip|parsner)==' | LC_ALL=C sort -f; } \
	  > $(LOCK).new && mv $(LOCK).new $(LOCK) && rm -rf .lockvenv

# sdist and wheel in dist/, checked by twine (the wheel carries the sample and recipes the CLI needs).
wheel: install
	rm -rf dist && $(BIN)/python -m build --no-isolation --outdir dist . && $(BIN)/twine check --strict dist/*

# The documentation site in site/ (git-ignored), built offline with warnings as errors (docs/development.md). The
# variable silences Material for MkDocs' notice about its end of life, printed on every build.
.PHONY: docs
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: install
	$(BIN)/ruff check src tests eval tools docs
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) build dist *.egg-info runs site
