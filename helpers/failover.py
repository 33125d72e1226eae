"""When the coordinator dies: consumers commit while the node coordinating them is SIGKILLed (notebook 12).

A group's coordinator is the leader of the ``__consumer_offsets`` partition that notebook 01's
formula gives (:func:`helpers.inspection.offsets_partition_for`). :func:`run_failover` picks
one group per commit mode so that **all of them are coordinated by the same node**, starts one
consumer per mode in its own process (:mod:`helpers.failover_worker`, each running the mode's
own loop from :mod:`helpers.modes`), lets them commit, calls ``kill_coordinator(group)`` (on the
course's cluster, ``kill_node(coordinator_of(group))``: a SIGKILL), and watches:

* every commit attempt, what each call returned or raised and whether kafka-python marks the
  exception retriable; every async callback and what it received; kafka-python's own log
  lines as it lost and found the coordinator;
* how long from the kill to each mode's first successful commit, and which node answered it;
* the offsets the broker acknowledged before the kill against those it returns after the
  failover (none may go backwards), also for a *witness* group that committed once before the
  kill and never again, so no later commit can hide a lost one;
* what was processed twice and what never, from a SIGKILL-proof ledger as the crash lab
  keeps it (:func:`helpers.crashlab.tally_ledger`): run 1 goes through the failover and is
  stopped with SIGTERM a few commits later; run 2, a fresh consumer, drains the topic.

The killed node stays down: the caller brings it back (``restart_node``, ``wait_in_sync``)
before the next kill. The pure parts (:func:`acked_before`, :func:`first_success_after`,
:func:`went_backwards`, :func:`result_counts`, :func:`dead_marks`, :func:`longest_pause`,
:func:`pick_groups`) take plain rows and are tested without a broker.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .jsonl import read_rows

__all__ = [
    "FAILOVER_MODES",
    "FailoverError",
    "FailoverReport",
    "Target",
    "acked_before",
    "dead_marks",
    "failover_target",
    "first_success_after",
    "longest_pause",
    "make_topic",
    "not_in_log",
    "offsets_topic_layout",
    "pick_groups",
    "placement",
    "result_counts",
    "run_failover",
    "went_backwards",
]

_ROOT = Path(__file__).resolve().parent.parent
_TICK_S = 0.05
OFFSETS_TOPIC = "__consumer_offsets"
#: The commit modes notebook 12 kills the coordinator under, in teaching order.
FAILOVER_MODES: tuple[str, ...] = ("sync", "async", "combined", "auto")


class FailoverError(RuntimeError):
    """The failover lab cannot run as asked (too few nodes, a node not back in sync...)."""


# ---------------------------------------------------------------------------- pure tallies

def _partition(key: Any) -> int:
    return int(str(key).rsplit(":", 1)[-1])


def acked_before(commits: Iterable[Mapping[str, Any]], t: float) -> dict[int, int]:
    """Per partition, the highest offset a successful commit acknowledged before wall time ``t``
    (notebook 12): what the broker had confirmed when the coordinator was killed."""
    out: dict[int, int] = {}
    for c in commits:
        if c.get("outcome") == "success" and float(c["wall"]) < t:
            for key, off in (c.get("offsets") or {}).items():
                p = _partition(key)
                out[p] = max(out.get(p, -1), int(off))
    return dict(sorted(out.items()))


def first_success_after(commits: Iterable[Mapping[str, Any]], t: float,
                        dead: int | None = None) -> Mapping[str, Any] | None:
    """The first successful commit answered after wall time ``t`` by a node other than
    ``dead`` (notebook 12): commits work again. ``None`` if there is none."""
    ok = [c for c in commits if c.get("outcome") == "success" and float(c["wall"]) > t
          and (dead is None or c.get("node") != dead)]
    return min(ok, key=lambda c: float(c["wall"])) if ok else None


def went_backwards(found: Mapping[Any, int | None],
                   acked: Mapping[Any, int]) -> dict[int, tuple[int | None, int]]:
    """Partitions whose offset found on the broker is below the one acknowledged before:
    ``{partition: (found, acknowledged)}``; empty when nothing went backwards (notebook 12)."""
    have = {_partition(k): v for k, v in found.items()}
    return {int(p): (have.get(int(p)), int(a)) for p, a in sorted(acked.items(), key=lambda kv: int(kv[0]))
            if have.get(int(p)) is None or int(have[int(p)]) < int(a)}  # type: ignore[arg-type]


def not_in_log(acked: Mapping[Any, int], in_log: set[tuple[int, int]]) -> dict[int, int]:
    """Acknowledged ``{partition: offset}`` with no commit record ``(partition, offset)`` in the
    ``__consumer_offsets`` log: commits lost with the coordinator; empty when none (notebook 12)."""
    return {_partition(p): int(a) for p, a in acked.items() if (_partition(p), int(a)) not in in_log}


def result_counts(rows: Iterable[Mapping[str, Any]], *, call: str = "mode") -> list[dict[str, Any]]:
    """Rows -> ``[{call, result, retriable, count}]`` in order of first appearance (notebook 12).

    ``call`` names the field that says which call it was (``mode`` for commit attempts:
    sync, async, auto, auto-sync; a constant for callbacks).
    """
    counts: Counter[tuple[str, str, Any]] = Counter()
    order: list[tuple[str, str, Any]] = []
    for r in rows:
        key = (str(r.get(call, call)), str(r.get("result")), r.get("retriable"))
        if key not in counts:
            order.append(key)
        counts[key] += 1
    return [{"call": c, "result": res, "retriable": rt, "count": counts[(c, res, rt)]}
            for c, res, rt in order]


def dead_marks(events: Iterable[Mapping[str, Any]], t0: float | None = None,
               t1: float | None = None) -> dict[str, int]:
    """How often kafka-python marked the coordinator dead between ``t0`` and ``t1``, by
    reason (notebook 12): the retries a blocking ``commit()`` does without telling you."""
    out: Counter[str] = Counter()
    for e in events:
        w = float(e["wall"])
        if e.get("kind") == "dead" and (t0 is None or w >= t0) and (t1 is None or w <= t1):
            out[str(e.get("reason"))] += 1
    return dict(out.most_common())


def longest_pause(ledger: Iterable[Mapping[str, Any]], t: float, run: int = 1) -> float:
    """The longest time between two records ``run`` processed, among gaps that end after
    wall time ``t`` (notebook 12): how long the consumer stopped working around a kill."""
    ts = sorted(float(e["t"]) for e in ledger if e.get("run") == run)
    gaps = [b - a for a, b in zip(ts, ts[1:], strict=False) if b > t]
    return round(max(gaps), 3) if gaps else 0.0


def pick_groups(labels: Sequence[str], leader_of: Mapping[int, int], *, prefix: str = "nb12",
                node: int | None = None, partitions: int | None = None,
                tries: int = 2000) -> tuple[int, dict[str, str]]:
    """Group ids, one per label, whose ``__consumer_offsets`` partitions (notebook 01's formula)
    are all led by one node: ``node``, or the leader of the first group's partition (notebook 12).

    ``leader_of`` maps each offsets partition to its leader. Returns ``(node, {label: group})``.
    """
    from .inspection import offsets_partition_for

    n = partitions or len(leader_of)
    if not leader_of:
        raise FailoverError("the __consumer_offsets topic has no partitions yet")
    if node is not None and node not in set(leader_of.values()):
        raise FailoverError(f"node {node} leads no __consumer_offsets partition; "
                            f"leaders are {sorted(set(leader_of.values()))}")
    out: dict[str, str] = {}
    for label in labels:
        for _ in range(tries):
            group = f"{prefix}-{label}-{uuid.uuid4().hex[:6]}"
            leader = leader_of.get(offsets_partition_for(group, n))
            if leader is not None and (node is None or leader == node):
                node = leader
                out[label] = group
                break
        else:
            raise FailoverError(f"found no group name for {label!r} coordinated by node {node}")
    assert node is not None
    return node, out


# ---------------------------------------------------------------------------- which cluster

@dataclass(frozen=True)
class Target:
    """The cluster notebook 12 kills a node of, and why that one (:func:`failover_target`)."""

    bootstrap: str
    note: str


def failover_target() -> Target:
    """The cluster to kill a coordinator in (notebook 12).

    ``KAFKA_BOOTSTRAP_SERVERS`` naming the course's own cluster: that one. Naming anything
    else (a single broker, or a cluster whose nodes this course did not start and so cannot
    SIGKILL): the course's own three-node cluster (:func:`helpers.cluster.ensure_cluster`,
    started if needed), and ``note`` says so. Unset: the course's own cluster.
    """
    from .broker import ENV_BOOTSTRAP
    from .cluster import cluster_status, ensure_cluster

    env = os.environ.get(ENV_BOOTSTRAP, "").strip()
    status = cluster_status()
    ours = set(str(status.get("bootstrap") or "").split(",")) - {""}
    if env and status.get("running") and set(env.split(",")) <= ours:
        return Target(ensure_cluster().bootstrap, f"{ENV_BOOTSTRAP} names the course's own "
                      "three-node cluster: its nodes can be killed from here")
    info = ensure_cluster()
    if env:
        return Target(info.bootstrap, f"{ENV_BOOTSTRAP}={env} is not the course's three-node cluster, "
                      "so this notebook cannot SIGKILL one of its nodes: the kill sections run on the "
                      f"course's own cluster instead, at {info.bootstrap}")
    return Target(info.bootstrap, f"the course's own three-node cluster, at {info.bootstrap}")


# ---------------------------------------------------------------------------- where the coordinator is

def offsets_topic_layout(admin: Any) -> dict[int, dict[str, Any]]:
    """Each ``__consumer_offsets`` partition: its leader, replicas and in-sync replicas (notebook 12)."""
    (desc,) = admin.describe_topics([OFFSETS_TOPIC])
    if desc.get("error_code"):
        return {}
    return {int(p["partition_index"]): {"leader": int(p["leader_id"]),
                                        "replicas": sorted(int(r) for r in p["replica_nodes"]),
                                        "isr": sorted(int(r) for r in p["isr_nodes"])}
            for p in desc["partitions"]}


def placement(admin: Any, group: str) -> dict[str, Any]:
    """Where ``group``'s coordinator is and why (notebook 12): its ``__consumer_offsets``
    partition by notebook 01's formula, that partition's leader (the coordinator), replicas
    and in-sync replicas."""
    from .inspection import offsets_partition_for

    layout = offsets_topic_layout(admin)
    if not layout:
        raise FailoverError("the cluster has no __consumer_offsets topic yet: a group's first "
                            "FindCoordinator request creates it; run a consumer once")
    p = offsets_partition_for(group, len(layout))
    return {"group": group, "offsets_partition": p, **layout[p]}


def _ensure_offsets_topic(admin: Any, timeout_s: float = 30.0) -> dict[int, dict[str, Any]]:
    """The offsets topic's layout; asks for a coordinator once to create it if needed."""
    end = time.monotonic() + timeout_s
    layout = offsets_topic_layout(admin)
    while not layout or any(v["leader"] < 0 for v in layout.values()):
        if time.monotonic() > end:
            raise FailoverError("__consumer_offsets did not get a leader for every partition "
                                f"within {timeout_s:.0f} s")
        with contextlib.suppress(Exception):  # coordinator not ready yet: the topic is being created
            admin.describe_groups(["nb12-create-offsets-topic"])
        time.sleep(0.2)
        layout = offsets_topic_layout(admin)
    return layout


