"""The crash lab: kill a consumer mid-stream and count what was repeated or lost (notebook 02).

Notebook 02 introduces it; notebooks 03-05 reuse it for each commit mode.

A *trial* runs a consumer with one commit mode (one of the loops in
:mod:`helpers.modes`) in a **separate process** and stops it at a chosen moment:

* ``CrashPlan(after_records=N)``: the worker SIGKILLs itself right after the N-th
  record is in the ledger (precise and repeatable);
* ``CrashPlan(after_ms=T)``: the parent SIGKILLs it T ms after the worker's first
  processed record;
* ``CrashPlan(mid_batch=True)``: the worker SIGKILLs itself after a record of a
  ``poll()`` batch that has more records still to process (from record
  ``after_records`` on, if given);
* ``CrashPlan(graceful=True)``: a stop signal (SIGTERM) instead of a kill: the loop
  finishes its batch and exits, ``close()`` runs. With ``after_records``/``after_ms``
  it says when; alone, after half the messages.

Then a **fresh** consumer (a new process, same group, same commit mode) reads until the
topic is drained. Both processes append one line per record they *finish* processing
to a ledger file (``O_APPEND`` write per record, so it survives SIGKILL), and their
commit attempts (via :class:`~helpers.tracing.CommitTracer` with a file sink). The
:class:`TrialReport` compares the ledger with the topic: duplicates (processed twice)
and lost records (never processed), and the group's committed offsets read from the
broker between and after the runs.

Both runs join the group as the same *static member* (``group_instance_id``): the
second run takes over the dead member's partitions at once instead of waiting
``session_timeout_ms`` (45 s) for the broker to notice the SIGKILL.

``handoff=True`` hands each record to a background thread (through an unbounded
queue, like a thread-pool executor's) and polls again before it is processed: commits
(automatic ones in particular) then cover records that were only queued, so a crash
*loses* them.

Run the worker by hand with ``python -m helpers.crashlab worker CONFIG.json``.
"""
from __future__ import annotations

import json
import math
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

__all__ = [
    "CrashPlan",
    "TrialReport",
    "WorkerError",
    "run_trial",
    "run_trials",
    "sweep_auto_commit",
    "tally_ledger",
    "predicted_duplicates",
]

_ROOT = Path(__file__).resolve().parent.parent
_POLL_S = 0.002  # how often the parent looks at the worker


class WorkerError(RuntimeError):
    """A crash-lab worker process failed for a reason other than the planned kill."""


# ---------------------------------------------------------------------------- plan

@dataclass
class CrashPlan:
    """When to stop the first consumer of a trial (notebook 02).

    Exactly one trigger (``after_records``, ``after_ms`` or ``mid_batch``), or
    ``graceful=True``. ``mid_batch`` may come with ``after_records`` (kill inside the
    first batch that still has records left after that record); ``graceful`` may come
    with ``after_records`` or ``after_ms`` (when to send the stop signal).
    """

    after_records: int | None = None
    after_ms: int | None = None
    mid_batch: bool = False
    graceful: bool = False

    def validate(self, n_messages: int | None = None) -> "CrashPlan":
        """Raise ``ValueError`` (saying what to do) unless the plan makes sense."""
        for name in ("after_records", "after_ms"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"CrashPlan.{name} must be a whole number, not {value!r}")
        if self.after_records is not None and self.after_records < 1:
            raise ValueError(f"CrashPlan.after_records must be >= 1 (the record to die after), "
                             f"not {self.after_records}")
        if self.after_ms is not None and self.after_ms < 0:
            raise ValueError(f"CrashPlan.after_ms must be >= 0, not {self.after_ms}")
        if self.after_records is not None and self.after_ms is not None:
            raise ValueError("CrashPlan takes after_records or after_ms, not both: pick one moment")
        if self.mid_batch and self.after_ms is not None:
            raise ValueError("mid_batch kills inside a batch; combine it with after_records "
                             "(from which record on), not after_ms")
        if self.graceful and self.mid_batch:
            raise ValueError("graceful stops between batches; it cannot be mid_batch")
        if not (self.graceful or self.mid_batch) and self.after_records is None \
                and self.after_ms is None:
            raise ValueError("CrashPlan needs a moment: after_records=N, after_ms=T, "
                             "mid_batch=True, or graceful=True")
        if n_messages is not None and self.after_records is not None \
                and self.after_records > n_messages:
            raise ValueError(f"CrashPlan.after_records={self.after_records} but the topic has only "
                             f"{n_messages} messages: lower it or raise n_messages")
        return self

    def label(self) -> str:
        """A short text for tables, e.g. ``kill@120`` or ``graceful@1000ms``."""
        kind = "graceful" if self.graceful else ("mid-batch" if self.mid_batch else "kill")
        if self.after_records is not None:
            return f"{kind}@{self.after_records}"
        if self.after_ms is not None:
            return f"{kind}@{self.after_ms}ms"
        return kind


