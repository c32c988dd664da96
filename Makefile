# `make demo` and `make test` do all set-up themselves on a fresh machine (virtual environment in .venv).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all benchmark clean

# the demo installs what it runs; the tests add their extras (pytest, ONNX, Ray); both at the tested versions
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $@

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP) $(VENV)/.installed-run

# The quick study: a CNN, a plain ViT and a CCT (the remedy) of one size on scikit-learn's digits (embedded, no
# download); two workers, since these small models run as fast on one thread as on two.
demo: $(VENV)/.installed-run
	rm -rf runs/demo
	$(BIN)/lowdata study --preset quick --out runs/demo --jobs 2

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

clean:
	rm -rf $(VENV) runs
