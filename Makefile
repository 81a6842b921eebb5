# seqlab Makefile: `make help` lists the targets.
VENV ?= .venv
PY := $(VENV)/bin/python
# PyTorch wheel: a CPU build by default where the local wheel exists; for CUDA pick the index of
# your CUDA version, e.g. `make install TORCH_INDEX=https://download.pytorch.org/whl/cu128`.
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=
TORCH_INDEX_ARG := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)
CONFIG ?= configs/sine_lstm.yaml
# trained IMDB classifier for the deploy benchmark (`make bench IMDB_CKPT=...`); without one it
# times an untrained network of the same shape and reports no accuracy
IMDB_CKPT ?=

.DEFAULT_GOAL := help
.PHONY: help install test test-slow test-slurm lint format train pretrain pretrain-forward pretrain-backward tensorboard bench bench-quick clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(PY):
	python3 -m venv $(VENV)

install: $(PY) ## create .venv and install torch==$(TORCH_VERSION), the package and dev tools
	$(PY) -m pip install --upgrade pip -q
	$(PY) -m pip install "torch==$(TORCH_VERSION)" $(TORCH_INDEX_ARG)
	$(PY) -m pip install -e ".[dev]"

test: ## run the fast test suite (no network, tiny fixtures)
	$(PY) -m pytest -q

test-slow: ## run the slow tests that need the full data (data/imdb)
	$(PY) -m pytest -q -m "slow and not slurm"

test-slurm: ## start a one-node SLURM cluster, sbatch DDP + preemption (apt-get install slurm-wlm munge)
	$(PY) -m pytest -q -m slurm tests/test_slurm.py

lint: ## ruff lint + format check
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench

format: ## ruff autofix + format
	$(PY) -m ruff check --fix src tests bench
	$(PY) -m ruff format src tests bench

train: ## train with CONFIG (default configs/sine_lstm.yaml)
	$(PY) -m src.cli fit --config $(CONFIG)

pretrain: ## IMDB: forward and backward LM + classifier side by side, then test their ensemble
	$(MAKE) -j2 pretrain-forward pretrain-backward
	$(PY) -m src.ensemble --split test --ckpt_path lightning_logs/imdb_finetune \
		--ckpt_path lightning_logs/imdb_finetune_backward

# one thread each: the two chains share the cores
pretrain-forward:
	OMP_NUM_THREADS=1 $(PY) -m src.cli fit --config configs/imdb_lm.yaml
	OMP_NUM_THREADS=1 $(PY) -m src.cli fit --config configs/imdb_finetune.yaml

pretrain-backward:
	OMP_NUM_THREADS=1 $(PY) -m src.cli fit --config configs/imdb_lm_backward.yaml
	OMP_NUM_THREADS=1 $(PY) -m src.cli fit --config configs/imdb_finetune_backward.yaml

tensorboard: ## open TensorBoard on lightning_logs/
	$(VENV)/bin/tensorboard --logdir lightning_logs

bench: ## run the benchmarks, report in bench/results/ (IMDB_CKPT=<ckpt> for deploy figures)
	$(PY) -m bench.run $(if $(IMDB_CKPT),--imdb-ckpt $(IMDB_CKPT),)

bench-quick: ## smoke-size benchmarks (under 3 minutes)
	$(PY) -m bench.run --quick

clean: ## remove caches (keeps .venv, data and lightning_logs)
	rm -rf .pytest_cache .ruff_cache **/__pycache__
