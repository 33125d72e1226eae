"""One broker for the whole test session: found or started once, stopped if we started it."""
from __future__ import annotations

import os

import matplotlib
import pytest

import helpers.broker as broker

matplotlib.use("Agg")  # this test process only; notebook kernels keep their inline backend


@pytest.fixture(scope="session")
def kafka() -> broker.BrokerInfo:
    info = broker.ensure_broker()
    yield info
    if info.source == "embedded-started" and not os.environ.get("COURSE_KEEP_BROKER"):
        broker.stop_broker()


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
