"""Consumer groups on the broker: members join, leave and crash; count what rebalances replay (notebook 10).

:func:`run_group` starts each member of one group in its **own process**
(:mod:`helpers.rebalance_worker`, which follows the loop contract of :mod:`helpers.runner`),
then starts, stops (SIGTERM: the loop ends, commits as its mode does, and ``close()``
leaves the group at once) or kills (SIGKILL: the broker notices after
``session_timeout_ms``) members as a list of :class:`GroupStep` says, and waits until every
record was processed. Each member appends one ledger line per record (member, partition,
offset, time) and one line per call of its ``ConsumerRebalanceListener``; the
:class:`GroupReport` reads them back:

* who owned which partition when (:meth:`GroupReport.ownership`) and what each processed;
* what was processed twice, and which step replayed it (:meth:`GroupReport.replays`,
  counted with :func:`helpers.crashlab.tally_ledger`, as the crash lab counts);
* how long each member stopped processing around a step (:meth:`GroupReport.pauses`).

:func:`loop_commit_every` is a loop that commits every ``COMMIT_EVERY`` records (and not on
a clean stop): the loop a rebalance listener has to rescue. :func:`grade_listener` runs
your listener in a group and grades it on the replay.
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
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kafka.structs import OffsetAndMetadata

from .jsonl import read_rows as _read_jsonl

__all__ = [
    "ACTIONS",
    "COMMIT_EVERY",
    "GroupReport",
    "GroupStep",
    "grade_listener",
    "in_background",
    "loop_commit_every",
    "rebalance_pauses",
    "rebalance_replays",
    "run_group",
    "steps",
]

_ROOT = Path(__file__).resolve().parent.parent
_TICK_S = 0.01  # how often the parent looks at its members
#: What a :class:`GroupStep` can do to a member.
ACTIONS = ("start", "stop", "kill")
#: How many records :func:`loop_commit_every` processes between two commits.
COMMIT_EVERY = 100


# ---------------------------------------------------------------------------- a loop to rescue

def loop_commit_every(consumer: Any, process: Any, running: Any) -> None:
    """Commit what was processed every ``COMMIT_EVERY`` records, nothing on the way out (notebook 10).

    Fewer commits than ``sync`` (one per batch): cheaper, but a rebalance hands the
    partitions over with up to ``COMMIT_EVERY - 1`` processed records not committed, and
    the new owner reads them again. A rebalance listener that commits on revoke (and
    ``close()`` calls it too) closes that gap.
    """
    done: dict[Any, int] = {}  # TopicPartition -> next offset to read
    count = 0
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            for tp, records in batch.items():
                for record in records:
                    process(record)
                    done[tp] = record.offset + 1
                    count += 1
                    if count % COMMIT_EVERY == 0:
                        consumer.commit({t: OffsetAndMetadata(o, "", -1) for t, o in done.items()})
                        done.clear()
    finally:
        consumer.close()


# ---------------------------------------------------------------------------- the plan

@dataclass(frozen=True)
class GroupStep:
    """One thing that happens to one member (notebook 10).

    ``action``: ``start`` (a new process joins the group as ``member``), ``stop``
    (SIGTERM: a graceful leave) or ``kill`` (SIGKILL: a crash). ``after_s``: seconds to
    wait after the previous step took effect, or, for the first step after the members
    that start together, after every one of them processed a record. A start takes
    effect when the new member got its first assignment; a stop or a kill when another
    member got an assignment after it (for a kill: once the broker expired the dead
    member's session), or at once if nobody is left. ``wait=False``: the next step does
    not wait for this one to take effect. The ``start`` steps at the head of a plan with
    ``after_s=0`` start together, at once.
    """

    member: str
    action: str
    after_s: float = 0.0
    wait: bool = True  # the next step waits for this one to take effect (False: only after_s)

    def validate(self) -> GroupStep:
        if self.action not in ACTIONS:
            raise ValueError(f"GroupStep.action must be one of {ACTIONS}, not {self.action!r}")
        if not isinstance(self.member, str) or not self.member:
            raise ValueError(f"GroupStep.member must be a name such as 'm1', not {self.member!r}")
        if isinstance(self.after_s, bool) or not isinstance(self.after_s, (int, float)) \
                or self.after_s < 0:
            raise ValueError(f"GroupStep.after_s must be a number of seconds >= 0, not {self.after_s!r}")
        return self

    def label(self) -> str:
        """``m3 joins``, ``m2 leaves (SIGTERM)``, ``m2 crashes (SIGKILL)``."""
        return {"start": f"{self.member} joins", "stop": f"{self.member} leaves (SIGTERM)",
                "kill": f"{self.member} crashes (SIGKILL)"}[self.action]


def steps(*items: GroupStep | tuple[Any, ...]) -> list[GroupStep]:
    """Steps from ``GroupStep`` objects or ``(member, action, after_s)`` tuples, checked (notebook 10).

    Steps happen in the order given. Each member must be started before it is stopped
    or killed, and cannot be started twice while it runs (a restart is ``kill`` or
    ``stop`` first, then ``start``).
    """
    out = [s if isinstance(s, GroupStep) else GroupStep(*s) for s in items]
    for s in out:
        s.validate()
    if not out or out[0].action != "start" or out[0].after_s != 0:
        raise ValueError("a plan begins with ('m1', 'start', 0): the group needs someone to begin with")
    running: set[str] = set()
    for s in out:
        if s.action == "start":
            if s.member in running:
                raise ValueError(f"{s.member} is started twice; stop or kill it before starting it again")
            running.add(s.member)
        elif s.member not in running:
            raise ValueError(f"{s.label()}, but {s.member} is not running then")
        else:
            running.discard(s.member)
    return out


def _initial_count(plan: Sequence[GroupStep]) -> int:
    """How many steps at the head of ``plan`` start members together."""
    n = 0
    for s in plan:
        if s.action != "start" or s.after_s != 0:
            break
        n += 1
    return n


# ---------------------------------------------------------------------------- the report

@dataclass
class GroupReport:
    """What one :func:`run_group` did (notebook 10). Times are seconds since it began."""

    mode: str
    client: str
    assignor: str
    topic: str
    group_id: str
    n_messages: int
    partitions: int
    processed: int
    duplicates: int
    lost: int
    duplicate_ranges: dict[int, list[tuple[int, int]]]
    lost_ranges: dict[int, list[tuple[int, int]]]
    steps: list[dict[str, Any]]  # member, action, label, after_s (planned), initial, pid, t (done)
    ready_t: float  # when every initial member had processed a record
    drain_t: float  # when the members stopped simulating work to read the rest at full speed
    end_t: float  # when every record was processed: the members left got SIGTERM
    seconds: float
    ledger: list[dict[str, Any]] = field(repr=False)  # member, pid, partition, offset, t
    events: list[dict[str, Any]] = field(repr=False)  # member, pid, event, partitions, generation, t
    settings: dict[str, Any] = field(default_factory=dict)

    # -- what happened

    def members(self) -> list[str]:
        """Member names in the order they started."""
        return list(dict.fromkeys(s["member"] for s in self.steps if s["action"] == "start"))

    def ownership(self) -> list[dict[str, Any]]:
        """Who owned which partition when: ``member, pid, partition, start, end, how_ended``.

        From each member's listener calls (assigned / revoked / lost), ended by its stop
        or crash. A killed member's partitions end at the kill: the process is gone,
        though the broker counts them as its own until ``session_timeout_ms``.
        """
        out: list[dict[str, Any]] = []
        owned: dict[tuple[str, int], dict[int, float]] = {}  # (member, pid) -> partition -> since
        ends = {(s["member"], s.get("pid")): (s["t"], s["action"]) for s in self.steps
                if s["action"] != "start" and s.get("t") is not None}
        for e in sorted(self.events, key=lambda e: e["t"]):
            key = (e["member"], e["pid"])
            mine = owned.setdefault(key, {})
            if e["event"] == "assigned":
                for p in e["partitions"]:
                    mine.setdefault(p, e["t"])
            elif e["event"] in ("revoked", "lost"):
                for p in e["partitions"]:
                    if p in mine:
                        out.append({"member": e["member"], "pid": e["pid"], "partition": p,
                                    "start": mine.pop(p), "end": e["t"], "how_ended": e["event"]})
        for (member, pid), mine in owned.items():
            t_end, how = ends.get((member, pid), (self.seconds, "end"))
            for p, since in mine.items():
                out.append({"member": member, "pid": pid, "partition": p, "start": since,
                            "end": max(t_end, since), "how_ended": how})
        return sorted(out, key=lambda r: (r["partition"], r["start"]))

    def step_time(self, step: dict[str, Any]) -> float:
        """When a step took effect: a start when the new process was ready to join, else the signal."""
        if step["action"] == "start":
            started = [e["t"] for e in self.events if e["event"] == "started"
                       and e["pid"] == step.get("pid")]
            if started:
                return float(started[0])
        return float(step["t"])

    def replays(self) -> list[dict[str, Any]]:
        """Records processed again, per step: each extra processing counts for the last
        step before it (``start``: the group forming)."""
        order = [s for s in self.steps if not s.get("initial")]
        times = [(self.step_time(s), s["label"]) for s in order]
        counts = {label: 0 for _, label in times}
        counts["start"] = 0
        seen: set[tuple[int, int]] = set()
        for e in sorted(self.ledger, key=lambda e: e["t"]):
            key = (int(e["partition"]), int(e["offset"]))
            if key in seen:
                label = "start"
                for t, lab in times:
                    if t <= e["t"]:
                        label = lab
                counts[label] += 1
            seen.add(key)
        return [{"step": k, "duplicates": v} for k, v in counts.items()]

    def replayed_after(self, label: str) -> int:
        """Records processed again after the step called ``label`` (see :meth:`replays`)."""
        for r in self.replays():
            if r["step"] == label:
                return int(r["duplicates"])
        raise KeyError(f"no step {label!r}; steps: {[r['step'] for r in self.replays()]}")

    def pauses(self, label: str, *, window_s: float = 12.0,
               threshold_s: float = 0.1) -> dict[str, dict[str, float]]:
        """How long each member stopped processing around the step ``label`` (notebook 10).

        For every member that was running from before the step until the group settled
        (the last assignment within ``window_s`` after the step, the next step and the end
        of the run, whichever comes first): ``longest_s``, the
        longest time between two records it processed across that stretch, and
        ``stopped_s``, the sum of all such gaps longer than ``threshold_s``.
        """
        step = next((s for s in self.steps if s["label"] == label), None)
        if step is None:
            raise KeyError(f"no step {label!r}; steps: {[s['label'] for s in self.steps]}")
        t0 = self.step_time(step)
        later = [self.step_time(s) for s in self.steps if not s.get("initial") and self.step_time(s) > t0]
        # the end of the run ends the window too: members that leave then trigger a last
        # rebalance, after their last record, which is no part of the step's pause
        until = min([t0 + window_s, self.end_t, *later])
        moves = [e["t"] for e in self.events if e["event"] == "assigned" and e["partitions"]
                 and t0 <= e["t"] <= until]
        settle = max(moves, default=t0)
        out: dict[str, dict[str, float]] = {}
        for member in self.members():
            times = sorted(e["t"] for e in self.ledger if e["member"] == member)
            if not times or times[0] > t0 or times[-1] < settle or member == step["member"]:
                continue
            gaps = [b - a for a, b in zip(times, times[1:], strict=False) if b >= t0 and a <= settle]
            if gaps:
                out[member] = {"longest_s": round(max(gaps), 3),
                               "stopped_s": round(sum(g for g in gaps if g > threshold_s), 3)}
        return out

    def handover(self, label: str) -> dict[int, float | None]:
        """After a stop or a kill: per partition the member held, the seconds until another
        process (another member, or the same one restarted) was assigned it (``None``:
        nobody was before the run ended)."""
        step = next((s for s in self.steps if s["label"] == label), None)
        if step is None or step["action"] == "start":
            raise KeyError(f"no stop or kill step {label!r}; steps: {[s['label'] for s in self.steps]}")
        t0 = self.step_time(step)
        owned = self.ownership()
        held = {o["partition"] for o in owned if o["pid"] == step["pid"]
                and o["start"] <= t0 and o["end"] >= t0 - 0.001}
        out: dict[int, float | None] = {}
        for p in sorted(held):
            later = [o["start"] for o in owned if o["partition"] == p and o["start"] > t0
                     and o["pid"] != step["pid"]]
            out[p] = round(min(later) - t0, 3) if later else None
        return out

    def kept_through(self, member: str, label: str) -> list[int]:
        """The partitions ``member`` held when the step ``label`` happened and was never asked
        to give up (revoked or lost) until the group settled: for a join, until the new
        member's first assignment with partitions; otherwise until the next step."""
        step = next((s for s in self.steps if s["label"] == label), None)
        if step is None:
            raise KeyError(f"no step {label!r}; steps: {[s['label'] for s in self.steps]}")
        t0 = self.step_time(step)
        ends = [e["t"] for e in self.events if e["pid"] == step.get("pid") and e["event"] == "assigned"
                and e["partitions"]] if step["action"] == "start" else []
        later = [self.step_time(s) for s in self.steps if not s.get("initial") and self.step_time(s) > t0]
        until = min(ends) if ends else min(later, default=self.end_t)
        held = {o["partition"] for o in self.ownership() if o["member"] == member
                and o["start"] <= t0 <= o["end"]}
        gone = {p for e in self.events if e["member"] == member and t0 <= e["t"] <= until
                and e["event"] in ("revoked", "lost") for p in e["partitions"]}
        return sorted(held - gone)

    def generations(self) -> dict[str, list[int]]:
        """The generations each member saw, in order (from its ``assigned`` calls)."""
        out: dict[str, list[int]] = {}
        for e in sorted(self.events, key=lambda e: e["t"]):
            if e["event"] == "assigned" and e.get("generation") is not None:
                gens = out.setdefault(e["member"], [])
                if not gens or gens[-1] != e["generation"]:
                    gens.append(int(e["generation"]))
        return out

    def listener_calls(self, member: str, after: float = 0.0) -> list[dict[str, Any]]:
        """One member's listener calls after time ``after`` (event, partitions, generation, t, pid)."""
        return [{k: e.get(k) for k in ("event", "partitions", "generation", "t", "pid")}
                for e in self.events if e["member"] == member and e["t"] >= after
                and e["event"] in ("assigned", "revoked", "lost", "listener_error")]

    def summary(self) -> dict[str, Any]:
        """The headline numbers, JSON-ready."""
        return {"mode": self.mode, "client": self.client, "assignor": self.assignor,
                "members": self.members(), "steps": [s["label"] for s in self.steps if not s.get("initial")],
                "n_messages": self.n_messages, "processed": self.processed,
                "duplicates": self.duplicates, "lost": self.lost,
                "replays": {r["step"]: r["duplicates"] for r in self.replays()},
                "seconds": round(self.seconds, 2)}

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
                       f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
                       for k, v in self.summary().items())
        return f"<table>{rows}</table>"


