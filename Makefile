# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_VERSION := 2.13.0
STAMP := $(VENV)/.installed

# The paper's ablations on the LC-Rec copy of Amazon 2018 Scientific (see the README for
# where to get it; ABLATIONS_DATA=DIR for another place) at the budget of docs/results/ablations_scientific
# (about an hour on 2 cores).
ABLATIONS_DATA ?= data/amazon18-scientific
ABLATIONS_ARGS ?= --config experiments/amazon18_scientific_cpu.yaml --path $(ABLATIONS_DATA) \
	--max-epochs 4 --max-minutes 8 --eval-users 2000 --d-model 64 --layers 2 --heads 2 --beam-size 20 \
	--seeds 0 1 --alphas 1 6 --out runs/ablations/amazon18_scientific

.PHONY: install demo test test-fast ablations clean

install: $(STAMP)

# torch first, pinned: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==$(TORCH_VERSION)
	$(PY) -m pip install --quiet -e '.[dev,serve]'
	touch $(STAMP)

demo: install
	$(VENV)/bin/llada-rec demo

test: install
	$(PY) -m pytest

# The quick iteration loop: everything but the tests marked slow (under a minute on 2 cores).
test-fast: install
	$(PY) -m pytest -m "not slow"

ablations: install
	$(PY) benchmarks/ablations.py $(ABLATIONS_ARGS)

clean:
	rm -rf runs .cache lightning_logs
