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

# The converged comparison (issue 19) on the same data: every model trained to convergence (at
# most 100 epochs, early stopping with patience 10 on greedy validation NDCG@1 over 2,000 users,
# the best checkpoint tested on all users at beam 50), d=128, 2 layers.  Resumable: after an
# interruption rerun `make converged`; finished models are read back, an interrupted one continues
# from its last.ckpt.  Runs in runs/converged_scientific; the table, curves and JSON are copied to
# docs/results/converged_scientific/.  Hours on 2 cores: docs/results/converged_scientific/README.md.
CONVERGED_DATA ?= data/amazon18-scientific
CONVERGED_RUNS ?= runs/converged_scientific
CONVERGED_ARGS ?= --format lcrec --path $(CONVERGED_DATA) \
	--models popularity transitions gru4rec sasrec sasrec-bce bert4rec tiger rpg llada-rec \
	--variant "paper settings:" --variant "recipe:attention=cached_history,item_mask_draws=16,alpha=1" \
	--max-epochs 100 --patience 10 --val-every 0 --val-users 2000 --beam-size 50 --val-beam-size 1 \
	--d-model 128 --layers 2 --heads 4 --tokenizer-epochs 400 --rpg-tokenizer experiments/tokenizer/opq.yaml \
	--threads 2 --out $(CONVERGED_RUNS)

.PHONY: install demo test test-fast ablations converged clean

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

converged: install
	$(PY) benchmarks/learning_curves.py $(CONVERGED_ARGS)
	mkdir -p docs/results/converged_scientific
	cp $(CONVERGED_RUNS)/learning_curves.json $(CONVERGED_RUNS)/learning_curves.png $(CONVERGED_RUNS)/results.md docs/results/converged_scientific/

clean:
	rm -rf runs .cache lightning_logs
