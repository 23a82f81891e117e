# restorekit: `make demo` and `make test` do all the set-up on a fresh machine.
# Every pip install passes -c constraints.txt so that nothing can replace the tested torch.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install demo test test-fast browser ocr bench clean mlflow-ui

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[all]"
	touch $(STAMP)

install: $(STAMP)

demo: install ocr
	$(BIN)/restorekit demo

# Debian's Chromium for the Playwright end-to-end test (no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || \
	  (echo "installing Debian's chromium for the browser test"; \
	   (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	   (sudo -n apt-get update -qq && sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	   echo "warning: could not install chromium; the browser test will fail")

# Debian's Tesseract (English + Sanskrit), the word list and the fonts for the document pages, OCR evaluation and
# the document demo (restorekit demo --task document); nothing is downloaded from elsewhere.
OCR_PACKAGES := tesseract-ocr tesseract-ocr-eng tesseract-ocr-san fonts-noto-core fonts-lohit-deva fonts-dejavu-core wamerican
ocr:
	@( command -v tesseract >/dev/null 2>&1 && tesseract --list-langs 2>/dev/null | grep -qx san && \
	   [ -f /usr/share/fonts/truetype/lohit-devanagari/Lohit-Devanagari.ttf ] && [ -f /usr/share/dict/words ] && \
	   [ -f /usr/share/fonts/truetype/noto/NotoSansDevanagari-Regular.ttf ] ) || \
	  (echo "installing Debian's Tesseract, fonts and word list for the document tools"; \
	   (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(OCR_PACKAGES) >/dev/null) || \
	   (sudo -n apt-get update -qq && sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(OCR_PACKAGES) >/dev/null) || \
	   echo "warning: could not install $(OCR_PACKAGES); the OCR tests will fail")

test: install browser ocr
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
