# Two commands do all the set-up themselves: `make demo` and `make test`.
# PYTHON must be 3.11+; the virtualenv is created on first use and refreshed when pyproject changes.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

# The repository root holds a folder named `operator`, which is also a stdlib module: with the root on
# sys.path (`python -m ...` run from here puts it there) the folder would shadow the stdlib and break
# Python itself. Safe-path mode keeps the current directory off sys.path for every Python we start.
export PYTHONSAFEPATH = 1

.PHONY: demo test lint bench e2e tools clean help

help:
	@echo "make demo   - run every agent locally in shadow mode (ARGS=\"--minutes 1\")"
	@echo "make test   - lint and the full test suite (real NATS and Redis, started by the tests)"
	@echo "make bench  - benchmarks; numbers printed and written to bench/results/*.json"
	@echo "make e2e    - the operator against a real cluster from KUBECONFIG (skips without one)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,local]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m tradingbot_agents demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# helm, kubectl, promtool, hadolint and chromium for the chart, image and status-page tests:
# installed once into .tools/ and the venv (apt for chromium), reused afterwards.
tools: $(STAMP)
	VENV=$(VENV) .ci/tools.sh

test: $(STAMP) lint tools
	$(BIN)/pytest $(ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py $(ARGS)

# The operator against a real cluster from KUBECONFIG (kind, k3d, ...); skips, saying so, without one.
e2e: $(STAMP)
	$(BIN)/pytest tests/e2e -m e2e -rs $(ARGS)

clean:
	rm -rf $(VENV) logs .pytest_cache .ruff_cache
