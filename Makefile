# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch, installed before anything can pull the multi-GB CUDA one.
# Off this machine, add e.g. TORCH_PIP_ARGS="--index-url <your CPU wheel index>".
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=

.PHONY: setup system demo test lint clean

setup: system $(VENV)/.installed

# Tesseract and its Korean/Japanese/English data (apt-get on Debian/Ubuntu; see README).
system:
	@bash scripts/install-system-packages.sh

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)" $(TORCH_PIP_ARGS)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: setup
	$(BIN)/rag index sample_docs --knowledge sample
	$(BIN)/rag query "what is the refund policy?" --knowledge sample --top-k 3
	$(BIN)/rag payload "what is the refund policy?" --knowledge sample --model llama3.1 --top-k 2

test: setup
	@bash scripts/install-system-packages.sh --test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .rag .pytest_cache
