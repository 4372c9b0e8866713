# Two entry points for a fresh clone: `make demo` and `make test`.
# Both create .venv and install the project into it on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo demo-headless test bench screenshots clean

$(BIN)/trust-console: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/trust-console
	$(BIN)/trust-console demo

demo-headless: $(BIN)/trust-console
	$(BIN)/trust-console demo --headless

test: $(BIN)/trust-console
	$(BIN)/python -m pytest -q

bench: $(BIN)/trust-console
	$(BIN)/python -m bench

screenshots: $(BIN)/trust-console
	$(BIN)/python scripts/make_screenshots.py

clean:
	rm -rf $(VENV) *.egg-info
