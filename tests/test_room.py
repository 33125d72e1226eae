"""One broker for a whole room: learners' names never collide, and ten learners run at once.

The unit tests (names, prefixes, the room broker's address checks) run in ``make test``.
``test_ten_learners_at_once`` starts a room broker of its own on 127.0.0.2 and runs
ten learners' notebooks against it at the same time, each in its own process with its
own ``COURSE_LEARNER``: it takes minutes on two cores, so ``make test-room`` runs it
(``COURSE_TEST_ROOM=1``), not ``make test``.
"""
from __future__ import annotations

import importlib
import inspect
import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

import helpers.broker as broker
from helpers import room
from helpers.broker import BrokerError
from helpers.inspection import java_string_hashcode, name_with_hashcode
from helpers.topics import unique_name

TESTS = Path(__file__).resolve().parent


# ---------------------------------------------------------------- names (no broker)


@pytest.fixture
def private(monkeypatch):
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("COURSE_LEARNER", raising=False)
    return monkeypatch


def test_a_private_broker_needs_no_prefix(private):
    assert room.learner() == "" and room.learner_prefix() == ""
    assert room.own_name("test_group_1") == "test_group_1"
    assert unique_name("orders").startswith("orders-") and room.is_own("anything")


def test_on_a_shared_broker_every_name_carries_the_learner(private):
    private.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.2:9092")
    private.setenv("COURSE_LEARNER", "alice")
    assert room.own_name("test_group_1") == "alice--test_group_1"
    name = unique_name("nb02-idle")
    assert name.startswith("alice--nb02-idle-") and len(name) == len("alice--nb02-idle-") + 6
    assert room.is_own(name) and not room.is_own("alice-b--nb02-idle-123456")
    assert not room.is_own("bob--x") and not room.is_own("test_group_1")


def test_the_default_learner_on_a_shared_broker_is_user_and_host(private):
    private.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.2:9092")
    private.setenv("USER", "Ana María")
    private.setenv("LOGNAME", "Ana María")
    private.setattr(socket, "gethostname", lambda: "Lab-PC_07.school.example")
    assert room.learner() == "ana-mar-a-lab-pc-07"
    assert room.valid_learner(room.learner())


def test_an_explicit_learner_works_on_a_private_broker_too(private):
    private.setenv("COURSE_LEARNER", "bob-2")
    assert room.learner_prefix() == "bob-2--"


@pytest.mark.parametrize("bad", ["Alice", "al ice", "a--b", "-a", "a-", "é", "a" * 41, "a.b", "a_b"])
def test_a_bad_learner_name_says_what_to_use(private, bad):
    private.setenv("COURSE_LEARNER", bad)
    with pytest.raises(ValueError, match="COURSE_LEARNER=.*lowercase letters, digits and single dashes"):
        room.learner()


def _learners(alphabet: str = "ab1-", longest: int = 4) -> list[str]:
    names = ("".join(t) for n in range(1, longest + 1) for t in itertools.product(alphabet, repeat=n))
    return [n for n in names if room.valid_learner(n)]


def test_two_learners_names_never_collide(private):
    """Every valid learner name up to 4 characters of 'ab1-' (with dashes where they trip a naive
    prefix: 'a' and 'a-b', 'a-1' and 'a1'), against the course's own name prefixes."""
    learners = _learners()
    assert len(learners) > 150 and {"a", "a-b", "ab", "a-1"} <= set(learners)
    parts = ["bookmarks-3f9a1c", "b--x", "-x", "x", "test_group_1", "nb10-never", "1-a-b", ""]
    seen: dict[str, str] = {}
    for who in learners:
        private.setenv("COURSE_LEARNER", who)
        for part in parts:
            name = room.own_name(part)
            assert seen.setdefault(name, who) == who, f"{who!r} and {seen[name]!r} both make {name!r}"
            assert name.split(room.SEPARATOR, 1)[0] == who  # the learner is the text before the first '--'
    for a, b in itertools.combinations(random.Random(7).sample(learners, 60), 2):
        private.setenv("COURSE_LEARNER", a)
        mine = [room.own_name(p) for p in parts] + [unique_name("nb01") for _ in range(3)]
        private.setenv("COURSE_LEARNER", b)
        assert not any(room.is_own(n) for n in mine), (a, b)