# ---------------------------------------------------------------------------- the report

@dataclass
class FailoverReport:
    """One coordinator kill under consumers in several commit modes (notebook 12).

    ``modes[mode]`` holds what that mode's consumer saw (see :meth:`table` for the headline
    columns, and ``commits`` / ``callbacks`` / ``events`` / ``ledger`` for every row; wall
    times are seconds since ``t0``, the kill is at ``kill_t``).
    """

    node: int  # the node that was killed
    kill_t: float  # seconds since t0
    t0: float  # wall clock of the trial's start
    topic: str
    n_messages: int
    modes: dict[str, dict[str, Any]]
    witness: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)

    def table(self) -> Any:
        """One row per mode: the kill table."""
        import pandas as pd

        cols = ["group", "coordinator_before", "coordinator_after", "kill_to_new_coordinator_s",
                "kill_to_first_commit_s",
                "longest_commit_call_s", "longest_pause_s", "acked_before", "found_after",
                "went_backwards", "duplicates", "lost"]
        return pd.DataFrame([{"mode": m, **{c: r.get(c) for c in cols}}
                             for m, r in self.modes.items()]).set_index("mode")

    def errors(self) -> Any:
        """What each commit call and each async callback got, from the kill to the first
        successful commit: one row per (mode, call, result, retriable) with a count."""
        import pandas as pd

        rows = [{"mode": m, **row} for m, r in self.modes.items() for row in r["failover_results"]]
        return pd.DataFrame(rows, columns=["mode", "call", "result", "retriable", "count"])

    def callback_failures(self, mode: str = "async") -> int:
        """How many of run 1's async callbacks received an exception from the kill until one
        second after the mode's first successful commit (notebook 12's exercise)."""
        r = self.modes[mode]
        end = self.kill_t + (r["kill_to_first_commit_s"] if r["kill_to_first_commit_s"] is not None
                             else float("inf")) + 1.0
        return sum(1 for c in r["callbacks"] if c.get("run") == 1 and c.get("retriable") is not None
                   and self.kill_t <= float(c["wall"]) <= end)

    def summary(self) -> dict[str, Any]:
        """JSON-ready headline numbers, per mode."""
        keep = ("group", "offsets_partition", "coordinator_before", "coordinator_after",
                "kill_to_new_coordinator_s", "kill_to_first_commit_s", "first_commit_node",
                "generation_before", "generation_after",
                "longest_commit_call_s",
                "longest_pause_s", "acked_before", "found_after", "went_backwards", "acked_not_in_log",
                "found_after_admin", "admin_read_behind", "final_committed", "processed", "duplicates",
                "duplicates_run1", "lost",
                "failover_results", "dead_marks", "run1_stopped", "run1_error")
        return {"node": self.node, "kill_t": round(self.kill_t, 3), "topic": self.topic,
                "n_messages": self.n_messages, "witness": self.witness,
                "modes": {m: {k: r.get(k) for k in keep} for m, r in self.modes.items()}}

    def _repr_html_(self) -> str:
        return (f"<p>node {self.node} SIGKILLed {self.kill_t:.2f} s into the trial; witness group "
                f"offsets went backwards: {bool(self.witness.get('went_backwards'))}</p>"
                + self.table().to_html())


