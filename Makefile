# Latent Lens: `make run` starts the app, `make test` runs the whole test suite.
# Both set everything up on a fresh Debian machine with Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: run test test-fast bench clean-venv chromium frontend

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# backend.warmup compiles fast-hdbscan's numba kernels into their on-disk cache (a minute on
# 2 cores, once), so the first clustering in the app and in the tests does not pay for it
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/python -m backend.warmup
	touch $@

$(VENV)/.installed-test: requirements-test.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

run: $(VENV)/.installed
	@echo "Latent Lens on http://localhost:$(PORT) (Ctrl+C stops it)"
	$(BIN)/streamlit run app/main.py --server.port $(PORT)

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-liberation >/dev/null; }

test: $(VENV)/.installed-test chromium
	$(BIN)/python -m pytest

test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m "not slow and not e2e"

# The map's WebGL frontend (components/map/frontend): needs Node 20 and npm. The built bundle
# and the hash of its sources are committed, so `make run` never needs Node.
frontend:
	cd components/map/frontend && npm ci && npm run build

clean-venv:
	rm -rf $(VENV)

# The backend as an HTTP service (on the GPU machine); it prints where it listens and, on its
# first start, the token the app needs. SERVE_HOST=0.0.0.0 exposes it beyond this machine.
SERVE_HOST ?= 127.0.0.1
SERVE_PORT ?= 8600

.PHONY: serve
serve: $(VENV)/.installed
	$(BIN)/python -m backend.service --host $(SERVE_HOST) --port $(SERVE_PORT)