# ---------------------------------------------------------------------------- report

@dataclass
class TrialReport:
    """What one crash trial did (notebook 02): see :func:`run_trial`.

    ``duplicates`` counts extra processings (ledger lines minus distinct records),
    which with two runs is the number of records processed twice. Offsets are
    Kafka's: a committed offset is the *next* record to read.
    """

    mode: str
    crash: dict[str, Any]
    n_messages: int
    topic: str
    group_id: str
    processed: int
    duplicates: int
    duplicate_ranges: dict[int, list[tuple[int, int]]]
    lost: int
    lost_ranges: dict[int, list[tuple[int, int]]]
    committed_before: dict[int, int | None]
    committed_after: dict[int, int | None]
    killed_at: dict[str, Any] | None
    durations: dict[str, float]
    ledger: list[dict[str, Any]] = field(repr=False)
    commits: list[dict[str, Any]] = field(repr=False)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (int partition keys become strings, tuples lists)."""
        return json.loads(json.dumps(asdict(self), default=str))

    def summary(self) -> dict[str, Any]:
        """The headline numbers only."""
        run1 = sum(1 for e in self.ledger if e["run"] == 1)
        return {
            "mode": self.mode,
            "crash": CrashPlan(**self.crash).label(),
            "n_messages": self.n_messages,
            "run1_processed": run1,
            "run2_processed": self.processed - run1,
            "processed": self.processed,
            "duplicates": self.duplicates,
            "lost": self.lost,
            "killed_at_record": (self.killed_at or {}).get("record"),
            "total_s": self.durations.get("total_s"),
        }

    def _repr_html_(self) -> str:  # a readable cell output in the notebooks
        rows = "".join(f"<tr><th style='text-align:left'>{k}</th><td>{v}</td></tr>"
                       for k, v in self.summary().items())
        return f"<table>{rows}</table>"


def _ranges(offsets: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted offsets -> inclusive ``(first, last)`` runs of consecutive offsets."""
    out: list[tuple[int, int]] = []
    for o in sorted(offsets):
        if out and o == out[-1][1] + 1:
            out[-1] = (out[-1][0], o)
        else:
            out.append((o, o))
    return out


def tally_ledger(ledger: Sequence[dict[str, Any]],
                 expected: dict[int, tuple[int, int]]) -> dict[str, Any]:
    """Duplicates and losses of a ledger against the offsets a topic holds (notebook 02).

    ``ledger``: dicts with ``partition`` and ``offset`` (one per processing);
    ``expected``: partition -> ``(first_offset, end_offset)``, end exclusive, as
    Kafka's beginning/end offsets are. Returns ``processed``, ``duplicates`` (extra
    processings), ``duplicate_ranges``, ``lost`` and ``lost_ranges`` (partition ->
    inclusive offset ranges). A ledger entry outside ``expected`` raises ``ValueError``.
    """
    seen: dict[int, dict[int, int]] = {p: {} for p in expected}
    for e in ledger:
        p, o = int(e["partition"]), int(e["offset"])
        if p not in expected or not expected[p][0] <= o < expected[p][1]:
            raise ValueError(f"ledger has partition {p} offset {o}, outside the topic's "
                             f"offsets {expected}")
        seen[p][o] = seen[p].get(o, 0) + 1
    dup_ranges: dict[int, list[tuple[int, int]]] = {}
    lost_ranges: dict[int, list[tuple[int, int]]] = {}
    duplicates = lost = 0
    for p, (first, end) in sorted(expected.items()):
        counts = seen[p]
        duplicates += sum(c - 1 for c in counts.values())
        twice = [o for o, c in counts.items() if c > 1]
        missing = [o for o in range(first, end) if o not in counts]
        lost += len(missing)
        if twice:
            dup_ranges[p] = _ranges(twice)
        if missing:
            lost_ranges[p] = _ranges(missing)
    return {"processed": len(ledger), "duplicates": duplicates, "duplicate_ranges": dup_ranges,
            "lost": lost, "lost_ranges": lost_ranges}


