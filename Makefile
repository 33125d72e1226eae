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
# The offline bundle: when this file exists, set-up installs from it with no network.
BUNDLE ?= dist/kafka-offsets-course-bundle.tar.gz
# Kernels and extensions come from the course environment first.
export JUPYTER_PATH := $(abspath $(VENV))/share/jupyter

.PHONY: help setup lab test test-fast test-room broker stop status logs room-broker room-stop room-status \
	bench bench-small benchmarks sweeps clean cluster cluster-stop test-cluster \
	test-pythons site site-serve bundle \
	test-browser browser-setup

# The lowest and highest Python the README promises; `make test-pythons` runs the suite on each.
PYTHON_LOW  ?= python3.11
PYTHON_HIGH ?= python3.13
TEST_PYTHONS ?= $(PYTHON_LOW) $(PYTHON_HIGH)

help:
	@echo "make lab         set up, start the Kafka broker, open JupyterLab on notebooks/"
	@echo "make test        set up and run every test (unit tests + every notebook via papermill)"
	@echo "make test-browser every notebook and widget in JupyterLab, driven in Chromium (Playwright)"
	@echo "make broker      start (or find) the broker;  make stop / status / logs"
	@echo "make room-broker one broker for a room: make room-broker COURSE_BROKER_HOST=0.0.0.0 COURSE_BROKER_ADVERTISED=<address>"
	@echo "                 prints what learners set;  make room-stop / room-status;  make test-room: 10 learners at once"
	@echo "make benchmarks  broker start-up and memory figures"
	@echo "make bench       what commits cost: 100,000 messages per mode and client (notebook 07)"
	@echo "make bench-small the same with 2,000 messages, one round (what CI runs, via tests)"
	@echo "make sweeps      20 random SIGKILLs per commit mode, per delivery guarantee and for the"
	@echo "                 SQLite offset store, with their tables (the suite runs 6 to 10)"
	@echo "make cluster     start (or find) the local three-node cluster and show it;  make cluster-stop"
	@echo "make test-cluster  every test with KAFKA_BOOTSTRAP_SERVERS at that cluster (about 15 min)"
	@echo "make site        the static HTML edition of the executed course, in .course/site/ (make site-serve)"
	@echo "make bundle      one archive with the broker's jars and every pinned wheel, for rooms without internet"
	@echo "make test-pythons the suite on Python $(PYTHON_LOW:python%=%) and $(PYTHON_HIGH:python%=%), each in its own .venv-3.X"
	@echo "make clean       stop the broker and the cluster, remove .venv and .course"

$(STAMP): pyproject.toml constraints.txt Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
	  { echo "error: the course needs Python 3.11+ (its pinned pandas and matplotlib do); '$(PYTHON)' is $$($(PYTHON) --version 2>&1). Run: make PYTHON=python3.11 ..."; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || \
	  { echo "error: '$(PYTHON) -m venv' failed (Debian/Ubuntu: apt install python3-venv)"; exit 1; }
	@# With the offline bundle (make bundle) present: wheels from it, no index, no network.
	@if [ -f "$(BUNDLE)" ]; then \
	  $(PY) tools/bundle.py unpack "$(BUNDLE)" && \
	  echo "installing from the offline bundle $(BUNDLE) (pip --no-index)" && \
	  $(PY) -m pip install --quiet --disable-pip-version-check --no-index --find-links .course/bundle/wheels \
	    -c constraints.txt -e '.[dev,bench]'; \
	else \
	  $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,bench]'; \
	fi
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (Kafka offsets course)" >/dev/null
	@# No "Jupyter news?" prompt: classrooms are often offline, and it distracts from the course.
	@mkdir -p $(VENV)/etc/jupyter/labconfig && printf '%s\n' \
	  '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}' \
	  > $(VENV)/etc/jupyter/labconfig/page_config.json
	@# Only the main venv installs the git filter (a .venv-3.X one may be deleted later).
	@if [ "$(VENV)" = .venv ] && git rev-parse --git-dir >/dev/null 2>&1; then $(VENV)/bin/nbstripout --install --attributes .gitattributes; fi
	@touch $(STAMP)

setup: $(STAMP)
	@if [ -f "$(BUNDLE)" ]; then $(PY) tools/bundle.py unpack "$(BUNDLE)"; fi
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

