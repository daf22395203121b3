# Two commands for a newcomer: `make demo` (whole pipeline on the embedded sample) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo test lint bench clean browser

$(BIN)/parsner: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,onnx,serve,browser]'
	@touch $@

install: $(BIN)/parsner

demo: install
	$(BIN)/parsner quickstart --overwrite

test: install browser
	$(BIN)/python -m pytest -q

# The page's browser test needs Chromium; Playwright's own download is not reachable offline, so install
# Debian's (as root, only when absent). If that fails, the browser test skips and says why.
browser:
	@test -x /usr/bin/chromium || ( command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null 2>&1 ) || \
	  echo "make: Chromium not installed; the browser test will skip"

lint: install
	$(BIN)/ruff check src tests eval

clean:
	rm -rf $(VENV) build *.egg-info runs
