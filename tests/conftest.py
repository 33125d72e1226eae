"""One broker for the whole test session: started fresh for it, and stopped at the end.

Unless ``KAFKA_BOOTSTRAP_SERVERS`` names a cluster to use, the session gets a broker of its own,
in a private state folder deleted at the end (``COURSE_STATE_DIR``, which kernels and crash-lab
workers inherit). So the tests never stop the broker ``make lab`` runs (notebooks 03 and 04 stop
and restart theirs), and a warm run does not slow down as the topics of earlier runs pile up in
``.course/broker``. ``COURSE_KEEP_BROKER=1`` runs them on the course's own broker instead, and
leaves it running.

Likewise the course's three-node cluster, for the notebooks in ``NEEDS_CLUSTER``: started only
when one of them runs, and stopped after the last test that needs it if the tests started it
(an idle three-node cluster costs a fifth of a core).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import matplotlib
import pytest

import helpers.broker as broker

matplotlib.use("Agg")  # this test process only; notebook kernels keep their inline backend

#: Notebooks that kill nodes of the course's three-node cluster.
NEEDS_CLUSTER = {"12_coordinator_failover.ipynb"}
_private_state: list[Path] = []
_cluster_ours: list[bool] = []


def pytest_configure(config: pytest.Config) -> None:
    if not any(os.environ.get(name) for name in (broker.ENV_BOOTSTRAP, "COURSE_STATE_DIR",
                                                 "COURSE_KEEP_BROKER")):
        state = Path(tempfile.mkdtemp(prefix="course-test-"))
        _private_state.append(state)
        os.environ["COURSE_STATE_DIR"] = str(state)


def pytest_unconfigure(config: pytest.Config) -> None:
    for state in _private_state:
        from helpers import cluster as local_cluster

        broker.stop_broker()  # the kafka fixture stopped it already; a no-op then
        local_cluster.stop_cluster()
        shutil.rmtree(state, ignore_errors=True)
        os.environ.pop("COURSE_STATE_DIR", None)
    _private_state.clear()


def _needs_cluster(item: pytest.Item) -> bool:
    """A test of a notebook in ``NEEDS_CLUSTER`` (its module, or its row of test_notebooks.py)."""
    if item.path.name == "test_notebooks.py" and hasattr(item, "callspec"):
        path = item.callspec.params.get("path")
        return getattr(path, "name", None) in NEEDS_CLUSTER
    return any(item.path.name == f"test_nb{name.removesuffix('.ipynb')}.py" for name in NEEDS_CLUSTER)


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the cluster the tests started once the next test does not need it."""
    if _cluster_ours and (nextitem is None or not _needs_cluster(nextitem)):
        _cluster_ours.clear()
        if not os.environ.get("COURSE_KEEP_BROKER"):
            from helpers import cluster as local_cluster

            local_cluster.stop_cluster()


def use_cluster():
    """The course's three-node cluster (notebook 12), started if it is not running."""
    from helpers import cluster as local_cluster

    if not local_cluster._any_node_alive():
        _cluster_ours.append(True)
    return local_cluster.ensure_cluster()


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
            if name in NEEDS_CLUSTER:
                use_cluster()
            params = {"SOLVE_EXERCISES": True, **PARAMS.get(name, {})}
            nb = run_notebook(NOTEBOOKS / name, out_dir, params)
            cache[name] = read_records(nb)
            # how many figures really rendered as images (not as "<Figure size ...>" text)
            cache[name]["__images__"] = sum(
                "image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))
        return cache[name]

    return run
