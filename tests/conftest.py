"""One broker for the whole test session: found or started once, stopped if we started it.

Likewise the course's three-node cluster, for the notebooks in ``NEEDS_CLUSTER`` (and tests that
ask for the ``cluster`` fixture): started only when one of them runs, stopped at the end if the
tests started it.
"""
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


#: Notebooks that kill nodes of the course's three-node cluster.
NEEDS_CLUSTER = {"12_coordinator_failover.ipynb"}


@pytest.fixture(scope="session")
def cluster():
    """The course's three-node cluster (notebook 12), stopped at the end if the tests started it."""
    from helpers import cluster as local_cluster

    started = not any(n["alive"] for n in local_cluster.cluster_status()["nodes"].values())
    info = local_cluster.ensure_cluster()
    yield info
    if started and not os.environ.get("COURSE_KEEP_BROKER"):
        local_cluster.stop_cluster()


@pytest.fixture(scope="session")
def executed(kafka, tmp_path_factory, request):
    """executed(name) -> records of that notebook, run once per session with small parameters."""
    from helpers.results import read_records
    from nbrun import NOTEBOOKS, run_notebook
    from notebook_params import PARAMS

    out_dir = tmp_path_factory.mktemp("executed")
    cache: dict[str, dict] = {}

    def run(name: str) -> dict:
        if name not in cache:
            if name in NEEDS_CLUSTER:
                request.getfixturevalue("cluster")
            params = {"SOLVE_EXERCISES": True, **PARAMS.get(name, {})}
            nb = run_notebook(NOTEBOOKS / name, out_dir, params)
            cache[name] = read_records(nb)
            # how many figures really rendered as images (not as "<Figure size ...>" text)
            cache[name]["__images__"] = sum(
                "image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))
        return cache[name]

    return run
