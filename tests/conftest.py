"""One broker for the whole test run: found or started once, stopped at the end if we started it.

`make test` runs the suite in two phases: everything that leaves the shared broker alone
runs in parallel (pytest-xdist, `-m "not serial"`), then the tests that stop and restart
it (notebooks 03 and 04, found by reading them) run alone (`-m serial`). The broker is
stopped after the last phase (COURSE_KEEP_BROKER=1 on every phase but the last), and only
if a test started it (the marker file below).
"""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

import helpers.broker as broker

matplotlib.use("Agg")  # this test process only; notebook kernels keep their inline backend


def _started_marker() -> Path:
    return broker._run_dir() / "started-by-tests"


@pytest.fixture(scope="session")
def kafka() -> broker.BrokerInfo:
    info = broker.ensure_broker()
    if info.source == "embedded-started":
        _started_marker().write_text(str(os.getpid()))
    return info


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In the controller (or a plain run), stop the broker if this run's tests started it."""
    if hasattr(session.config, "workerinput") or os.environ.get("COURSE_KEEP_BROKER"):
        return
    if _started_marker().exists() and not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        broker.stop_broker()
        _started_marker().unlink(missing_ok=True)


def _notebook_of(item: pytest.Item) -> str | None:
    if "executed" not in getattr(item, "fixturenames", ()):
        return None
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "path" in callspec.params:
        return callspec.params["path"].name
    module = getattr(item, "module", None)
    return getattr(module, "NB", None) or getattr(module, "NAME", None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each notebook's tests share one worker (so it executes once); a notebook that stops
    the broker (its code calls stop_broker) is `serial`, like test files that say so."""
    from nbrun import NOTEBOOKS

    stops: dict[str, bool] = {}
    for item in items:
        nb = _notebook_of(item)
        if nb is None:
            continue
        if nb not in stops:
            stops[nb] = "stop_broker(" in (NOTEBOOKS / nb).read_text(encoding="utf-8")
        item.add_marker(pytest.mark.xdist_group(nb))
        if stops[nb]:
            item.add_marker(pytest.mark.serial)


@pytest.fixture(scope="session")
def executed(kafka, tmp_path_factory):
    """executed(name) -> records of that notebook, run once per session with small parameters."""
    from helpers.results import read_records
    from nbrun import NOTEBOOKS, run_notebook
    from notebook_params import PARAMS

    out_dir = tmp_path_factory.mktemp("executed")
    cache: dict[str, dict] = {}

    def run(name: str) -> dict:
        if name not in cache:
            params = {"SOLVE_EXERCISES": True, **PARAMS.get(name, {})}
            nb = run_notebook(NOTEBOOKS / name, out_dir, params)
            cache[name] = read_records(nb)
            # how many figures really rendered as images (not as "<Figure size ...>" text)
            cache[name]["__images__"] = sum(
                "image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))
        return cache[name]

    return run