def predicted_duplicates(report: TrialReport) -> tuple[int, int] | None:
    """The duplicates a trial's commit mode predicts, as ``(low, high)`` (notebooks 02-05).

    From what run 1 had done when it died (``report.killed_at``), not from the result:

    * graceful stop: ``(0, 0)`` (``none``: everything run 1 processed); ``async``:
      from 0 up to what its last unacknowledged commits covered, because ``close()``
      does not wait for queued async commits (seen under CPU load; ``combined``'s final
      sync ``commit()`` is the cure);
    * ``none``: every record run 1 processed is read again;
    * ``sync``: exactly the records processed in the unfinished batch (its commit
      never ran; the previous batch's commit had returned before the next ``poll()``);
    * ``sync_per_record``: killed by the worker right after the ledger line, i.e.
      *before* that record's ``commit()`` - exactly 1; killed from outside, 0 or 1;
    * ``async``/``combined``: at least the unfinished batch; at most that plus the
      previous batch, or everything after the last commit the broker acknowledged
      before the kill, whichever is more (async commits still queued are lost);
    * ``auto``: at most the records processed in the last ``auto_commit_interval_ms``
      before the kill plus one batch (a commit happens in the first ``poll()`` after
      the interval, covering everything returned before that poll), or everything
      after the last acknowledged commit, whichever is more.

    ``None`` when there is nothing to predict (``handoff``: losses, not duplicates).
    """
    s, k = report.settings, report.killed_at
    if s.get("handoff"):
        return None
    # Async and auto commits are sent by kafka-python's IO thread; measured here, a busy
    # main thread can die several batches before they reach the broker. So the bound is
    # also at least everything after the last commit the broker *acknowledged*.
    acked: dict[str, int] = {}
    for c in report.commits:
        if c.get("run") == 1 and c.get("outcome") == "success":
            for tp, off in c["offsets"].items():
                acked[tp] = max(acked.get(tp, 0), int(off))
    if report.crash.get("graceful") or k is None:
        run1 = sum(1 for e in report.ledger if e["run"] == 1)
        if report.mode == "none":
            return (run1, run1)
        if report.mode == "async":
            return (0, max(int(s["max_poll_records"]), run1 - sum(acked.values())))
        return (0, 0)
    record = int(k["record"])
    in_batch, prev = int(k.get("in_batch") or 0), int(k.get("prev_batch_size") or 0)
    if report.mode == "none":
        return (record, record)
    if report.mode == "sync":
        # killed from outside after a batch's last record: its commit may have run
        full = k.get("by") == "parent" and in_batch == int(k.get("batch_size") or -1)
        return (0 if full else in_batch, in_batch)
    if report.mode == "sync_per_record":
        return (1, 1) if k.get("by") == "worker" else (0, 1)
    since_ack = record - sum(acked.values())
    if report.mode in ("async", "combined"):
        return (in_batch, max(in_batch + prev, since_ack))
    if report.mode == "auto":
        return (0, max(int(k.get("in_last_interval") or 0) + int(s["max_poll_records"]), since_ack))
    return None


# ---------------------------------------------------------------------------- worker

def _append(fd: int, row: dict[str, Any]) -> None:
    os.write(fd, (json.dumps(row, separators=(",", ":"), default=str) + "\n").encode())


