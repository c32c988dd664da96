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

# CNN vs ViT on scikit-learn's digits (embedded, no download), 500 labels, same epochs.
demo: $(STAMP)
	rm -rf runs/demo
	$(BIN)/lowdata train --data digits --labels 500 --model resnet20 --epochs 30 --out runs/demo/resnet20
	$(BIN)/lowdata train --data digits --labels 500 --model vit-tiny --epochs 30 --out runs/demo/vit-tiny
	@$(BIN)/python -c "import json; [print(f\"{m:>9}: test accuracy {json.load(open(f'runs/demo/{m}/summary.json'))['test_acc']:.1%}\") for m in ('resnet20', 'vit-tiny')]"

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

clean:
	rm -rf $(VENV) runs
