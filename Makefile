# agentbazaar: `make demo` sets up and runs the demo; `make test` sets up and runs all checks;
# `make docs` builds the documentation site into site/.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
ANVIL_PKG := @foundry-rs/anvil-linux-amd64@1.7.1
ANVIL_BIN := .tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-slow lint typecheck pytest docs bench clean

setup: $(STAMP) $(VENV)/bin/anvil

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel setuptools
	$(PY) -m pip install --quiet -c constraints.txt "torch==2.13.0"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

$(ANVIL_BIN):
	@command -v npm >/dev/null || { echo "need npm (Node.js) to install anvil"; exit 1; }
	mkdir -p .tools
	npm install --silent --no-audit --no-fund --prefix .tools $(ANVIL_PKG)

$(VENV)/bin/anvil: $(ANVIL_BIN) $(STAMP)
	ln -sf $(abspath $(ANVIL_BIN)) $(VENV)/bin/anvil

demo: setup
	$(VENV)/bin/bazaar demo

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples

typecheck: setup
	$(VENV)/bin/mypy

pytest: setup
	@command -v chromium >/dev/null || { echo "need chromium (Debian package) for the dashboard test"; exit 1; }
	$(PY) -m pytest -q -m "not slow"

# the documentation site (mkdocs.yml, docs/) into site/ (git-ignored); --strict: a broken
# API reference, snippet or link fails the build
docs: setup
	$(VENV)/bin/mkdocs build --strict --quiet

test: lint typecheck docs pytest

# the long runs (real-model cases, kill -9 crash recovery, 1,000-voucher cycles, mutation checks)
test-slow: setup
	$(PY) -m pytest -q -m slow

bench: setup
	@for b in benchmarks/*.py; do \
	  case $$b in *_paid_calls.py) continue;; esac; \
	  echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache site
