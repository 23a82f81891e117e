# restorekit: `make demo` and `make test` do all the set-up on a fresh machine.
# Every pip install passes -c constraints.txt so that nothing can replace the tested torch.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install demo test test-fast browser bench clean mlflow-ui

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[all]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/restorekit demo

# Debian's Chromium for the Playwright end-to-end test (no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || \
	  (echo "installing Debian's chromium for the browser test"; \
	   (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	   (sudo -n apt-get update -qq && sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	   echo "warning: could not install chromium; the browser test will fail")

test: install browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/data_pipeline.py
	$(BIN)/python benchmarks/inference.py
	$(BIN)/python benchmarks/serve_load.py

mlflow-ui: install
	$(PIP) install -q -c constraints.txt "mlflow>=2.16"
	$(BIN)/mlflow ui --backend-store-uri sqlite:///runs/mlflow.db

clean:
	rm -rf $(VENV) runs .pytest_cache
