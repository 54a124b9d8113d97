# One venv in the repo; every target installs what it needs, so a fresh clone needs only
# Python >= 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# The demo needs only the tool and matplotlib (for `stats --plot`): no test extras (torch,
# keras, dask, scipy ...), so a fresh clone's `make demo` installs in seconds, not minutes.
DEMO_STAMP := $(VENV)/.installed-demo-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install install-demo test test-oldest demo lint bench clean

# The byte promise is proven on a second environment too: the oldest dependency series
# pyproject.toml allows (.ci/oldest_constraints.py), with the ml_dtypes pip picks beside them.
OLDEST := .venv-oldest
OLDEST_STAMP := $(OLDEST)/.installed-$(shell cat pyproject.toml .ci/oldest_constraints.py | cksum | cut -d' ' -f1)
DETERMINISM_TESTS := tests/test_sampling.py tests/test_kernels.py tests/test_rounding.py tests/test_reference_stream.py tests/test_determinism.py

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The full install satisfies the demo too; otherwise install the package and its `plot` extra.
$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -f $(STAMP) || $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[plot]'
	touch $(DEMO_STAMP)

install-demo: $(DEMO_STAMP)

test: install
	VARSCALE_REQUIRE_NATIVE=1 $(BIN)/python -m pytest -q -p no:cacheprovider

$(OLDEST_STAMP): pyproject.toml .ci/oldest_constraints.py
	test -x $(OLDEST)/bin/python || $(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install --quiet --upgrade pip
	$(PYTHON) .ci/oldest_constraints.py pyproject.toml > $(OLDEST)/constraints.txt
	$(OLDEST)/bin/python -m pip install --quiet -c $(OLDEST)/constraints.txt -e . pytest hypothesis scipy mpmath
	touch $(OLDEST_STAMP)

test-oldest: $(OLDEST_STAMP)
	$(OLDEST)/bin/python -c "import numpy, ml_dtypes; print('oldest environment: numpy', numpy.__version__, 'ml_dtypes', ml_dtypes.__version__)"
	VARSCALE_REQUIRE_NATIVE=1 $(OLDEST)/bin/python -m pytest -q -p no:cacheprovider $(DETERMINISM_TESTS)

demo: install-demo
	mkdir -p demo-output
	$(BIN)/varscale presets
	$(BIN)/varscale generate configs/gpt_block.yaml --dry-run
	$(BIN)/varscale generate configs/gpt_block.yaml -o demo-output/gpt_block.safetensors --force
	$(BIN)/varscale generate configs/convnet.yaml -o demo-output/convnet.h5 --force
	$(BIN)/varscale generate configs/mlp.yaml -o demo-output/mlp.npz --force
	$(BIN)/varscale stats demo-output/gpt_block.safetensors --plot demo-output/gpt_block.png --force
	$(BIN)/varscale verify demo-output/gpt_block.safetensors
	$(BIN)/varscale verify demo-output/convnet.h5
	$(BIN)/varscale generate configs/llama.yaml -o demo-output/llama --num-shards 8 --dry-run
	@echo "demo: wrote demo-output/ (three weight files and gpt_block.png, the stats plot)"

lint: install
	$(BIN)/ruff check varscale_cli tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(OLDEST) demo-output .pytest_cache
