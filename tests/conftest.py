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

``make test`` runs the tests in three processes (pytest-xdist) that share that broker. Each notebook's
tests stay in one process (it executes once), and so do each module's and the cluster's
(``pytest_xdist_make_scheduler``). The notebooks that stop their broker (``STOPS_BROKER``) get
another private broker each, so nothing running beside them loses its broker.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import pytest

import helpers.broker as broker

matplotlib.use("Agg")  # this test process only; notebook kernels keep their inline backend

#: Notebooks that kill nodes of the course's three-node cluster.
NEEDS_CLUSTER = {"12_coordinator_failover.ipynb"}
#: Notebooks that stop and restart their broker (section 4b of notebooks 03 and 04).
STOPS_BROKER = {"03_sync_commit.ipynb", "04_async_commit.ipynb"}
#: The session's private state folder (set by the main process; parallel workers inherit it).
ENV_PRIVATE = "COURSE_TEST_PRIVATE_STATE"
#: Groups that take longest (measured), handed out first so that the test processes end together.
LONGEST_FIRST = ("cluster", "10_rebalances.ipynb", "test_crashlab.py", "test_broker.py",
                 "05_combined_commit.ipynb", "03_sync_commit.ipynb", "test_groups.py",
                 "09_operating_offsets.ipynb", "02_auto_commit.ipynb", "06_your_consumer.ipynb")
_private_state: list[Path] = []
_cluster_ours: list[bool] = []


def pytest_configure(config: pytest.Config) -> None:
    if not any(os.environ.get(name) for name in (broker.ENV_BOOTSTRAP, "COURSE_STATE_DIR",
                                                 "COURSE_KEEP_BROKER")):
        state = Path(tempfile.mkdtemp(prefix="course-test-"))
        _private_state.append(state)
        os.environ["COURSE_STATE_DIR"] = os.environ[ENV_PRIVATE] = str(state)


def pytest_unconfigure(config: pytest.Config) -> None:
    for state in _private_state:
        from helpers import cluster as local_cluster

        broker.stop_broker()  # the kafka fixture stopped it already; a no-op then
        for name in STOPS_BROKER:
            with _state_dir(_stopping_state(name)):
                broker.stop_broker()  # the notebooks' own, if a worker could not stop it
        local_cluster.stop_cluster()
        shutil.rmtree(state, ignore_errors=True)
        os.environ.pop("COURSE_STATE_DIR", None)
        os.environ.pop(ENV_PRIVATE, None)
    _private_state.clear()


def _stopping_state(notebook: str) -> Path:
    """The private state of the broker that ``notebook`` (in ``STOPS_BROKER``) stops and restarts."""
    return Path(os.environ[ENV_PRIVATE]) / f"stopped-by-{notebook.removesuffix('.ipynb')}"


@contextlib.contextmanager
def _state_dir(path: Path) -> Iterator[None]:
    """``COURSE_STATE_DIR`` set to ``path`` for this block (kernels started in it inherit it)."""
    before = os.environ["COURSE_STATE_DIR"]
    os.environ["COURSE_STATE_DIR"] = str(path)
    try:
        yield
    finally:
        os.environ["COURSE_STATE_DIR"] = before


def _notebook_of(nodeid: str) -> str | None:
    """The notebook a test reads: its module test_nbNN_*.py, or its row of test_notebooks.py."""
    module = nodeid.split("::")[0].rsplit("/", 1)[-1]
    if module == "test_notebooks.py" and nodeid.endswith(".ipynb]"):
        return nodeid[nodeid.rindex("[") + 1:-1]
    if module.startswith("test_nb"):
        return module.removeprefix("test_nb").removesuffix(".py") + ".ipynb"
    return None


def _needs_cluster(item: pytest.Item) -> bool:
    """A test of a notebook in ``NEEDS_CLUSTER``."""
    return _notebook_of(item.nodeid) in NEEDS_CLUSTER


def _group(nodeid: str) -> str:
    """The tests that must share one process: a notebook's (it executes once per process), the
    cluster's, else a module's (its module-scoped fixtures run once)."""
    notebook = _notebook_of(nodeid)
    if notebook in NEEDS_CLUSTER or nodeid.startswith("tests/test_cluster.py"):
        return "cluster"
    return notebook or nodeid.split("::")[0].rsplit("/", 1)[-1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    # stable: within a group, and among the other groups, the order stays as collected
    items.sort(key=lambda item: rank.get(_group(item.nodeid), len(rank)))


@pytest.hookimpl(optionalhook=True)  # known only when pytest-xdist is loaded
def pytest_xdist_make_scheduler(config: pytest.Config, log):  # noqa: ANN201 - pytest-xdist's types
    """Parallel runs (``-n``) hand out whole groups (``_group``), longest first."""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid)

    return GroupScheduling(config, log)


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
    # A parallel worker leaves it to the main process: the other worker may still use it.
    if (info.source == "embedded-started" and not os.environ.get("COURSE_KEEP_BROKER")
            and not os.environ.get("PYTEST_XDIST_WORKER")):
        broker.stop_broker()


@pytest.fixture(scope="session")
def executed(kafka, tmp_path_factory):
    """executed(name) -> records of that notebook, run once per session with small parameters."""
    from helpers.results import read_records
    from nbrun import NOTEBOOKS, run_notebook
    from notebook_params import PARAMS

    out_dir = tmp_path_factory.mktemp("executed")
    cache: dict[str, dict] = {}
    own_broker = bool(os.environ.get(ENV_PRIVATE))

    def run(name: str) -> dict:
        if name not in cache:
            if name in NEEDS_CLUSTER:
                use_cluster()
            params = {"SOLVE_EXERCISES": True, **PARAMS.get(name, {})}
            own = own_broker and name in STOPS_BROKER
            with _state_dir(_stopping_state(name)) if own else contextlib.nullcontext():
                nb = run_notebook(NOTEBOOKS / name, out_dir, params)
            cache[name] = read_records(nb)
            # how many figures really rendered as images (not as "<Figure size ...>" text)
            cache[name]["__images__"] = sum(
                "image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))
        return cache[name]

    yield run
    for name in STOPS_BROKER & set(cache) if own_broker else ():
        with _state_dir(_stopping_state(name)):
            broker.stop_broker()