# ---------------------------------------------------------------------------- running a trial

def _tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no stderr)"


def _start(cfg: dict[str, Any], workdir: Path) -> subprocess.Popen[bytes]:
    name = f"{cfg['mode']}-run{cfg['run']}"
    path = workdir / f"{name}.json"
    path.write_text(json.dumps(cfg))
    with open(workdir / f"{name}.stderr", "wb") as err, open(workdir / f"{name}.stdout", "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "helpers.failover_worker", str(path)],
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=_ROOT)


def _wait_exit(procs: Mapping[str, subprocess.Popen[bytes]], deadline: float, workdir: Path,
               run: int) -> None:
    for mode, proc in procs.items():
        try:
            proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise TimeoutError(f"the {mode} consumer (run {run}) did not finish in time; stderr:\n"
                               f"{_tail(workdir / f'{mode}-run{run}.stderr')}") from None


def make_topic(bootstrap: str, n_messages: int, partitions: int = 3) -> str:
    """A new topic with 3 replicas (min ISR 2), seeded with ``n_messages``: one node can die
    without losing a record or stopping a write (notebook 12). Returns its name."""
    from .topics import admin_client, seed_messages, unique_name

    topic = unique_name("nb12-failover")
    with admin_client(bootstrap) as admin:
        replicas = min(3, len(admin.describe_cluster()["brokers"]))
        admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": replicas,
                                     "configs": {"min.insync.replicas": str(min(2, replicas))}}},
                            wait_for_metadata=True)
    seed_messages(topic, n_messages, bootstrap=bootstrap, progress=False)
    return topic


