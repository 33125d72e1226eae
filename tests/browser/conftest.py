"""Fixtures of the browser tests (`make test-browser`): JupyterLab on a copy of the course, Chromium.

``runs.get(name)`` opens a notebook in the page, runs it all as a learner does, saves it
and reads the saved file; the widget tests reuse that page (its kernel holds the widgets).
Failing tests leave a screenshot in ``.course/browser/screenshots/``; the Run-All and
click-to-report times are printed at the end and written to ``.course/browser/times.json``.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any

import jlab
import nbformat
import pytest
from jlab import MEASURED

_T0 = time.perf_counter()


@dataclass
class NotebookRun:
    name: str
    page: Any
    open_s: float
    run_all_s: float
    state: dict
    saved: Any  # nbformat.NotebookNode read from the saved file
    closed: bool = False


class Runs:
    """One JupyterLab page; each notebook opened in it and run at most once per session."""

    def __init__(self, server: jlab.LabServer, context: Any) -> None:
        self.server, self.context = server, context
        self.page = context.new_page()
        jlab.open_lab(self.page, server)
        self.done: dict[str, NotebookRun] = {}

    def get(self, name: str, timeout_s: float = 420.0) -> NotebookRun:
        if name in self.done and not self.done[name].closed:
            jlab.activate(self.page, name)
            return self.done[name]
        t0 = time.perf_counter()
        jlab.open_notebook(self.page, name)
        opened = time.perf_counter() - t0
        t0 = time.perf_counter()
        st = jlab.run_all(self.page, timeout_s)
        seconds = time.perf_counter() - t0
        jlab.save(self.page)
        saved = nbformat.read(self.server.root / name, as_version=4)
        MEASURED["open_s"][name] = round(opened, 1)
        MEASURED["run_all_s"][name] = round(seconds, 1)
        run = NotebookRun(name, self.page, opened, seconds, st, saved)
        self.done[name] = run
        return run

    def close(self, name: str) -> None:
        """Shut the notebook's kernel down and close its tab (frees the machine for the next one)."""
        run = self.done.get(name)
        if run is None or not run.closed:
            jlab.close_notebook(self.page, name)  # also a notebook whose Run All did not finish
        if run is not None:
            run.closed = True


@pytest.fixture(scope="session")
def lab(kafka):
    """JupyterLab on a fresh copy of notebooks/ (broker up first: Run-All times are the notebooks').
    Notebook 12 starts the course's cluster when none runs: it is stopped again at the end."""
    from helpers import cluster as local_cluster

    cluster_was_up = local_cluster._any_node_alive()
    jlab.WORK.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(jlab.SCREENSHOTS, ignore_errors=True)
    server = jlab.start_lab(jlab.copy_course())
    yield server
    server.stop()
    if not cluster_was_up and not os.environ.get("COURSE_KEEP_BROKER"):
        local_cluster.stop_cluster()


@pytest.fixture(scope="session")
def browser_context():
    """Chromium (the system's, never a download), headless, with a fresh empty profile."""
    from playwright.sync_api import sync_playwright

    if not os.access(jlab.CHROMIUM, os.X_OK):
        pytest.fail(f"{jlab.CHROMIUM} not found: run `make browser-setup` (installs Debian's chromium), "
                    "or set COURSE_CHROMIUM to a Chromium binary")
    profile = jlab.WORK / "chromium-profile"
    shutil.rmtree(profile, ignore_errors=True)
    profile.mkdir(parents=True)
    pw = sync_playwright().start()
    try:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=jlab.CHROMIUM, headless=True, args=jlab.CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000})
    except Exception:
        pw.stop()
        raise
    context.set_default_timeout(60_000)
    yield context
    context.close()
    pw.stop()


@pytest.fixture(scope="session")
def runs(lab, browser_context):
    r = Runs(lab, browser_context)
    yield r
    for name in list(r.done):
        r.close(name)
    r.page.close()


def pytest_sessionfinish(session, exitstatus):
    if not MEASURED["run_all_s"] and not MEASURED["widgets"]:
        return
    MEASURED["total_s"] = round(time.perf_counter() - _T0, 1)
    MEASURED["load_average_1min"] = round(os.getloadavg()[0], 1)
    jlab.WORK.mkdir(parents=True, exist_ok=True)
    jlab.TIMES.write_text(json.dumps(MEASURED, indent=2) + "\n")


def pytest_terminal_summary(terminalreporter):
    if not MEASURED["run_all_s"] and not MEASURED["widgets"]:
        return
    tr = terminalreporter
    tr.section("browser times (Chromium, JupyterLab)")
    tr.write_line(f"{'notebook':34s} {'open s':>7s} {'Run All s':>10s}")
    for name, s in MEASURED["run_all_s"].items():
        tr.write_line(f"{name:34s} {MEASURED['open_s'].get(name, float('nan')):7.1f} {s:10.1f}")
    tr.write_line(f"{'total Run All':34s} {'':7s} {sum(MEASURED['run_all_s'].values()):10.1f}")
    if MEASURED["widgets"]:
        tr.write_line(f"{'widget':34s} {'click-to-report s (each click)'}")
        for name, clicks in MEASURED["widgets"].items():
            tr.write_line(f"{name:34s} " + ", ".join(f"{c['seconds']:.2f} ({c['what']})" for c in clicks))
    tr.write_line(f"browser tests took {time.perf_counter() - _T0:.0f} s (load average "
                  f"{os.getloadavg()[0]:.1f}); written to {jlab.TIMES}")


def pytest_collection_modifyitems(items):
    """Each notebook's widget tests right after its Run All (one notebook open at a time);
    tests of no notebook (the driver check first, the static edition last) around them."""
    names = jlab.notebook_names()

    def key(item: Any) -> tuple[int, int]:
        params = getattr(item, "callspec", None)
        nb = (params.params.get("name") or params.params.get("notebook")) if params else None
        if nb in names:
            return (1 + names.index(nb), 0 if "name" in params.params else 1)
        return (0, 0) if "driver" in item.name else (len(names) + 1, 0)

    items.sort(key=key)
