# Two entry points for a fresh machine (Python 3.11, pip, gcc):
#   make demo   set everything up, then train RLMRec-Con on the built-in demo dataset
#   make test   set everything up, then lint, type-check and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch; pip finds it on this project's machines. Elsewhere, pick
# the build for your hardware, e.g. make TORCH_SPEC='torch>=2.2' setup.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup pyg llm demo test lint bench bench-store fidelity clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet '$(TORCH_SPEC)'
	$(BIN)/pip install --quiet -e '.[dev,embed]' '$(TORCH_SPEC)'
	touch $@

# The optional torch-sparse/torch-scatter backend, compiled once against the installed
# torch and cached as wheels (~/.cache/rlmrec/wheels); see scripts/install-pyg.sh.
pyg: setup
	scripts/install-pyg.sh $(BIN)/python

# A real small LLM for tests and CI: llama-cpp-python's OpenAI-compatible server, compiled
# once and cached as a wheel (~/.cache/rlmrec/wheels), and SmolLM2-135M-Instruct as a
# GGUF file; see scripts/install-llm.sh. .ci/llm-server.sh serves it on 127.0.0.1.
llm: setup
	scripts/install-llm.sh $(BIN)/python

demo: setup
	$(BIN)/rlmrec run lightgcn con demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# One pytest-xdist worker per core (tests/conftest.py gives each its share of the
# threads; the real-Slurm tests stay in one group); --durations: every run says where
# the suite's time goes. make test PYTEST_ARGS='-n 0 -x' runs it serially.
PYTEST_ARGS ?= -n auto --dist loadgroup
test: lint
	$(BIN)/pytest $(PYTEST_ARGS) --durations=15

bench: setup
	$(BIN)/python bench/bench_train.py

bench-store: setup
	$(BIN)/python bench/bench_store.py $(if $(RLMREC_TEST_PG),--pg $(RLMREC_TEST_PG))

# make fidelity: one full run per backbone; make fidelity SEEDS=5: LightGCN and GCCF base
# over 5 seeds with the test split traced at every validation (bench/fidelity_seeds.py).
fidelity: setup
	$(BIN)/python bench/$(if $(SEEDS),fidelity_seeds.py --seeds $(SEEDS),fidelity.py)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