def _worker(config_path: str) -> int:
    """The consumer process of one run (``python -m helpers.crashlab worker CONFIG``)."""
    from . import modes
    from .consumers import make_consumer
    from .tracing import CommitTracer

    import logging

    logging.basicConfig(level=os.environ.get("CRASHLAB_LOG", "WARNING"), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = json.loads(Path(config_path).read_text())
    run, mode = int(cfg["run"]), cfg["mode"]
    crash = cfg.get("crash") or {}
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    ledger_fd = os.open(cfg["ledger"], flags, 0o644)
    polls_fd = os.open(cfg["polls"], flags, 0o644)
    commits_fd = os.open(cfg["commits"], flags, 0o644)
    ends = {int(p): int(e) for p, e in cfg["end_offsets"].items()}
    stop_requested = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop_requested.set())

    tracer = CommitTracer(sink=lambda row: _append(commits_fd, {**row, "run": run,
                                                                "wall": time.time()}))
    consumer = make_consumer(
        cfg["topic"], group_id=cfg["group_id"], bootstrap=cfg["bootstrap"],
        enable_auto_commit=(mode == "auto"),
        auto_commit_interval_ms=cfg["auto_commit_interval_ms"],
        max_poll_records=cfg["max_poll_records"],
        group_instance_id=cfg["group_instance_id"],
        client_id=f"crashlab-{cfg['group_id']}-run{run}",
    )
    tracer.attach(consumer)
    # Know the topic's partitions before the first poll() joins the group: kafka-python
    # 3.0.12 can otherwise join before its first metadata answer, get an empty
    # assignment and keep it (seen here about once in 40 trials).
    consumer.partitions_for_topic(cfg["topic"])

    state = {"handled": 0, "done": 0, "batch": 0, "pos": 0, "last": time.monotonic()}
    after = crash.get("after_records")
    mid_batch = bool(crash.get("mid_batch"))
    graceful = bool(crash.get("graceful"))
    if graceful and after is None and crash.get("after_ms") is None:
        after = max(1, int(cfg["n_messages"]) // 2)
    process_s = float(cfg.get("process_ms") or 0) / 1000

    orig_poll = consumer.poll

    def poll(*args: Any, **kwargs: Any) -> Any:
        batch = orig_poll(*args, **kwargs)
        size = sum(len(r) for r in batch.values())
        if size:
            state["batch"], state["pos"] = size, 0
            _append(polls_fd, {"run": run, "size": size, "start": state["handled"],
                               "t": time.time()})
        return batch

    consumer.poll = poll  # the loops call consumer.poll

    def finish(record: Any) -> None:
        """Process one record: simulated work, then the durable ledger line."""
        if process_s:
            time.sleep(process_s)
        _append(ledger_fd, {"run": run, "topic": record.topic, "partition": record.partition,
                            "offset": record.offset, "t": time.time()})
        state["done"] += 1
        state["last"] = time.monotonic()
        if run != 1 or after is None and not mid_batch:
            return
        n = state["done"]
        if graceful:
            if after is not None and n >= after:
                stop_requested.set()
        elif mid_batch:
            if n >= (after or 1) and state["pos"] < state["batch"]:
                os.kill(os.getpid(), signal.SIGKILL)
        elif after is not None and n >= after:
            os.kill(os.getpid(), signal.SIGKILL)

    work: queue.Queue[Any] = queue.Queue()  # unbounded, like an executor's work queue
    if cfg.get("handoff"):
        def processor() -> None:
            while True:
                record = work.get()
                try:
                    if record is not None:
                        finish(record)
                finally:
                    work.task_done()
                if record is None:
                    return

        threading.Thread(target=processor, name="crashlab-processor", daemon=True).start()

    def handle(record: Any) -> None:
        state["handled"] += 1
        state["pos"] += 1
        if cfg.get("handoff"):
            work.put(record)
        else:
            finish(record)

    t0 = time.monotonic()
    reason = ""

    def stop() -> bool:
        nonlocal reason
        now = time.monotonic()
        if stop_requested.is_set() or os.path.exists(cfg["stop_file"]):
            reason = "stop signal"
        elif now - t0 > float(cfg["max_seconds"]):
            reason = "max_seconds"
        elif state["done"] and now - state["last"] > cfg["idle_ms"] / 1000:
            reason = "idle"
        else:
            assigned = consumer.assignment()
            if assigned and len(assigned) == len(ends) and work.unfinished_tasks == 0 and all(
                    consumer.position(tp) >= ends[tp.partition] for tp in assigned):
                reason = "drained"
        return bool(reason)

    loop = getattr(modes, f"loop_{mode}")
    try:
        loop(consumer, handle, stop, cfg["poll_ms"])
        if cfg.get("handoff"):
            work.put(None)
            work.join()
    finally:
        consumer.close(autocommit=(mode == "auto"))
    print(json.dumps({"run": run, "processed": state["done"], "reason": reason}), flush=True)
    return 0


# ---------------------------------------------------------------------------- parent

def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:  # a line cut by the kill (cannot happen with one write, but)
                pass
    return rows


def _tail(path: Path, n: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no stderr)"


def _topic_offsets(admin: Any, topic: str) -> dict[int, tuple[int, int]]:
    from kafka import TopicPartition
    from kafka.protocol.consumer.offsets import OffsetSpec

    (desc,) = admin.describe_topics([topic])
    parts = sorted(p["partition_index"] for p in desc["partitions"])
    tps = [TopicPartition(topic, p) for p in parts]
    first = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in tps})
    end = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
    return {tp.partition: (int(first[tp].offset), int(end[tp].offset)) for tp in tps}