def _witness_commit(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """Commit offsets 1, 2, 3... for ``group`` once, synchronously; returns what was acknowledged."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                             client_id=f"failover-witness-{group}", bootstrap_timeout_ms=10_000)
    try:
        offsets = {TopicPartition(topic, p): OffsetAndMetadata(p + 1, "", -1) for p in range(partitions)}
        consumer.assign(list(offsets))
        consumer.commit(offsets)
        return {tp.partition: om.offset for tp, om in offsets.items()}
    finally:
        consumer.close(autocommit=False)


def _committed(admin: Any, group: str, topic: str, timeout_s: float = 60.0) -> dict[int, int]:
    from .topics import group_offsets

    got = group_offsets(admin, group, timeout_s=timeout_s)
    return {tp.partition: int(om.offset) for tp, om in sorted(got.items())
            if tp.topic == topic and om is not None and om.offset >= 0}


def _read(workdir: Path, mode: str, kind: str) -> list[dict[str, Any]]:
    return read_rows(workdir / f"{mode}.{kind}.jsonl")


def run_failover(modes: Sequence[str] = FAILOVER_MODES, *, bootstrap: str,
                 kill_coordinator: Callable[[str], int], n_messages: int = 4000,
                 partitions: int = 3, topic: str | None = None, process_ms: float = 10.0,
                 max_poll_records: int = 20,
                 auto_commit_interval_ms: int = 500, kill_after_s: float = 1.0,
                 commits_after: int = 3, timeout_s: float = 120.0,
                 on_stage: Callable[[str], None] | None = None,
                 workdir: str | Path | None = None) -> FailoverReport:
    """Kill the node coordinating one group per mode while they commit (notebook 12).

    ``kill_coordinator(group)`` must SIGKILL the node coordinating ``group`` and return its
    id; all groups share that node. ``kill_after_s``: when to kill, in seconds after every
    consumer had its first commit acknowledged. Run 1 of each mode is stopped (SIGTERM)
    once ``commits_after`` commits succeeded after the kill; run 2 drains the topic (in
    batches of 500, without the simulated work).
    ``process_ms`` per record keeps run 1 busy through the failover (``n_messages`` must
    outlast it). ``topic``: an existing topic to read (trials can share one; each has its own
    groups), else a new one is created with 3 replicas and seeded with ``n_messages``.
    Raises :class:`FailoverError` when the cluster cannot take the kill.
    """
    from .modes import get_mode

    for m in modes:
        get_mode(m)
    if not modes:
        raise ValueError("modes is empty: give at least one of " + ", ".join(FAILOVER_MODES))
    if not (isinstance(kill_after_s, (int, float)) and 0 <= kill_after_s <= 30):
        raise ValueError(f"kill_after_s must be between 0 and 30 seconds, not {kill_after_s!r}")
    if isinstance(n_messages, bool) or not isinstance(n_messages, int) or n_messages < 100:
        raise ValueError(f"n_messages must be a whole number >= 100, not {n_messages!r}")
    own = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="failover-")) if own else Path(workdir)  # type: ignore[arg-type]
    wd.mkdir(parents=True, exist_ok=True)
    trial = _Trial(list(modes), bootstrap, wd, time.time() + timeout_s, on_stage or (lambda _s: None),
                   {"process_ms": process_ms, "max_poll_records": max_poll_records,
                    "auto_commit_interval_ms": auto_commit_interval_ms, "kill_after_s": kill_after_s,
                    "max_seconds": timeout_s})
    try:
        trial.prepare(topic, n_messages, partitions)
        trial.run1()
        trial.kill(kill_coordinator, kill_after_s)
        trial.watch(commits_after)
        trial.run2()
        return trial.report()
    finally:
        trial.stop_all()
        if own:
            shutil.rmtree(wd, ignore_errors=True)


class _Trial:
    """One :func:`run_failover` call, step by step (the parent process's side)."""

    def __init__(self, modes: list[str], bootstrap: str, wd: Path, deadline: float,
                 stage: Callable[[str], None], settings: dict[str, Any]) -> None:
        self.modes, self.bootstrap, self.wd, self.deadline = modes, bootstrap, wd, deadline
        self.stage, self.settings, self.t0 = stage, settings, time.time()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.found: dict[str, Any] = {}

    def prepare(self, topic: str | None, n_messages: int, partitions: int) -> None:
        """Check the cluster, pick the groups (one node coordinates all), the topic, the witness."""
        from .topics import admin_client

        with admin_client(self.bootstrap) as admin:
            brokers = [b for b in admin.describe_cluster()["brokers"] if not b.get("is_fenced")]
            if len(brokers) < 3:
                raise FailoverError(f"the cluster at {self.bootstrap} has {len(brokers)} live broker(s); "
                                    "killing a coordinator needs 3 (start the course's cluster)")
            layout = _ensure_offsets_topic(admin)
            self.stage("choosing groups that share one coordinator")
            self.node, self.groups = pick_groups([*self.modes, "witness"],
                                                 {p: v["leader"] for p, v in layout.items()})
            self.before = {label: placement(admin, g) for label, g in self.groups.items()}
        short = [f"{b['offsets_partition']} (isr {b['isr']})" for b in self.before.values()
                 if b["isr"] != b["replicas"]]
        if short:
            raise FailoverError("__consumer_offsets partition(s) " + ", ".join(short) + " are not "
                                "fully in sync: a node is down or catching up; wait_in_sync() first")
        if topic is None:
            self.stage(f"creating a topic (replication factor 3) and seeding {n_messages} records")
            topic = make_topic(self.bootstrap, n_messages, partitions)
        self.topic = topic
        self.ends = _ends(self.bootstrap, topic)
        from .inspection import offsets_topic_snapshot

        self.snapshot = offsets_topic_snapshot(self.bootstrap)  # read only the commits written from now on
        self.witness_acked = _witness_commit(self.bootstrap, self.groups["witness"], topic, len(self.ends))

    def _cfg(self, mode: str, run: int) -> dict[str, Any]:
        s = self.settings
        return {"mode": mode, "run": run, "topic": self.topic, "group_id": self.groups[mode],
                "bootstrap": self.bootstrap, "end_offsets": {str(p): e for p, e in self.ends.items()},
                "max_poll_records": s["max_poll_records"] if run == 1 else 500,
                "auto_commit_interval_ms": s["auto_commit_interval_ms"],
                "process_ms": s["process_ms"] if run == 1 else 0.0, "max_seconds": s["max_seconds"],
                "idle_s": 10.0 if run == 2 else None, "stop_when_drained": run == 2,
                **{k: str(self.wd / f"{mode}.{k}.jsonl")
                   for k in ("ledger", "commits", "callbacks", "events")}}

    def run1(self) -> None:
        """Start one consumer per mode; return once each had a commit acknowledged."""
        self.stage("run 1: one consumer per mode starts and commits")
        self.procs = {m: _start(self._cfg(m, 1), self.wd) for m in self.modes}
        _wait_until(lambda: all(any(c.get("outcome") == "success" for c in _read(self.wd, m, "commits"))
                                for m in self.modes), self.deadline, self.procs, self.wd,
                    "a first acknowledged commit")

    def kill(self, kill_coordinator: Callable[[str], int], kill_after_s: float) -> None:
        """Wait ``kill_after_s``, kill the coordinator, start reading the offsets it kept."""
        time.sleep(kill_after_s)  # the experiment's schedule: when to kill
        self.kill_start = time.time()
        self.stage(f"SIGKILL the coordinator (node {self.node})")
        self.killed = int(kill_coordinator(self.groups[self.modes[0]]))
        self.kill_wall = time.time()
        self.reader = threading.Thread(target=_read_after, daemon=True, args=(
            self.bootstrap, {**{m: self.groups[m] for m in self.modes}, "witness": self.groups["witness"]},
            self.topic, self.found, max(5.0, self.deadline - time.time())))
        self.reader.start()

    def watch(self, commits_after: int) -> None:
        """SIGTERM each run-1 consumer once ``commits_after`` commits succeeded after the kill."""
        self.stage("failover: waiting for each mode's commits to succeed again")
        stopped: set[str] = set()
        while len(stopped) < len(self.modes):
            for m in self.modes:
                ok = [c for c in _read(self.wd, m, "commits") if c.get("outcome") == "success"
                      and float(c["wall"]) > self.kill_wall and c.get("node") != self.killed]
                if m not in stopped and (len(ok) >= commits_after or self.procs[m].poll() is not None):
                    self.procs[m].send_signal(signal.SIGTERM)
                    stopped.add(m)
            if time.time() > self.deadline:
                late = sorted(set(self.modes) - stopped)
                raise TimeoutError(f"commits did not succeed again within {self.settings['max_seconds']:.0f} "
                                   f"s of the trial's start in {late}")
            time.sleep(_TICK_S)
        _wait_exit(self.procs, self.deadline, self.wd, 1)
        self.reader.join(max(0.1, self.deadline - time.time()))

    def run2(self) -> None:
        """Where the coordinators are now; a fresh consumer per mode drains the topic."""
        from .topics import admin_client

        self.in_log = {label: _commit_log(self.bootstrap, g, self.topic, self.snapshot)
                       for label, g in self.groups.items()}
        with admin_client(self.bootstrap) as admin:
            self.after = {label: placement(admin, g) for label, g in self.groups.items()}
            self.stopped_at = {m: _committed(admin, self.groups[m], self.topic) for m in self.modes}
            self.stage("run 2: a fresh consumer per mode drains the topic")
            self.procs = {m: _start(self._cfg(m, 2), self.wd) for m in self.modes}
            _wait_exit(self.procs, self.deadline, self.wd, 2)
            self.final = {m: _committed(admin, self.groups[m], self.topic) for m in self.modes}

    def report(self) -> FailoverReport:
        self.stage("counting")
        offsets = {p: (0, e) for p, e in self.ends.items()}
        results = {m: _mode_result(m, self.wd, self.groups[m], self.before[m], self.after[m], offsets,
                                   self.kill_start, self.kill_wall, self.killed, self.found.get(m),
                                   self.stopped_at[m], self.final[m], self.t0, self.in_log[m])
                   for m in self.modes}
        got = self.found.get("witness") or {}
        errors = self.found.get("errors") or []
        witness = {"group": self.groups["witness"],
                   "offsets_partition": self.before["witness"]["offsets_partition"],
                   "acked_before": self.witness_acked,
                   "found_after": got.get("offsets"), "found_after_s": got.get("after_s"),
                   "went_backwards": went_backwards(got.get("offsets") or {}, self.witness_acked),
                   **_admin_read(got, self.witness_acked),
                   "acked_not_in_log": not_in_log(self.witness_acked, self.in_log["witness"]),
                   "coordinator_before": self.before["witness"]["leader"],
                   "coordinator_after": self.after["witness"]["leader"],
                   "reader_errors": len(errors), "reader_first_errors": errors[:5]}
        settings = {k: v for k, v in self.settings.items() if k != "max_seconds"}
        return FailoverReport(self.killed, self.kill_wall - self.t0, self.t0, self.topic,
                              sum(self.ends.values()), results, witness,
                              {"expected_node": self.node, **settings, "partitions": len(self.ends)})

    def stop_all(self) -> None:
        """Leave no worker behind (an exception, a timeout, KeyboardInterrupt)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _commit_log(bootstrap: str, group: str, topic: str, since: dict[int, int]) -> set[tuple[int, int]]:
    """Every (partition, offset) ``group`` committed for ``topic``, as the ``__consumer_offsets``
    log holds it now (read from the partitions' current leaders)."""
    from .inspection import commit_records

    return {(int(r["committed_partition"]), int(r["committed_offset"]))
            for r in commit_records(group, bootstrap, topic=topic, since=since)
            if r.get("kind") == "offset_commit" and r.get("committed_offset") is not None}


def _ends(bootstrap: str, topic: str) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             bootstrap_timeout_ms=10_000)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        got = consumer.end_offsets([TopicPartition(topic, p) for p in sorted(parts)])
        return {tp.partition: int(off) for tp, off in sorted(got.items())}
    finally:
        consumer.close(autocommit=False)


def _wait_until(ready: Callable[[], bool], deadline: float, procs: Mapping[str, subprocess.Popen[bytes]],
                workdir: Path, what: str) -> None:
    while not ready():
        for mode, proc in procs.items():
            if proc.poll() is not None:
                raise FailoverError(f"the {mode} consumer exited (code {proc.returncode}) before "
                                    f"{what}; stderr:\n{_tail(workdir / f'{mode}-run1.stderr')}")
        if time.time() > deadline:
            raise TimeoutError(f"no {what} in every mode in time")
        time.sleep(_TICK_S)


def _read_after(bootstrap: str, groups: Mapping[str, str], topic: str, out: dict[str, Any],
                timeout_s: float) -> None:
    """Read each group's committed offsets once the new coordinator answers (a thread), two ways
    at the same moment: a stable read (``require_stable``, what a ``read_committed`` consumer's
    ``committed()`` sends) and the admin client's ordinary read (``require_stable`` false, as
    ``list_group_offsets`` and ``kafka-consumer-groups.sh`` send it).

    Each attempt uses fresh clients and is given a few seconds: right after a SIGKILL,
    kafka-python 3.0.12's admin client sometimes waits on the dead node for good.
    """
    t, end = time.time(), time.time() + timeout_s
    for label, group in groups.items():
        while label not in out and time.time() < end:
            got: dict[str, dict[str, Any]] = {"stable": {}, "admin": {}}
            attempts = [threading.Thread(target=_read_once, args=(bootstrap, group, topic, got[how], how),
                                         daemon=True) for how in got]
            for a in attempts:
                a.start()
            for a in attempts:
                a.join(8.0)
            if all("offsets" in g for g in got.values()):
                out[label] = {"offsets": got["stable"]["offsets"], "offsets_admin": got["admin"]["offsets"],
                              "after_s": round(time.time() - t, 3)}
            else:
                out.setdefault("errors", []).extend(
                    f"{label} ({how}): {g.get('error', 'no answer in 8 s')}" for how, g in got.items()
                    if "offsets" not in g)
                time.sleep(0.25)


def _read_once(bootstrap: str, group: str, topic: str, out: dict[str, Any], how: str = "admin") -> None:
    """``out["offsets"] = {partition: offset}`` committed by ``group`` on ``topic``, read by the
    admin client (``how="admin"``) or by a ``read_committed`` consumer (``how="stable"``)."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    from .groups import committed_offsets

    try:
        if how == "stable":
            consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                     isolation_level="read_committed", client_id="failover-reader",
                                     bootstrap_timeout_ms=5000, request_timeout_ms=5000)
            try:
                parts = sorted(consumer.partitions_for_topic(topic) or ())
                offs = {p: consumer.committed(TopicPartition(topic, p), timeout_ms=5000) for p in parts}
            finally:
                consumer.close(autocommit=False)
            out["offsets"] = {p: int(o) for p, o in offs.items() if o is not None and o >= 0}
            return
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="failover-reader",
                                 bootstrap_timeout_ms=5000, request_timeout_ms=5000)
        try:
            out["offsets"] = committed_offsets(admin, group, topic)
        finally:
            admin.close()
    except Exception as exc:  # retriable or not: the caller tries again until its deadline
        out["error"] = f"{type(exc).__name__}: {str(exc)[:120]}"


def _admin_read(found: Mapping[str, Any], acked: Mapping[Any, int]) -> dict[str, Any]:
    """The admin client's read after the failover, and where it trailed what was acknowledged."""
    admin = found.get("offsets_admin") or {}
    return {"found_after_admin": admin, "admin_read_behind": went_backwards(admin, acked)}


def _found_after(events: list[dict[str, Any]], t: float, dead: int) -> float | None:
    """Seconds from ``t`` until the consumer discovered a coordinator other than ``dead``."""
    found = [float(e["wall"]) for e in events if e.get("kind") == "found" and float(e["wall"]) > t
             and e.get("node") is not None and e.get("node") != dead]
    return round(min(found) - t, 3) if found else None


def _mode_result(mode: str, wd: Path, group: str, before: dict[str, Any], after: dict[str, Any],
                 offsets: dict[int, tuple[int, int]], kill_start: float, kill_wall: float,
                 killed: int, found: dict[str, Any] | None, stopped_at: dict[int, int],
                 final: dict[int, int], t0: float, in_log: set[tuple[int, int]]) -> dict[str, Any]:
    from .crashlab.plan import tally_ledger

    commits, callbacks = _read(wd, mode, "commits"), _read(wd, mode, "callbacks")
    events, ledger = _read(wd, mode, "events"), _read(wd, mode, "ledger")
    run1 = [c for c in commits if c.get("run") == 1]
    first = first_success_after(run1, kill_wall, killed)
    t_first = float(first["wall"]) if first else float("inf")
    during = [c for c in run1 if kill_wall <= float(c["wall"]) <= t_first]
    cbs = [{**c, "call": "callback"} for c in callbacks if c.get("run") == 1
           and kill_wall <= float(c["wall"]) <= t_first + 1.0]
    acked = acked_before(run1, kill_start)
    before_kill = [c for c in run1 if c.get("outcome") == "success" and float(c["wall"]) < kill_start]
    got = (found or {}).get("offsets") or {}
    tally, tally1 = tally_ledger(ledger, offsets), tally_ledger([e for e in ledger if e["run"] == 1], offsets)
    lat = [float(c["latency_ms"]) / 1000 for c in run1 if c.get("latency_ms") is not None
           and c.get("mode") in ("sync", "auto-sync")]
    status = read_rows(wd / f"{mode}-run1.stdout")

    def rel(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
        return [{**r, key: round(float(r[key]) - t0, 4)} for r in rows]

    return {
        "group": group, "offsets_partition": before["offsets_partition"],
        "coordinator_before": before["leader"], "coordinator_after": after["leader"],
        "isr_after": after["isr"],
        "kill_to_new_coordinator_s": _found_after(events, kill_wall, killed),
        "kill_to_first_commit_s": round(t_first - kill_wall, 3) if first else None,
        "first_commit_node": first.get("node") if first else None,
        "generation_before": before_kill[-1].get("generation") if before_kill else None,
        "generation_after": first.get("generation") if first else None,
        "longest_commit_call_s": round(max(lat), 3) if lat else None,
        "longest_pause_s": longest_pause(ledger, kill_wall),
        "acked_before": acked, "found_after": got, "found_after_s": (found or {}).get("after_s"),
        "went_backwards": went_backwards(got, acked),
        **_admin_read(found or {}, acked),
        "acked_not_in_log": not_in_log(acked, in_log),
        "committed_at_stop": stopped_at, "final_committed": final,
        "processed": tally["processed"], "duplicates": tally["duplicates"],
        "duplicates_run1": tally1["duplicates"], "lost": tally["lost"],
        "failover_results": result_counts(during) + result_counts(cbs, call="call"),
        "dead_marks": dead_marks(events, kill_wall, t_first),
        "run1_stopped": status[-1].get("reason") if status else None,
        "run1_error": status[-1].get("error") if status else None,
        "commits": rel(commits, "wall"), "callbacks": rel(callbacks, "wall"),
        "ledger": rel(ledger, "t"), "events": rel([e for e in events if e.get("kind") == "found"
                                                   or kill_wall <= float(e["wall"]) <= t_first], "wall"),
    }
