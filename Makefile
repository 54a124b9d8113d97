# One venv in the repo; every target installs what it needs, so a fresh clone needs only
# Python >= 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install test demo lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider

demo: install
	mkdir -p demo-output
	$(BIN)/varscale presets
	$(BIN)/varscale generate configs/gpt_block.yaml --dry-run
	$(BIN)/varscale generate configs/gpt_block.yaml -o demo-output/gpt_block.safetensors --force
	$(BIN)/varscale generate configs/convnet.yaml -o demo-output/convnet.h5 --force
	$(BIN)/varscale generate configs/mlp.yaml -o demo-output/mlp.npz --force
	$(BIN)/varscale stats demo-output/gpt_block.safetensors

lint: install
	$(BIN)/ruff check varscale_cli tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