def _committed(admin: Any, group_id: str, topic: str, partitions: Iterable[int]) -> dict[int, int | None]:
    got = admin.list_group_offsets({group_id: None}).get(group_id, {})
    out: dict[int, int | None] = {p: None for p in partitions}
    for tp, om in got.items():
        if tp.topic == topic and om is not None and om.offset >= 0:
            out[tp.partition] = int(om.offset)
    return dict(sorted(out.items()))


def _settled_committed(admin: Any, group_id: str, topic: str, partitions: Iterable[int],
                       every_s: float = 0.2, max_s: float = 3.0) -> dict[int, int | None]:
    """The group's committed offsets once they stop moving.

    A commit request already written to the socket when run 1 was killed is still
    applied by the broker after the process is gone; read until two reads agree, so
    the report holds the offsets run 2 really starts from.
    """
    parts = list(partitions)
    last = _committed(admin, group_id, topic, parts)
    end = time.monotonic() + max_s
    while time.monotonic() < end:
        time.sleep(every_s)
        now = _committed(admin, group_id, topic, parts)
        if now == last:
            break
        last = now
    return last


def _run_worker(cfg: dict[str, Any], workdir: Path, deadline: float,
                crash: CrashPlan | None) -> dict[str, Any]:
    """Start one worker; kill or signal it as ``crash`` (parent-side triggers) says."""
    run = cfg["run"]
    cfg_path = workdir / f"run{run}.json"
    cfg_path.write_text(json.dumps(cfg))
    err_path, out_path = workdir / f"run{run}.stderr", workdir / f"run{run}.stdout"
    ledger = Path(cfg["ledger"])
    started = time.time()
    with open(err_path, "wb") as err, open(out_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "helpers.crashlab", "worker", str(cfg_path)],
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=_ROOT)
    signalled: dict[str, Any] = {}
    try:
        act_at: float | None = None
        while proc.poll() is None:
            now = time.time()
            if now > deadline:
                proc.kill()
                proc.wait()
                raise TimeoutError(f"crash-lab run {run} did not finish within the trial's "
                                   f"timeout_s; raise timeout_s or lower n_messages/process_ms. "
                                   f"Worker stderr:\n{_tail(err_path)}")
            if crash is not None and crash.after_ms is not None and not signalled:
                if act_at is None and ledger.exists() and ledger.stat().st_size:
                    with open(ledger, "rb") as f:
                        first = json.loads(f.readline())
                    act_at = float(first["t"]) + crash.after_ms / 1000
                if act_at is not None and now >= act_at:
                    if crash.graceful:
                        proc.send_signal(signal.SIGTERM)
                    else:
                        proc.kill()
                    signalled = {"at": time.time(), "by": "parent"}
            time.sleep(_POLL_S)
    finally:
        if proc.poll() is None:  # an exception (KeyboardInterrupt too): leave nothing behind
            proc.kill()
            proc.wait()
    rc = proc.returncode
    killed = rc == -signal.SIGKILL
    if rc != 0 and not (killed and crash is not None and not crash.graceful):
        raise WorkerError(f"crash-lab run {run} exited with code {rc} "
                          f"({'killed' if killed else 'failed'}, not as planned). "
                          f"Worker stderr:\n{_tail(err_path)}")
    status = _read_jsonl(out_path)
    return {"rc": rc, "killed": killed, "seconds": time.time() - started,
            "status": status[-1] if status else None, "signalled": signalled}


