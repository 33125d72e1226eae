# The hands-on course on Kafka consumer offsets.
#   make lab    set everything up, start the broker, open JupyterLab on notebooks/
#   make test   set everything up and run the whole test suite (CI runs this)
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Kernels and extensions come from the course environment first.
export JUPYTER_PATH := $(abspath $(VENV))/share/jupyter

.PHONY: help setup lab test test-fast test-room broker stop status logs room-broker room-stop room-status bench bench-small benchmarks clean

help:
	@echo "make lab         set up, start the Kafka broker, open JupyterLab on notebooks/"
	@echo "make test        set up and run every test (unit tests + every notebook via papermill)"
	@echo "make broker      start (or find) the broker;  make stop / status / logs"
	@echo "make room-broker one broker for a room: make room-broker COURSE_BROKER_HOST=0.0.0.0 COURSE_BROKER_ADVERTISED=<address>"
	@echo "                 prints what learners set;  make room-stop / room-status;  make test-room: 10 learners at once"
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

# One broker for a room (README, "One broker for a room"): state in .course/room, apart from `make broker`'s.
room-broker: setup
	@$(PY) -m helpers.broker room start

room-stop:
	@if test -x $(PY); then $(PY) -m helpers.broker room stop; else echo "no environment, no broker"; fi

room-status: setup
	@$(PY) -m helpers.broker room status

lab: broker
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root)

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not notebook"

# Ten learners' notebooks at once against one room broker of its own (on 127.0.0.2); minutes, so not in `make test`.
test-room: setup
	COURSE_TEST_ROOM=1 $(PY) -m pytest tests/test_room.py -s -p no:cacheprovider

benchmarks: broker
	$(PY) benchmarks/broker_startup.py

# What commits cost (notebook 07): prints the table, saves JSON and PNGs (git-ignored).
bench: broker
	$(PY) -m helpers.bench --messages 100000 --repeats 3 --out .course/bench

bench-small: broker
	$(PY) -m helpers.bench --messages 2000 --repeats 1 --out .course/bench-small

clean: stop room-stop
	rm -rf $(VENV) .course
