"""The commit modes, each declared once: settings, loop, predicted duplicates (notebooks 02 to 05).

Each ``loop_*`` function is the whole consume-process-commit loop of one mode, written
to the loop contract of :mod:`helpers.runner` (``loop(consumer, process, running)``, the
loop commits and closes), short enough to read in a notebook
(``hp.show_source(hp.loop_sync)``) and to paste into a service.

:data:`MODE_SPECS` declares every mode in one place: its name, the consumer settings it
needs, its loop, and the duplicates the crash lab predicts after a SIGKILL. Adding a mode
means adding one :class:`Mode` there. :func:`consume` runs any mode's loop (or your own)
in the notebook's process.

Modes:

* ``none``: never commit (the floor for benchmarks; a restart re-reads everything);
* ``auto``: ``enable_auto_commit=True``; kafka-python commits inside ``poll()``;
* ``sync``: ``commit()`` after each batch; blocks until the broker answers;
* ``sync_per_record``: ``commit({tp: offset + 1})`` after every record;
* ``async``: ``commit_async(callback)`` after each batch; never waits, never retries;
* ``combined``: async after each batch, one sync ``commit()`` on a clean stop.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kafka.structs import OffsetAndMetadata

from .runner import Loop, Until, log_commit_failure, run_loop, with_retries
from .tracing import CommitTracer

__all__ = [
    "MODES",
    "MODE_SPECS",
    "Mode",
    "ConsumeResult",
    "consume",
    "get_mode",
    "loop_none",
    "loop_auto",
    "loop_sync",
    "loop_sync_per_record",
    "loop_async",
    "loop_combined",
    "show_source",
]

Process = Callable[[Any], None]
Running = Callable[[], bool]
OnCommit = Callable[[Any, Any], None]


# ---------------------------------------------------------------------------- the loops

def loop_none(consumer: Any, process: Process, running: Running) -> None:
    """No commits at all: the group's offsets never move (notebook 07's floor)."""
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    process(record)
    finally:
        consumer.close()


def loop_auto(consumer: Any, process: Process, running: Running) -> None:
    """Auto commit (notebook 02): no commit call; each ``poll()`` may commit the positions
    it returned before, once ``auto_commit_interval_ms`` has passed; ``close()`` commits
    the position once more (``close(autocommit=True)`` is the default)."""
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    process(record)
    finally:
        consumer.close()


def loop_sync(consumer: Any, process: Process, running: Running) -> None:
    """Synchronous commit per batch (notebook 03): process the batch, then block in
    ``commit()`` until the broker has stored the new positions."""
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    process(record)
            if batch:
                consumer.commit()
    finally:
        consumer.close()


def loop_sync_per_record(consumer: Any, process: Process, running: Running) -> None:
    """Synchronous commit per record (notebook 03): the narrowest replay window and
    the slowest loop; the offset committed is the *next* record to read."""
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            for tp, records in batch.items():
                for record in records:
                    process(record)
                    consumer.commit({tp: OffsetAndMetadata(record.offset + 1, "", -1)})
    finally:
        consumer.close()


def loop_async(consumer: Any, process: Process, running: Running,
               on_commit: OnCommit = log_commit_failure) -> None:
    """Asynchronous commit per batch (notebook 04): ``commit_async`` sends and returns at
    once; ``on_commit(offsets, None or exception)`` runs later, inside a future
    ``poll()`` or ``commit*()`` call. A failed async commit is not retried."""
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    process(record)
            if batch:
                consumer.commit_async(callback=on_commit)
    finally:
        consumer.close()


def loop_combined(consumer: Any, process: Process, running: Running,
                  on_commit: OnCommit = log_commit_failure) -> None:
    """Async in the loop, one sync commit on a clean stop (notebook 05): fast while
    running, and the final position is stored (or the error raised) before ``close()``.
    After an exception in ``process`` it commits nothing more: the position would cover
    the rest of the batch, which was never processed."""
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    process(record)
            if batch:
                consumer.commit_async(callback=on_commit)
        consumer.commit()
    finally:
        consumer.close()


# ---------------------------------------------------------------------------- predicted duplicates
# Each takes what run 1 had done when it was SIGKILLed (see helpers.crashlab.plan):
#   k: record (processed so far), in_batch, prev_batch_size, batch_size, by ("worker"/"parent"),
#      in_last_interval; s: the trial's settings; since_ack: records after the last
#      commit the broker acknowledged. Returns (low, high).

Bound = Callable[[dict[str, Any], dict[str, Any], int], tuple[int, int]]


def _bound_none(k: dict[str, Any], s: dict[str, Any], since_ack: int) -> tuple[int, int]:
    return (int(k["record"]), int(k["record"]))  # everything is read again


def _bound_sync(k: dict[str, Any], s: dict[str, Any], since_ack: int) -> tuple[int, int]:
    # the unfinished batch; killed from outside after a batch's last record, its commit may have run
    in_batch = int(k.get("in_batch") or 0)
    full = k.get("by") == "parent" and in_batch == int(k.get("batch_size") or -1)
    return (0 if full else in_batch, in_batch)


def _bound_sync_per_record(k: dict[str, Any], s: dict[str, Any], since_ack: int) -> tuple[int, int]:
    # killed by the worker right after the ledger line, i.e. before that record's commit()
    return (1, 1) if k.get("by") == "worker" else (0, 1)


def _bound_async(k: dict[str, Any], s: dict[str, Any], since_ack: int) -> tuple[int, int]:
    # at least the unfinished batch; async commits still queued when it died are lost too
    in_batch, prev = int(k.get("in_batch") or 0), int(k.get("prev_batch_size") or 0)
    return (in_batch, max(in_batch + prev, since_ack))


def _bound_auto(k: dict[str, Any], s: dict[str, Any], since_ack: int) -> tuple[int, int]:
    # a commit happens in the first poll() after each interval, covering what earlier polls returned
    return (0, max(int(k.get("in_last_interval") or 0) + int(s["max_poll_records"]), since_ack))


# ---------------------------------------------------------------------------- the declarations

@dataclass(frozen=True)
class Mode:
    """One commit mode (notebooks 02-05): everything the course knows about it, in one place."""

    name: str
    loop: Loop
    settings: dict[str, Any]  # consumer settings the mode needs
    bound: Bound  # duplicates predicted after a SIGKILL: (low, high)
    at_least_once: bool  # a crash never loses a record (when processing is done in the loop)
    what: str = field(default="")  # one line for tables


_MANUAL = {"enable_auto_commit": False}
MODE_SPECS: dict[str, Mode] = {m.name: m for m in (
    Mode("none", loop_none, _MANUAL, _bound_none, True, "never commits"),
    Mode("auto", loop_auto, {"enable_auto_commit": True}, _bound_auto, True,
         "kafka-python commits inside poll() every auto_commit_interval_ms"),
    Mode("sync", loop_sync, _MANUAL, _bound_sync, True, "commit() after each batch"),
    Mode("sync_per_record", loop_sync_per_record, _MANUAL, _bound_sync_per_record, True,
         "commit({tp: offset + 1}) after each record"),
    Mode("async", loop_async, _MANUAL, _bound_async, True, "commit_async() after each batch"),
    Mode("combined", loop_combined, _MANUAL, _bound_async, True,
         "commit_async() per batch, commit() on a clean stop"),
)}
#: The commit modes' names, in teaching order.
MODES: tuple[str, ...] = tuple(MODE_SPECS)


def get_mode(name: str) -> Mode:
    """The :class:`Mode` called ``name``; a clear error for anything else (notebook 02)."""
    if not isinstance(name, str) or name not in MODE_SPECS:
        raise ValueError(f"unknown commit mode {name!r}; choose one of {', '.join(MODES)}")
    return MODE_SPECS[name]


# ---------------------------------------------------------------------------- running one in process

@dataclass
class ConsumeResult:
    """What one :func:`consume` run did (notebook 02)."""

    mode: str
    processed: int
    polls: int
    seconds: float
    stopped_because: str
    last_offsets: dict[int, int] = field(default_factory=dict)  # partition -> last processed offset
    callbacks: list[dict[str, Any]] = field(default_factory=list)  # async callback calls, in order
    closed_by_loop: bool = True  # False: the loop forgot close()

    @property
    def records_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0


def consume(
    mode: str,
    topic: str,
    group_id: str,
    *,
    loop: Loop | str | None = None,
    max_records: int | None = None,
    idle_ms: int = 2000,
    max_seconds: float | None = None,
    process: Process | None = None,
    tracer: CommitTracer | None = None,
    on_commit: OnCommit | None = None,
    bootstrap: str | None = None,
    **consumer_settings: Any,
) -> ConsumeResult:
    """Consume ``topic`` in group ``group_id`` with one commit mode (notebooks 02-07).

    Runs the mode's loop, or ``loop`` (yours: a function or ``"module:function"``) with
    the mode's consumer settings, in this process. Stops after ``max_records`` (checked
    once per poll, so a whole batch may finish), after ``idle_ms`` with no new record once
    records have flowed, or after ``max_seconds``. ``process(record)`` is called for each
    record; ``tracer`` sees every commit; async callbacks are collected in
    ``ConsumeResult.callbacks`` and passed on to ``on_commit``. Other keywords are
    kafka-python consumer settings.
    """
    from .consumers import make_consumer

    spec = get_mode(mode)
    if max_records is not None and (isinstance(max_records, bool) or max_records < 0):
        raise ValueError(f"max_records must be >= 0, not {max_records!r}")
    settings = {**spec.settings, **consumer_settings}
    if settings.get("enable_auto_commit") != spec.settings["enable_auto_commit"]:
        raise ValueError(f"mode {mode!r} needs enable_auto_commit={spec.settings['enable_auto_commit']}")
    consumer = make_consumer(topic, group_id=group_id, bootstrap=bootstrap, **settings)
    if tracer is not None:
        tracer.attach(consumer)

    until = Until(max_records=max_records, idle_s=idle_ms / 1000, max_seconds=max_seconds,
                  nothing_s=None if max_records == 0 else max(idle_ms, 10_000) / 1000)
    last: dict[int, int] = {}
    callbacks: list[dict[str, Any]] = []

    def handle(record: Any) -> None:
        if process is not None:
            process(record)
        until.done()
        last[record.partition] = record.offset

    def commit_callback(offsets: Any, result: Any) -> None:
        callbacks.append({
            "at": round(time.perf_counter() - until.t0, 6),
            "offsets": {f"{tp.topic}:{tp.partition}": om.offset for tp, om in offsets.items()},
            "result": f"{type(result).__name__}: {result}" if isinstance(result, BaseException)
            else repr(result),
        })
        (on_commit or log_commit_failure)(offsets, result)

    run = run_loop(loop or spec.loop, consumer, handle, until.running, on_commit=commit_callback)
    return ConsumeResult(mode, until.count, until.polls - 1, run.seconds, until.reason or "stopped",
                         dict(sorted(last.items())), callbacks, run.closed_by_loop)


def consume_all(mode: str, topic: str, n: int, *, group_prefix: str, attempts: int = 4,
                **kw: Any) -> tuple[ConsumeResult, int]:
    """Read exactly ``n`` records with :func:`consume`, each attempt in a fresh group,
    retried by the course's one retry policy (:func:`helpers.runner.with_retries`) when
    a consumer reads fewer (notebook 07). Returns (result, retries)."""
    from .runner import Stalled
    from .topics import unique_name

    def attempt(i: int) -> ConsumeResult:
        res = consume(mode, topic, unique_name(f"{group_prefix}-{mode}"), max_records=n, **kw)
        if res.processed != n:
            raise Stalled(f"{mode}: read {res.processed} of {n} records ({res.stopped_because}); "
                          f"is the broker overloaded?")
        return res

    return with_retries(attempt, attempts=attempts)


def show_source(obj: Any) -> None:
    """Show a helper's source code in the notebook, highlighted (notebooks 01-06)."""
    import inspect

    from IPython.display import Code, display

    display(Code(inspect.getsource(obj), language="python"))