def test_unique_names_of_one_learner_do_not_repeat(private):
    private.setenv("COURSE_LEARNER", "alice")
    # 2000 draws of 6 hex digits collide about one time in eight (birthday bound): unique_name
    # draws again for a name it already gave out in this process
    names = {unique_name("g") for _ in range(2000)}
    assert len(names) == 2000 and all(n.startswith("alice--g-") for n in names)


@pytest.mark.parametrize("start", ["", "polygenelubricants", "alice--polygenelubricants", "l--x" * 40, "é漢"])
@pytest.mark.parametrize("target", [-(2**31), 0, 2**31 - 1, 12345])
def test_a_name_with_a_chosen_hashcode(start, target):
    name = name_with_hashcode(start, target)
    assert name.startswith(start) and java_string_hashcode(name) == target
    assert len(name) - len(start) in (0, 7) and room.SEPARATOR not in name[len(start):]
    if java_string_hashcode(start) == target:
        assert name == start


# ---------------------------------------------------------------- the room broker's address (no JVM)


@pytest.fixture
def bind_env(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_STATE_DIR", str(tmp_path))
    for name in (broker.ENV_HOST, broker.ENV_ADVERTISED, broker.ENV_PORT):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_loopback_stays_the_default(bind_env):
    assert broker._listen_addresses() == ("127.0.0.1", "127.0.0.1", None)


def test_every_interface_needs_an_advertised_address(bind_env):
    bind_env.setenv(broker.ENV_HOST, "0.0.0.0")
    with pytest.raises(BrokerError, match="COURSE_BROKER_ADVERTISED to the address learners reach"):
        broker._listen_addresses()
    bind_env.setenv(broker.ENV_ADVERTISED, "10.0.0.5")
    assert broker._listen_addresses() == ("0.0.0.0", "10.0.0.5", None)


def test_an_address_of_another_machine_is_refused(bind_env):
    bind_env.setenv(broker.ENV_HOST, "192.0.2.1")  # TEST-NET-1: never this machine's
    with pytest.raises(BrokerError, match="192.0.2.1 is not an address of this machine.*0.0.0.0"):
        broker._listen_addresses()


@pytest.mark.parametrize("bad", ["abc", "0", "70000"])
def test_a_bad_port_is_refused(bind_env, bad):
    bind_env.setenv(broker.ENV_PORT, bad)
    with pytest.raises(BrokerError, match="not a port number"):
        broker._listen_addresses()


def test_a_restart_keeps_the_room_address(bind_env):
    like = {"listen_host": "0.0.0.0", "advertised_host": "10.0.0.5", "serves_room": True}
    assert broker._listen_addresses(like) == ("0.0.0.0", "10.0.0.5", None)


# ---------------------------------------------------------------- ten learners at once

ROOM_SIZE = int(os.environ.get("COURSE_ROOM_LEARNERS", "10"))
FIRST = "01_offsets_as_bookmarks.ipynb"
# The second notebook, in turn: commits, groups, crash-lab trials, a service and an outage skip overlap.
# 09 lists every group with kafka-consumer-groups and reads __consumer_offsets partitions others write to.
SECOND = ["02_auto_commit.ipynb", "06_your_consumer.ipynb", "11_offsets_you_choose.ipynb",
          "03_sync_commit.ipynb", "09_operating_offsets.ipynb"]

LEARNER_RUN = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from nbrun import run_notebook
from notebook_params import PARAMS
from helpers.results import read_records
folder, out = __import__("pathlib").Path(sys.argv[2]), {}
for name in sys.argv[3:]:
    t0 = time.monotonic()
    try:
        params = {"SOLVE_EXERCISES": True, **PARAMS.get(name, {})}
        nb = run_notebook(folder / name, folder, params, cell_timeout=600)
        rec = read_records(nb)
        outputs = [o for c in nb.cells for o in c.get("outputs", [])]
        rec["__images__"] = sum("image/png" in o.get("data", {}) for o in outputs)
        out[name] = {"records": rec, "error": None}
    except Exception as e:  # papermill's error names the cell; keep going with the next notebook
        out[name] = {"records": None, "error": f"{type(e).__name__}: {str(e)[-3000:]}"}
    out[name]["seconds"] = round(time.monotonic() - t0, 1)
    (folder / "results.json").write_text(json.dumps(out, default=str))
"""


def _room_host() -> str:
    """127.0.0.2 where Linux routes all of 127/8 on lo (so the bind is really not 127.0.0.1)."""
    try:
        broker._free_port("127.0.0.2")
        return "127.0.0.2"
    except OSError:
        return "127.0.0.1"


@pytest.fixture(scope="module")
def room_broker(tmp_path_factory):
    """A room broker of the test's own (its own state folder), on 127.0.0.2; stopped afterwards."""
    keep = {k: os.environ.get(k) for k in ("COURSE_STATE_DIR", broker.ENV_HOST, broker.ENV_ADVERTISED,
                                           broker.ENV_PORT, "KAFKA_BOOTSTRAP_SERVERS")}
    os.environ["COURSE_STATE_DIR"] = str(tmp_path_factory.mktemp("room-state"))
    os.environ[broker.ENV_HOST] = _room_host()
    for k in (broker.ENV_ADVERTISED, broker.ENV_PORT, "KAFKA_BOOTSTRAP_SERVERS"):
        os.environ.pop(k, None)
    try:
        info = broker.start_broker(room=True)
        yield info
    finally:
        broker.stop_broker()
        for k, v in keep.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _names(bootstrap: str) -> tuple[set[str], set[str]]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="room-test")
    try:
        return set(admin.list_topics()), {g["group_id"] for g in admin.list_groups()}
    finally:
        admin.close()


