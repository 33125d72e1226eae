# The hands-on course on Kafka consumer offsets.
#   make lab    set everything up, start the broker, open JupyterLab on notebooks/
#   make test   set everything up and run the whole test suite (CI runs this)
#   make test-browser  the course in JupyterLab in a real Chromium (CI runs it after make test)
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Kernels and extensions come from the course environment first.
export JUPYTER_PATH := $(abspath $(VENV))/share/jupyter

.PHONY: help setup lab test test-fast test-browser browser-setup broker stop status logs bench bench-small benchmarks clean

help:
	@echo "make lab         set up, start the Kafka broker, open JupyterLab on notebooks/"
	@echo "make test        set up and run every test (unit tests + every notebook via papermill)"
	@echo "make test-browser every notebook and widget in JupyterLab, driven in Chromium (Playwright)"
	@echo "make broker      start (or find) the broker;  make stop / status / logs"
	@echo "make benchmarks  broker start-up and memory figures"
	@echo "make bench       what commits cost: 100,000 messages per mode and client (notebook 07)"
	@echo "make bench-small the same with 2,000 messages, one round (what CI runs, via tests)"
	@echo "make clean       stop the broker, remove .venv and .course"

$(STAMP): pyproject.toml constraints.txt Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
	  { echo "error: the course needs Python 3.11+ (its pinned pandas and matplotlib do); '$(PYTHON)' is $$($(PYTHON) --version 2>&1). Run: make PYTHON=python3.11 ..."; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || \
	  { echo "error: '$(PYTHON) -m venv' failed (Debian/Ubuntu: apt install python3-venv)"; exit 1; }
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,bench]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (Kafka offsets course)" >/dev/null
	@# No "Jupyter news?" prompt: classrooms are often offline, and it distracts from the course.
	@mkdir -p $(VENV)/etc/jupyter/labconfig && printf '%s\n' \
	  '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}' \
	  > $(VENV)/etc/jupyter/labconfig/page_config.json
	@if git rev-parse --git-dir >/dev/null 2>&1; then $(VENV)/bin/nbstripout --install --attributes .gitattributes; fi
	@touch $(STAMP)

setup: $(STAMP)
	@$(PY) -m helpers.broker fetch >/dev/null

broker: setup
	@$(PY) -m helpers.broker start

stop:
	@if test -x $(PY); then $(PY) -m helpers.broker stop; else echo "no environment, no broker"; fi

status: setup
	@$(PY) -m helpers.broker status

logs: setup
	@$(PY) -m helpers.broker logs -n 80

lab: broker
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root)

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not notebook"

# Browser tests: Playwright for Python drives the system's Chromium (Debian's package;
# never a browser download). browser-setup installs the package when it is missing.
CHROMIUM ?= /usr/bin/chromium
BROWSER_STAMP := $(VENV)/.browser-installed
$(BROWSER_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[browser]'
	@touch $(BROWSER_STAMP)

browser-setup: $(BROWSER_STAMP)
	@if test -x $(CHROMIUM); then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then \
	  echo "error: $(CHROMIUM) not found and no apt-get here: install Chromium, then run make CHROMIUM=/path/to/chromium test-browser"; exit 1; fi; \
	if test "$$(id -u)" = 0; then SUDO=; \
	elif command -v sudo >/dev/null; then SUDO=sudo; \
	else echo "error: $(CHROMIUM) not found; installing it needs root: run 'apt-get install -y chromium' as root (or install sudo)"; exit 1; fi; \
	echo "Installing Chromium (Debian's package) for the browser tests..."; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$SUDO apt-get install -y -q chromium || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; } || \
	  { echo "error: 'apt-get install chromium' failed (see above); install Chromium, then rerun make test-browser"; exit 1; }; \
	test -x $(CHROMIUM) || { echo "error: chromium installed but $(CHROMIUM) is missing; run make CHROMIUM=/path/to/chromium test-browser"; exit 1; }

# JupyterLab on a copy of notebooks/ under .course/browser/, Run All in Chromium; times in
# .course/browser/times.json, screenshots of failures in .course/browser/screenshots/.
test-browser: setup browser-setup
	COURSE_CHROMIUM=$(CHROMIUM) $(PY) -m pytest tests/browser -p no:cacheprovider

benchmarks: broker
	$(PY) benchmarks/broker_startup.py

# What commits cost (notebook 07): prints the table, saves JSON and PNGs (git-ignored).
bench: broker
	$(PY) -m helpers.bench --messages 100000 --repeats 3 --out .course/bench

bench-small: broker
	$(PY) -m helpers.bench --messages 2000 --repeats 1 --out .course/bench-small

clean: stop
	rm -rf $(VENV) .course
