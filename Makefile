# Two commands for a fresh machine:
#   make run   install everything, start a Prefect server with its UI, run `dvc repro`
#   make test  install everything, run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PREFECT_PORT ?= 4200
export DVC_NO_ANALYTICS := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_LOGGING_EXTRA_LOGGERS := denseseg,stages

.PHONY: run test setup system-packages prefect-server repro clean-venv

run: setup prefect-server repro

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

setup: system-packages $(VENV)/.installed

# open3d needs libusb and libGL; the report's browser test needs chromium and its driver (Debian packages:
# a test cannot download a browser here). Skipped when already present (or when not root).
system-packages:
	@if ! dpkg -s libusb-1.0-0 libgl1 libgomp1 chromium chromium-driver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq libusb-1.0-0 libgl1 libgomp1 chromium chromium-driver; \
	  else echo "please install the system packages libusb-1.0-0 libgl1 libgomp1 chromium chromium-driver (needs root)"; fi; \
	fi

# torch and torchvision are installed first from their exact pins (on local disk on the machines of this project).
$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[test]"
	@# nnunetv2 -> batchgenerators -> unittest2 pulls PyPI's `argparse` 1.4.0 (a Python 2 era backport). In
	@# site-packages it shadows the standard library's argparse wherever site-packages comes first on sys.path:
	@# Prefect's test server (uvicorn --app-dir site-packages) then dies on `BooleanOptionalAction`. Remove it.
	$(BIN)/pip uninstall -y -q argparse
	touch $@

# Start a local Prefect server with its UI unless PREFECT_API_URL points at one already.
prefect-server:
	@if [ -n "$$PREFECT_API_URL" ]; then \
	  echo "Prefect: using the server at $$PREFECT_API_URL"; \
	else \
	  if ! curl -fs http://127.0.0.1:$(PREFECT_PORT)/api/health >/dev/null 2>&1; then \
	    mkdir -p .prefect; \
	    nohup $(BIN)/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT) > .prefect/server.log 2>&1 & \
	    for i in $$(seq 1 60); do curl -fs http://127.0.0.1:$(PREFECT_PORT)/api/health >/dev/null 2>&1 && break; sleep 1; done; \
	  fi; \
	  echo "Prefect UI: http://127.0.0.1:$(PREFECT_PORT)  (server log: .prefect/server.log)"; \
	fi

# The JSRT landmarks sit beside the project when the workplace has them; never committed.
SHARED_JSRT ?= ../shared/data/jsrt-landmarks/landmarks.csv

# dvc.yaml runs `python -m pipelines ...`: the venv's python must come first on PATH.
repro:
	@if [ ! -f data/external/jsrt-landmarks.csv ] && [ -f $(SHARED_JSRT) ]; then \
	  cp $(SHARED_JSRT) data/external/jsrt-landmarks.csv; echo "JSRT landmarks: copied from $(SHARED_JSRT)"; \
	fi
	@api=$${PREFECT_API_URL:-http://127.0.0.1:$(PREFECT_PORT)/api}; \
	PATH="$(abspath $(BIN)):$$PATH" PREFECT_API_URL=$$api $(BIN)/dvc repro
	@echo "Done. Report: reports/report.html (and report.md)   Tables: reports/tables/   Metrics: $(BIN)/dvc metrics show   Plots: $(BIN)/dvc plots show   Release: release/   Prefect UI: see above"

clean-venv:
	rm -rf $(VENV)