def _notebook_checks(name: str, records: dict, shared: bool = True) -> list[str]:
    """Run that notebook's own test functions (tests/test_nbNN_*.py) on these records; failures as text."""
    failures = []
    module = importlib.import_module(next(p.stem for p in TESTS.glob(f"test_nb{name[:2]}_*.py")))
    for fname, fn in inspect.getmembers(module, inspect.isfunction):
        params = set(inspect.signature(fn).parameters)
        if not fname.startswith("test_") or not params <= {"executed", "rec", "kafka"}:
            continue  # tests that need a broker fixture or files of their own (the stubs) run in make test
        args = {"executed": lambda _n: records, "rec": records, "kafka": SimpleNamespace(shared=shared)}
        try:
            fn(**{p: args[p] for p in params})
        except pytest.skip.Exception:
            pass  # it checked the recorded skip first (notebooks 03 and 04 on a shared broker)
        except Exception as e:  # an assertion of that notebook's tests
            failures.append(f"{fname}: {type(e).__name__}: {str(e)[:500]}")
    claims = records.get("claims") or {}
    failures += [f"claim NOT shown: {c}" for c, ok in claims.items() if ok is not True] or []
    if not claims:
        failures.append("no claims recorded")
    failures += [f"{k} is {v}" for k, v in records.items()
                 if k.startswith(("exercise:", "prediction:")) and v is not True]
    if not records.get("__images__"):
        failures.append("no figure rendered")
    return failures


@pytest.mark.room
@pytest.mark.timeout(2400)
@pytest.mark.skipif(os.environ.get("COURSE_TEST_ROOM") != "1",
                    reason="ten learners at once take minutes: `make test-room` runs it")
