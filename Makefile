# `make demo` and `make test` do all set-up themselves on a fresh machine (virtual environment in .venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all benchmark clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The quick study: CNN vs ViT learning curves on scikit-learn's digits (embedded, no download).
demo: $(STAMP)
	rm -rf runs/demo
	$(BIN)/lowdata study --preset quick --out runs/demo
	@cat runs/demo/report.md

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

clean:
	rm -rf $(VENV) runs