def _killed_at(ledger: list[dict[str, Any]], polls: list[dict[str, Any]], t0: float,
               interval_s: float, by: str, handoff: bool) -> dict[str, Any]:
    """What run 1 had done when it died, from its ledger and its poll log."""
    run1 = [e for e in ledger if e["run"] == 1]
    k = len(run1)
    t_kill = run1[-1]["t"] if run1 else t0
    out: dict[str, Any] = {"record": k, "t": round(t_kill - t0, 6), "by": by}
    out["in_last_interval"] = sum(1 for e in run1 if e["t"] > t_kill - interval_s)
    p1 = [p for p in polls if p["run"] == 1]
    if p1 and not handoff:
        i = max((j for j, p in enumerate(p1) if p["start"] < k), default=len(p1) - 1)
        out["batch"], out["batch_size"] = i, p1[i]["size"]
        out["in_batch"] = k - p1[i]["start"]
        out["prev_batch_size"] = p1[i - 1]["size"] if i > 0 else 0
    return out


def _check_args(mode: str, crash: CrashPlan, n_messages: int, partitions: int,
                auto_commit_interval_ms: int, max_poll_records: int, process_ms: float,
                timeout_s: float, handoff: bool) -> None:
    from .modes import MODES

    if mode not in MODES:
        raise ValueError(f"unknown commit mode {mode!r}; choose one of {', '.join(MODES)}")
    if not isinstance(crash, CrashPlan):
        raise ValueError(f"crash must be a CrashPlan (e.g. CrashPlan(after_records=100)), "
                         f"not {crash!r}")
    for name, value in (("n_messages", n_messages), ("partitions", partitions),
                        ("auto_commit_interval_ms", auto_commit_interval_ms),
                        ("max_poll_records", max_poll_records)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")
    if not isinstance(process_ms, (int, float)) or process_ms < 0 or math.isnan(process_ms):
        raise ValueError(f"process_ms must be >= 0, not {process_ms!r}")
    if not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, not {timeout_s!r}")
    if handoff and crash.mid_batch:
        raise ValueError("handoff processes records on another thread, so there is no "
                         "'inside a batch' to kill in: use after_records or after_ms")
    crash.validate(n_messages)


def run_trial(mode: str, crash: CrashPlan, *, n_messages: int = 2000, partitions: int = 3,
              topic: str | None = None, group_id: str | None = None,
              auto_commit_interval_ms: int = 5000, max_poll_records: int = 500,
              process_ms: float = 0.0, handoff: bool = False, timeout_s: float = 60,
              workdir: str | Path | None = None, bootstrap: str | None = None) -> TrialReport:
    """One crash trial (notebook 02): crash a consumer, restart it, count the damage.

    Run 1 consumes ``topic`` in ``group_id`` with commit ``mode`` in a separate
    process and is stopped as ``crash`` says; run 2, a fresh process in the same
    group, reads until the topic is drained. ``topic=None`` creates and seeds a new
    topic with ``n_messages`` over ``partitions``; an existing topic is used as is
    and must hold exactly ``n_messages`` (trials can share one, each with its own
    group). ``process_ms`` simulates work per record; ``handoff`` processes records
    on a background thread after ``poll()`` returned them (see the module doc).
    ``workdir`` keeps the ledger and logs (default: a temporary directory, removed).
    Raises ``ValueError`` for nonsense input, :class:`WorkerError` (with the worker's
    stderr) if a run fails, ``TimeoutError`` after ``timeout_s`` (workers are killed).
    """
    _check_args(mode, crash, n_messages, partitions, auto_commit_interval_ms,
                max_poll_records, process_ms, timeout_s, handoff)
    from .broker import ensure_broker
    from .topics import admin_client, create_topic, seed_messages, unique_name

    t0 = time.time()
    deadline = t0 + timeout_s
    bootstrap = bootstrap or ensure_broker().bootstrap
    group_id = group_id or unique_name(f"crashlab-{mode}")
    with admin_client(bootstrap) as admin:
        existing = topic is not None and topic in set(admin.list_topics())
        if not existing:
            topic = create_topic(topic or unique_name(f"crashlab-{mode}"), partitions,
                                 bootstrap=bootstrap)
            seed_messages(topic, n_messages, bootstrap=bootstrap, progress=False)
        assert topic is not None
        offsets = _topic_offsets(admin, topic)
        held = sum(end - first for first, end in offsets.values())
        if held != n_messages:
            raise ValueError(f"topic {topic!r} holds {held} messages, not n_messages={n_messages}: "
                             f"pass n_messages={held} or use a new topic (topic=None)")
        if crash.after_records is not None and crash.after_records > held:
            raise ValueError(f"after_records={crash.after_records} > {held} messages in {topic!r}")

        own_dir = workdir is None
        wd = Path(tempfile.mkdtemp(prefix="crashlab-")) if own_dir else Path(workdir)  # type: ignore[arg-type]
        wd.mkdir(parents=True, exist_ok=True)
        try:
            files = {name: str(wd / f"{name}.jsonl") for name in ("ledger", "polls", "commits")}
            for f in files.values():  # a reused workdir must not mix trials
                Path(f).unlink(missing_ok=True)
            base = {
                "mode": mode, "topic": topic, "group_id": group_id, "bootstrap": bootstrap,
                "group_instance_id": f"{group_id}-member", "n_messages": n_messages,
                "end_offsets": {str(p): e for p, (_, e) in offsets.items()},
                "auto_commit_interval_ms": auto_commit_interval_ms,
                "max_poll_records": max_poll_records, "process_ms": process_ms,
                "handoff": handoff, "poll_ms": 100, "idle_ms": 10_000,
                "max_seconds": timeout_s, "stop_file": str(wd / "STOP"), **files,
            }
            w1 = _run_worker({**base, "run": 1, "crash": asdict(crash)}, wd, deadline, crash)
            committed_before = _settled_committed(admin, group_id, topic, offsets)
            w2 = _run_worker({**base, "run": 2, "crash": None}, wd, deadline, None)
            committed_after = _committed(admin, group_id, topic, offsets)
            raw = _read_jsonl(Path(files["ledger"]))
            polls = _read_jsonl(Path(files["polls"]))
            commits = _read_jsonl(Path(files["commits"]))
        finally:
            if own_dir:
                shutil.rmtree(wd, ignore_errors=True)

    tally = tally_ledger(raw, offsets)
    killed_at = None
    if w1["killed"]:
        by = "parent" if w1["signalled"] else "worker"
        killed_at = _killed_at(raw, polls, t0, auto_commit_interval_ms / 1000, by, handoff)
    ledger = [{"run": e["run"], "partition": e["partition"], "offset": e["offset"],
               "t": round(e["t"] - t0, 6)} for e in raw]
    for c in commits:
        c["wall"] = round(c["wall"] - t0, 6)
    total = time.time() - t0
    return TrialReport(
        mode=mode, crash=asdict(crash), n_messages=n_messages, topic=topic, group_id=group_id,
        processed=tally["processed"], duplicates=tally["duplicates"],
        duplicate_ranges=tally["duplicate_ranges"], lost=tally["lost"],
        lost_ranges=tally["lost_ranges"], committed_before=committed_before,
        committed_after=committed_after, killed_at=killed_at,
        durations={"run1_s": round(w1["seconds"], 3), "run2_s": round(w2["seconds"], 3),
                   "total_s": round(total, 3)},
        ledger=ledger, commits=commits,
        settings={"partitions": len(offsets), "auto_commit_interval_ms": auto_commit_interval_ms,
                  "max_poll_records": max_poll_records, "process_ms": process_ms,
                  "handoff": handoff, "run1_stopped": (w1["status"] or {}).get("reason"),
                  "run2_stopped": (w2["status"] or {}).get("reason")},
    )


def run_trials(mode: str, crashes: list[CrashPlan] | int, *, seed: int | None = None,
               progress: bool = True, **kw: Any) -> Any:
    """Many crash trials of one mode, one DataFrame row each (notebooks 02-05).

    ``crashes`` is a list of plans, or a number: that many SIGKILLs after a random
    record in ``1 .. n_messages`` (``seed`` makes them repeatable). All trials share
    one topic (created and seeded once unless ``topic=`` is given), each with its own
    group. Other keywords go to :func:`run_trial`. Columns: the trial's
    :meth:`TrialReport.summary`, where it died in its batch, the predicted duplicate
    range (:func:`predicted_duplicates`) and the committed offsets.
    """
    import pandas as pd

    from .modes import MODES

    if mode not in MODES:
        raise ValueError(f"unknown commit mode {mode!r}; choose one of {', '.join(MODES)}")
    n = kw.get("n_messages", 2000)
    if isinstance(crashes, bool) or not isinstance(crashes, (int, list)):
        raise ValueError("crashes must be a list of CrashPlan or a number of random kills")
    if isinstance(crashes, int):
        if crashes < 1:
            raise ValueError(f"crashes must be >= 1 trials, not {crashes}")
        rng = random.Random(seed)
        plans = [CrashPlan(after_records=rng.randint(1, n)) for _ in range(crashes)]
    else:
        plans = list(crashes)
    if not plans:
        raise ValueError("crashes is empty: give at least one CrashPlan")
    for p in plans:  # all nonsense is reported before the first trial runs
        _check_args(mode, p, n, kw.get("partitions", 3), kw.get("auto_commit_interval_ms", 5000),
                    kw.get("max_poll_records", 500), kw.get("process_ms", 0.0),
                    kw.get("timeout_s", 60), kw.get("handoff", False))
    if kw.get("topic") is None:
        from .topics import create_topic, seed_messages, unique_name

        kw["topic"] = create_topic(unique_name(f"crashlab-{mode}"), kw.get("partitions", 3),
                                   bootstrap=kw.get("bootstrap"))
        seed_messages(kw["topic"], n, bootstrap=kw.get("bootstrap"), progress=False)
    it: Any = plans
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(plans, desc=f"crash trials ({mode})", unit="trial")
    rows = []
    for i, plan in enumerate(it):
        rep = run_trial(mode, plan, **kw)
        k = rep.killed_at or {}
        pred = predicted_duplicates(rep)
        rows.append({"trial": i, **rep.summary(), "in_batch": k.get("in_batch"),
                     "batch_size": k.get("batch_size"),
                     "in_last_interval": k.get("in_last_interval"),
                     "predicted_min": pred[0] if pred else None,
                     "predicted_max": pred[1] if pred else None,
                     "auto_commit_interval_ms": rep.settings["auto_commit_interval_ms"],
                     "max_poll_records": rep.settings["max_poll_records"],
                     "group_id": rep.group_id,
                     "committed_before": rep.committed_before,
                     "committed_after": rep.committed_after})
    return pd.DataFrame(rows).set_index("trial")


def sweep_auto_commit(intervals_ms: list[int], *, trials: int = 3, **kw: Any) -> Any:
    """Duplicates after a crash vs ``auto_commit_interval_ms`` (notebook 02's plot).

    For each interval, ``trials`` random SIGKILLs of an auto-commit consumer (all on one
    shared topic). Returns one row per trial with ``auto_commit_interval_ms``; group by
    it for the plot. ``process_ms`` (default 2) spreads the run over several intervals.
    """
    import pandas as pd

    if not intervals_ms:
        raise ValueError("intervals_ms is empty: give e.g. [100, 500, 1000]")
    for ms in intervals_ms:
        if isinstance(ms, bool) or not isinstance(ms, int) or ms < 1:
            raise ValueError(f"auto_commit_interval_ms values must be whole numbers >= 1, not {ms!r}")
    kw.setdefault("process_ms", 2.0)
    seed = kw.pop("seed", None)
    progress = kw.pop("progress", True)
    if kw.get("topic") is None:
        from .topics import create_topic, seed_messages, unique_name

        n = kw.get("n_messages", 2000)
        kw["topic"] = create_topic(unique_name("crashlab-sweep"), kw.get("partitions", 3),
                                   bootstrap=kw.get("bootstrap"))
        seed_messages(kw["topic"], n, bootstrap=kw.get("bootstrap"), progress=False)
    frames = []
    for j, ms in enumerate(intervals_ms):
        df = run_trials("auto", trials, seed=None if seed is None else seed + j,
                        progress=progress, auto_commit_interval_ms=ms, **kw)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m helpers.crashlab worker CONFIG.json``: one run of a trial."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "worker":
        print("usage: python -m helpers.crashlab worker CONFIG.json", file=sys.stderr)
        return 2
    return _worker(args[1])


if __name__ == "__main__":
    sys.exit(main())