def test_ten_learners_at_once(room_broker, tmp_path):
    bootstrap = room_broker.bootstrap
    assert room_broker.shared and bootstrap.startswith(f"{_room_host()}:")
    if _room_host() != "127.0.0.1":  # bound to 127.0.0.2 only: 127.0.0.1 on that port has no broker
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", int(bootstrap.rsplit(":", 1)[1])), timeout=2).close()
    topics_before, groups_before = _names(bootstrap)

    learners = {f"learner{i:02d}": [FIRST, SECOND[i % len(SECOND)]] for i in range(ROOM_SIZE)}
    procs = {}
    t0 = time.monotonic()
    for who, notebooks in learners.items():
        folder = tmp_path / who  # each learner's own copy of the notebooks (their my_*.py files land there)
        folder.mkdir()
        for nb in notebooks:
            shutil.copy(TESTS.parent / "notebooks" / nb, folder / nb)
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "COURSE_LEARNER": who}
        for k in ("COURSE_STATE_DIR", broker.ENV_HOST):
            env.pop(k, None)
        cmd = [sys.executable, "-c", LEARNER_RUN, str(TESTS), str(folder), *notebooks]
        procs[who] = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True)
    with ThreadPoolExecutor(len(procs)) as pool:  # drain every pipe at once
        outs = pool.map(lambda p: p.communicate(timeout=2200)[0], procs.values())
        logs = dict(zip(procs, outs, strict=True))
    wall = time.monotonic() - t0

    results = {}
    for who in learners:
        path = tmp_path / who / "results.json"
        results[who] = json.loads(path.read_text()) if path.exists() else {}
    topics_after, groups_after = _names(bootstrap)
    rss = broker._rss_mb(room_broker.pid or 0)

    problems: dict[str, list[str]] = {}
    for who, notebooks in learners.items():
        for nb in notebooks:
            got = results[who].get(nb)
            key = f"{who} {nb}"
            if got is None:
                problems[key] = [f"did not finish; log tail:\n{logs[who][-3000:]}"]
            elif got["error"]:
                problems[key] = [got["error"]]
            elif fails := _notebook_checks(nb, got["records"]):
                problems[key] = fails
    # No collision: each learner's names carry their prefix, and nothing unprefixed appeared on the broker.
    for who in learners:
        rec = (results[who].get(FIRST) or {}).get("records") or {}
        if rec:
            assert rec["learner_prefix"] == f"{who}--"
            assert rec["topic"].startswith(f"{who}--") and rec["group"].startswith(f"{who}--")
    prefixes = tuple(f"{who}--" for who in learners)
    internal = "__"  # __consumer_offsets, __transaction_state: Kafka's own, made by the first commit
    stray_topics = sorted(t for t in topics_after - topics_before if not t.startswith((*prefixes, internal)))
    stray_groups = sorted(g for g in groups_after - groups_before if not g.startswith(prefixes))

    times = {f"{who} {nb}": results[who].get(nb, {}).get("seconds")
             for who, nbs in learners.items() for nb in nbs}
    summary = {"learners": len(learners), "wall_seconds": round(wall, 1), "broker_rss_mb": rss,
               "notebook_runs": len(times), "failed_runs": len(problems),
               "new_topics": len(topics_after - topics_before),
               "new_groups": len(groups_after - groups_before),
               "stray_topics": stray_topics, "stray_groups": stray_groups, "seconds": times}
    print("\nROOM RUN", json.dumps(summary, indent=1))
    out = os.environ.get("COURSE_ROOM_REPORT")
    if out:
        Path(out).write_text(json.dumps({**summary, "problems": problems}, indent=1))
    kept = TESTS.parent / ".course" / "room-test"  # executed copies of failed runs, kept for reading
    shutil.rmtree(kept, ignore_errors=True)
    for key in problems:
        who, nb = key.split(" ", 1)
        executed = tmp_path / who / nb.replace(".ipynb", ".out.ipynb")
        if executed.exists():
            kept.mkdir(parents=True, exist_ok=True)
            shutil.copy(executed, kept / f"{who}-{executed.name}")
    assert not stray_topics and not stray_groups, "names without a learner's prefix appeared on the broker"
    assert not problems, f"executed copies in {kept}: " + json.dumps(problems, indent=1)[:20000]