# Three test processes share the session's broker (tests/conftest.py): the suite waits on the broker
# more than it computes, so three beat two even on two cores. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 3
test: setup
	$(PY) -m pytest -n $(TEST_WORKERS)

test-fast: setup
	$(PY) -m pytest -m "not notebook"

# Ten learners' notebooks at once against one room broker of its own (on 127.0.0.2); minutes, so not in `make test`.
test-room: setup
	COURSE_TEST_ROOM=1 $(PY) -m pytest tests/test_room.py -s -p no:cacheprovider

# Browser tests: Playwright for Python drives the system's Chromium (Debian's package;
# never a browser download). browser-setup installs the package when it is missing.
CHROMIUM ?= /usr/bin/chromium
BROWSER_STAMP := $(VENV)/.browser-installed
$(BROWSER_STAMP): $(STAMP)
	@if ls .course/bundle/wheels/playwright-* >/dev/null 2>&1; then \
	  $(PY) -m pip install --quiet --disable-pip-version-check --no-index --find-links .course/bundle/wheels \
	    -c constraints.txt -e '.[browser]'; \
	else \
	  $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[browser]'; \
	fi
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

# The crash sweeps at full size: the suite's own tests with 20 kills each instead of 6-10.
SWEEPS := tests/test_crashlab.py::test_random_sigkills_never_lose_and_stay_within_prediction \
          tests/test_guarantees.py::test_random_sigkills_per_guarantee \
          tests/test_offset_store.py::test_sqlite_store_keeps_every_record_exactly_once_under_random_sigkills
sweeps: setup
	COURSE_SWEEP_KILLS=20 $(PY) -m pytest -s -q -p no:cacheprovider $(SWEEPS)

# The local three-node cluster (helpers/cluster.py, broker/cluster.properties): notebook 12.
cluster: setup
	@$(PY) -m helpers.cluster start
	@$(PY) -m helpers.cluster status

cluster-stop:
	@if test -x $(PY); then $(PY) -m helpers.cluster stop; else echo "no environment, no cluster"; fi

# The whole suite (unit tests + every notebook) with KAFKA_BOOTSTRAP_SERVERS at the three-node cluster;
# the cluster is started if needed and stopped afterwards if this started it.
test-cluster: setup
	$(PY) -m helpers.cluster run -- $(PY) -m pytest

clean: stop room-stop cluster-stop
	rm -rf $(VENV) .course

# The whole suite on each Python the README names, each in its own venv (.venv-3.X, git-ignored).
# One only: make test-pythons TEST_PYTHONS=python3.13
test-pythons:
	@for name in $(TEST_PYTHONS); do \
	  exe=$$(tools/find_python.sh $$name) || exit 1; \
	  v=$$($$exe -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	  echo "== make test on Python $$v ($$exe), venv .venv-$$v"; \
	  start=$$(date +%s); \
	  $(MAKE) --no-print-directory PYTHON=$$exe VENV=.venv-$$v test || { echo "== FAILED on Python $$v"; exit 1; }; \
	  echo "== passed on Python $$v in $$(( $$(date +%s) - start )) s"; \
	done

# The static HTML edition: every notebook run with its defaults (or a fresh executed copy in
# .course/executed reused), converted with nbconvert, with an index; open or serve .course/site/.
SITE_PORT ?= 8765
site: setup
	@start=$$(date +%s); $(PY) -m tools.build_site --out .course/site --executed .course/executed; rc=$$?; \
	  echo "built in $$(( $$(date +%s) - start )) s: $$(du -sh .course/site | cut -f1), $$(find .course/site -type f | wc -l) files"; \
	  echo "open file://$(abspath .course/site)/index.html   or: make site-serve"; exit $$rc

site-serve:
	@test -f .course/site/index.html || { echo "no site yet: make site"; exit 1; }
	@echo "serving http://127.0.0.1:$(SITE_PORT)/ (Ctrl-C stops)"
	@$(PYTHON) -m http.server --bind 127.0.0.1 --directory .course/site $(SITE_PORT)

# The offline bundle (git-ignored dist/): jars + pinned wheels for this platform and Python;
# copy it into another clone's dist/ and `make setup` there needs no network.
bundle: setup
	$(PY) tools/bundle.py build --out $(BUNDLE)