# ---------------------------------------------------------------------------- running a group

@dataclass
class _Member:
    name: str
    proc: subprocess.Popen[bytes]
    err_path: Path


def _tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no stderr)"


def run_group(
    mode: str = "sync",
    plan: Sequence[GroupStep | tuple[Any, ...]] | None = None,
    *,
    n_messages: int = 1200,
    partitions: int = 3,
    topic: str | None = None,
    group_id: str | None = None,
    assignor: str = "range",
    client: str = "kafka-python",
    group_protocol: str = "consumer",
    confluent_settings: dict[str, Any] | None = None,
    loop: Any = None,
    listener: Any = None,
    static: bool = False,
    process_ms: float = 3.0,
    max_poll_records: int = 20,
    session_timeout_ms: int = 6000,
    heartbeat_interval_ms: int = 300,
    auto_commit_interval_ms: int = 1000,
    max_poll_interval_ms: int | None = None,
    max_partition_fetch_bytes: int = 4096,
    tail_s: float = 0.5,
    timeout_s: float = 30.0,
    workdir: str | Path | None = None,
    bootstrap: str | None = None,
) -> GroupReport:
    """Run one consumer group whose members start, leave and crash as ``plan`` says (notebook 10).

    ``plan``: :class:`GroupStep` objects or ``(member, action, after_s)`` tuples (default: m1
    and m2 from the start, m3 joins 1 s after both processed a record). Every member runs
    commit ``mode``'s loop (or
    ``loop``: ``"module:function"``) with ``assignor`` (``range``, ``roundrobin``,
    ``sticky``, ``cooperative-sticky``), ``session_timeout_ms`` (6000, the broker's
    minimum, instead of 45 s) and ``heartbeat_interval_ms`` (300 instead of 3000, so a
    member hears of a rebalance within 0.3 s). ``static=True`` gives each member a
    ``group_instance_id`` (its name). ``listener``: ``"module:factory"``, called as
    ``factory(consumer, processed)`` in each member. ``client="confluent"`` runs
    confluent-kafka members instead, speaking ``group_protocol`` (``consumer``: KIP-848),
    with ``confluent_settings`` added to their configuration.
    ``topic=None`` creates and seeds a topic. ``tail_s`` after the last step took
    effect, the members stop simulating ``process_ms`` of work per record and read the
    rest at full speed (``drain_t``); once every record was processed the members still
    running get SIGTERM. Raises ``TimeoutError`` after ``timeout_s`` (all members killed).
    """
    from .crashlab.plan import tally_ledger
    from .crashlab.trial import _topic_offsets
    from .modes import get_mode
    from .runner import loop_ref
    from .topics import admin_client, create_topic, seed_messages, unique_name

    get_mode(mode)
    if client not in ("kafka-python", "confluent"):
        raise ValueError(f"client must be 'kafka-python' or 'confluent', not {client!r}")
    if client == "confluent" and (listener is not None or loop is not None):
        raise ValueError("confluent members run their own sync loop; "
                         "loop= and listener= are for kafka-python")
    from .rebalance_worker import ASSIGNORS
    if assignor not in ASSIGNORS:
        raise ValueError(f"unknown assignor {assignor!r}; choose one of {', '.join(ASSIGNORS)}")
    for name, value in (("n_messages", n_messages), ("partitions", partitions),
                        ("max_poll_records", max_poll_records)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")
    todo = steps(*(plan or [("m1", "start", 0), ("m2", "start", 0), ("m3", "start", 1.0)]))
    loop_r = None if loop is None else loop_ref(loop)
    listener_r = None if listener is None else loop_ref(listener)
    from .broker import ensure_broker

    bootstrap = bootstrap or ensure_broker().bootstrap
    group_id = group_id or unique_name(f"nb10-{mode}")
    if topic is None:
        topic = create_topic(unique_name("nb10-group"), partitions, bootstrap=bootstrap)
        seed_messages(topic, n_messages, bootstrap=bootstrap, progress=False)
    with admin_client(bootstrap) as admin:
        offsets = _topic_offsets(admin, topic)
    held = sum(end - first for first, end in offsets.values())
    if held != n_messages:
        raise ValueError(f"topic {topic!r} holds {held} messages, not n_messages={n_messages}")
    own_dir = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="nb10-group-")) if own_dir else Path(str(workdir))
    wd.mkdir(parents=True, exist_ok=True)
    ledger_path, events_path, fast_flag = wd / "ledger.jsonl", wd / "events.jsonl", wd / "drain"
    for f in (ledger_path, events_path, fast_flag):
        f.unlink(missing_ok=True)
    settings: dict[str, Any] = {"max_poll_records": max_poll_records,
                                "session_timeout_ms": session_timeout_ms,
                                "heartbeat_interval_ms": heartbeat_interval_ms,
                                # small fetches: a member works through its partitions side by side
                                # (kafka-python's default fetches up to 1 MB of one partition at once)
                                "max_partition_fetch_bytes": max_partition_fetch_bytes}
    if get_mode(mode).settings.get("enable_auto_commit"):
        settings["auto_commit_interval_ms"] = auto_commit_interval_ms
    if max_poll_interval_ms is not None:
        settings["max_poll_interval_ms"] = max_poll_interval_ms
    base = {"mode": mode, "topic": topic, "group_id": group_id, "bootstrap": bootstrap,
            "assignor": assignor, "client": client, "group_protocol": group_protocol,
            "loop": loop_r, "listener": listener_r, "process_ms": process_ms,
            "confluent_settings": dict(confluent_settings or {}),
            "ledger": str(ledger_path), "events": str(events_path), "drain_flag": str(fast_flag),
            "max_seconds": timeout_s}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (os.getcwd(), os.environ.get("PYTHONPATH", "")) if p)}

    running: dict[str, _Member] = {}
    done_steps: list[dict[str, Any]] = []
    t0 = time.time()
    deadline = t0 + timeout_s
    seen: set[tuple[int, int]] = set()
    first_by: set[str] = set()
    ready_at: float | None = None

    def start(step: GroupStep) -> dict[str, Any]:
        n = sum(1 for d in done_steps if d["member"] == step.member and d["action"] == "start")
        cfg = {**base, "member": step.member,
               "settings": {**settings, **({"group_instance_id": f"{group_id}-{step.member}"}
                                          if static else {})}}
        cfg_path = wd / f"{step.member}-{n}.json"
        cfg_path.write_text(json.dumps(cfg))
        err_path = wd / f"{step.member}-{n}.stderr"
        with open(err_path, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "helpers.rebalance_worker", str(cfg_path)],
                                    stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                                    cwd=_ROOT, env=env)
        running[step.member] = _Member(step.member, proc, err_path)
        return {"pid": proc.pid}

    def act(step: GroupStep, initial: bool) -> None:
        info: dict[str, Any] = {}
        if step.action == "start":
            info = start(step)
        else:
            m = running.pop(step.member)
            info = {"pid": m.proc.pid}
            if step.action == "kill":
                m.proc.kill()
                m.proc.wait()
            else:
                m.proc.send_signal(signal.SIGTERM)
                finishing.append(m)
        label = step.label()
        if step.action == "start" and any(d["member"] == step.member for d in done_steps):
            label = f"{step.member} restarts"
        done_steps.append({"member": step.member, "action": step.action, "label": label,
                           "after_s": step.after_s, "initial": initial, "t": time.time(), **info})

    class _Tail:
        """New JSON lines of a file the members append to."""

        def __init__(self, path: Path) -> None:
            self.path, self.pos = path, 0

        def read(self) -> list[dict[str, Any]]:
            if not self.path.exists():
                return []
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                chunk = f.read()
            end = chunk.rfind(b"\n") + 1
            self.pos += end
            rows = []
            for line in chunk[:end].splitlines():
                with contextlib.suppress(ValueError):
                    rows.append(json.loads(line))
            return rows

    ledger_tail, events_tail = _Tail(ledger_path), _Tail(events_path)
    assigned: list[tuple[int, float]] = []  # (pid, wall time) of every assignment

    def took_effect(step: dict[str, Any], step_wait: bool) -> bool:
        if not step_wait:
            return True
        if step["action"] == "start":  # its first assignment (or a record: KIP-848 may skip the empty one)
            return any(pid == step["pid"] for pid, _ in assigned) or step["member"] in first_by
        if step["action"] == "stop" and any(m.proc.poll() is None for m in finishing
                                            if m.proc.pid == step["pid"]):
            return False
        alive = {m.proc.pid for m in running.values()}
        return not alive or any(pid in alive and t > step["t"] for pid, t in assigned)

    finishing: list[_Member] = []
    n_initial = _initial_count(todo)
    for s in todo[:n_initial]:
        act(s, True)
    pending = list(todo[n_initial:])
    last_wait = True
    initial = {s.member for s in todo[:n_initial]}
    effect_at: float | None = None  # when the last step took effect (the group was ready: the first)
    drain_at: float | None = None
    try:
        while True:
            now = time.time()
            if now > deadline:
                raise TimeoutError(
                    f"the group did not finish within timeout_s={timeout_s}: {len(seen)} of "
                    f"{n_messages} records processed, steps left: {[s.label() for s in pending]}. "
                    + "".join(f"\n{m.name} stderr:\n{_tail(m.err_path)}" for m in running.values()))
            for e in ledger_tail.read():
                seen.add((int(e["partition"]), int(e["offset"])))
                first_by.add(e["member"])
            for e in events_tail.read():
                if e["event"] == "assigned":
                    assigned.append((int(e["pid"]), float(e["t"])))
            if ready_at is None and initial <= first_by:
                ready_at = effect_at = now
            if effect_at is None and ready_at is not None and took_effect(done_steps[-1], last_wait):
                effect_at = now
            if pending and effect_at is not None and now >= effect_at + pending[0].after_s:
                first_by.discard(pending[0].member)
                last_wait = pending[0].wait
                act(pending.pop(0), False)
                effect_at = None
            if not pending and effect_at is not None and drain_at is None and now >= effect_at + tail_s:
                drain_at = now
                fast_flag.touch()  # the members stop simulating work: the rest is read at full speed
            for m in list(running.values()):
                if m.proc.poll() is not None:
                    raise RuntimeError(f"member {m.name} exited by itself (code {m.proc.returncode}):\n"
                                       f"{_tail(m.err_path)}")
            if drain_at is not None and len(seen) >= n_messages:
                break
            time.sleep(_TICK_S)
        end_at = time.time()
        for m in running.values():
            m.proc.send_signal(signal.SIGTERM)
            finishing.append(m)
        running.clear()
        for m in finishing:
            try:
                m.proc.wait(timeout=max(1.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                m.proc.kill()
                m.proc.wait()
                raise TimeoutError(f"member {m.name} did not stop after SIGTERM:\n"
                                   f"{_tail(m.err_path)}") from None
        failed = [m for m in finishing if m.proc.returncode not in (0, None)]
        if failed:
            raise RuntimeError("".join(f"member {m.name} exited with code {m.proc.returncode}:\n"
                                       f"{_tail(m.err_path)}\n" for m in failed))
        seconds = time.time() - t0
        raw_ledger, raw_events = _read_jsonl(ledger_path), _read_jsonl(events_path)
    finally:
        for m in list(running.values()) + finishing:
            if m.proc.poll() is None:
                m.proc.kill()
                m.proc.wait()
        if own_dir:
            shutil.rmtree(wd, ignore_errors=True)
    tally = tally_ledger(raw_ledger, offsets)
    ledger = [{"member": e["member"], "pid": e.get("pid"), "partition": int(e["partition"]),
               "offset": int(e["offset"]), "t": round(e["t"] - t0, 4)} for e in raw_ledger]
    events = [{**e, "t": round(e["t"] - t0, 4)} for e in raw_events]
    for d in done_steps:
        d["t"] = round(d["t"] - t0, 4)
    return GroupReport(
        mode=mode if client == "kafka-python" else "sync", client=client,
        assignor=assignor if client == "kafka-python" else f"group.protocol={group_protocol}",
        topic=topic, group_id=group_id, n_messages=n_messages, partitions=len(offsets),
        processed=tally["processed"], duplicates=tally["duplicates"], lost=tally["lost"],
        duplicate_ranges=tally["duplicate_ranges"], lost_ranges=tally["lost_ranges"],
        steps=done_steps, ready_t=round((ready_at or t0) - t0, 4),
        drain_t=round((drain_at or t0) - t0, 4), end_t=round(end_at - t0, 4), seconds=seconds,
        ledger=ledger, events=events,
        settings={**settings, "process_ms": process_ms, "static": static, "loop": loop_r,
                  "listener": listener_r})


# ---------------------------------------------------------------------------- tables for the notebook

def in_background(func: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``func(*args, **kwargs)`` (e.g. :func:`run_group`) on a thread; returns a Future (notebook 10).

    ``future.result()`` waits for it and returns (or raises) what it did. The members are
    processes anyway: the thread only starts, signals and watches them.
    """
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nb10-group")
    future = pool.submit(func, *args, **kwargs)
    pool.shutdown(wait=False)
    return future


def rebalance_replays(modes: Iterable[str] = ("sync", "async", "auto", "combined"), *,
                 join_after_s: float = 0.5, leave_after_s: float = 0.5, crash_after: int = 300,
                 crash_messages: int | None = None,
                 n_messages: int = 2000, partitions: int = 3, process_ms: float = 2.0,
                 max_poll_records: int = 20, auto_commit_interval_ms: int = 1000,
                 parallel: int = 8, progress: bool = True, **kw: Any) -> tuple[Any, dict[str, Any]]:
    """Per commit mode: what a member joining, a member leaving (SIGTERM) and a crash replay (notebook 10).

    For each mode one group (m1 and m2; m3 joins ``join_after_s`` after both processed a
    record; m2 leaves ``leave_after_s`` after m3 got its partitions; :func:`run_group`),
    and one crash-lab trial (:func:`helpers.crashlab.run_trial`: a consumer SIGKILLed
    after ``crash_after`` records, then a fresh one drains a topic of ``crash_messages``,
    by default ``2 * crash_after``). Up to ``parallel`` of these runs go at once (each
    in its own group); counts do not depend on timing, only the wall time does. Returns
    ``(table, runs)``: the table has rows ``mode``, ``event``, ``duplicates``, ``lost``;
    ``runs[mode]`` is ``{"group": GroupReport, "crash": TrialReport}`` (kept out of the
    DataFrame: pandas deep-copies ``attrs`` on every operation).
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed

    import pandas as pd

    from .crashlab import CrashPlan, run_trial
    from .modes import get_mode
    from .topics import create_topic, seed_messages, unique_name

    modes = list(modes)
    for mode in modes:
        get_mode(mode)
    crash_messages = crash_messages or 2 * crash_after
    if crash_after >= crash_messages:
        raise ValueError(f"crash_after={crash_after} must be below crash_messages={crash_messages}")
    topic = create_topic(unique_name("nb10-replays"), partitions, bootstrap=kw.get("bootstrap"))
    seed_messages(topic, n_messages, bootstrap=kw.get("bootstrap"), progress=False)
    crash_topic = create_topic(unique_name("nb10-crashes"), partitions, bootstrap=kw.get("bootstrap"))
    seed_messages(crash_topic, crash_messages, bootstrap=kw.get("bootstrap"), progress=False)
    plan = [("m1", "start", 0), ("m2", "start", 0), ("m3", "start", join_after_s),
            ("m2", "stop", leave_after_s)]

    def group(mode: str) -> GroupReport:
        return run_group(mode, plan, topic=topic, n_messages=n_messages, partitions=partitions,
                         process_ms=process_ms, max_poll_records=max_poll_records,
                         auto_commit_interval_ms=auto_commit_interval_ms, **kw)

    def crash(mode: str) -> Any:
        return run_trial(mode, CrashPlan(after_records=crash_after), topic=crash_topic,
                         n_messages=crash_messages, partitions=partitions, process_ms=process_ms,
                         max_poll_records=max_poll_records,
                         auto_commit_interval_ms=auto_commit_interval_ms, timeout_s=60,
                         bootstrap=kw.get("bootstrap"))

    done: dict[tuple[str, str], Any] = {}
    bar: Any = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=2 * len(modes), desc="a group and a crash per mode", unit="run")
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="nb10-modes") as pool:
        futures = {pool.submit(job, mode): (mode, kind) for mode in modes
                   for kind, job in (("group", group), ("crash", crash))}
        for f in as_completed(futures):
            done[futures[f]] = f.result()
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    rows = []
    for mode in modes:
        rep, trial = done[(mode, "group")], done[(mode, "crash")]
        rows.append({"mode": mode, "event": "a member joins",
                     "duplicates": rep.replayed_after("m3 joins"), "lost": rep.lost})
        rows.append({"mode": mode, "event": "a member leaves (SIGTERM)",
                     "duplicates": rep.replayed_after("m2 leaves (SIGTERM)"), "lost": rep.lost})
        rows.append({"mode": mode, "event": "a crash (SIGKILL)", "duplicates": trial.duplicates,
                     "lost": trial.lost})
    runs = {mode: {"group": done[(mode, "group")], "crash": done[(mode, "crash")]} for mode in modes}
    return pd.DataFrame(rows), runs


def rebalance_pauses(reports: dict[str, GroupReport], label: str) -> Any:
    """Per setup and member: the longest stop, and the time stopped, around ``label`` (notebook 10).

    ``reports``: setup name -> :class:`GroupReport` of the same plan. ``joined_after_s``:
    for a join, the seconds from the new member's start to its first processed record.
    """
    import pandas as pd

    rows = []
    for setup, rep in reports.items():
        step = next(s for s in rep.steps if s["label"] == label)
        t0 = rep.step_time(step)
        firsts = [e["t"] for e in rep.ledger if e["member"] == step["member"] and e["t"] >= t0]
        joined = round(min(firsts) - t0, 3) if firsts and step["action"] == "start" else None
        for member, p in rep.pauses(label).items():
            rows.append({"setup": setup, "member": member, **p, "joined_after_s": joined})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- grading a listener

def grade_listener(listener: Any, *, n_messages: int = 3000, partitions: int = 3,
                   process_ms: float = 2.0, join_after_s: float = 0.5, leave_after_s: float = 0.5,
                   **kw: Any) -> dict[str, Any]:
    """Grade your rebalance listener: a group whose loop commits every ``COMMIT_EVERY`` records (notebook 10).

    ``listener``: ``"module:factory"`` (e.g. a class in ``my_listener.py``), called as
    ``factory(consumer, processed)`` in each member; ``processed`` maps each
    ``TopicPartition`` to the next offset to read. m1 and m2 start, m3 joins, m2 leaves
    (SIGTERM). Returns ``duplicates`` (0 when the listener commits what was processed on
    every revoke), ``lost``, ``replays`` per step, ``listener_errors``, and ``problems``.
    """
    from .runner import loop_ref

    ref = loop_ref(listener)
    plan = [("m1", "start", 0), ("m2", "start", 0), ("m3", "start", join_after_s),
            ("m2", "stop", leave_after_s)]
    rep = run_group("sync", plan, loop="helpers.rebalance:loop_commit_every", listener=ref,
                    n_messages=n_messages, partitions=partitions, process_ms=process_ms, **kw)
    errors = [e.get("error") for e in rep.events if e["event"] == "listener_error"]
    problems = []
    if errors:
        problems.append(f"the listener raised: {errors[0]} (poll() then raised too)")
    if rep.lost:
        problems.append(f"{rep.lost} records never processed: the listener committed past what was processed")
    for r in rep.replays():
        if r["step"] != "start" and r["duplicates"]:
            problems.append(f"{r['step']}: {r['duplicates']} records processed again; commit the "
                            "processed offsets of the revoked partitions in on_partitions_revoked")
    return {"listener": ref, "duplicates": rep.duplicates, "lost": rep.lost,
            "replays": {r["step"]: r["duplicates"] for r in rep.replays()},
            "listener_errors": errors, "passed": not problems, "problems": problems,
            "report": rep}
