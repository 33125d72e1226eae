"""Consumer loops, one per commit mode (introduced in notebooks 02 to 05).

Each ``loop_*`` function is the whole consume-process-commit loop of one mode,
short enough to read in a notebook (``hp.show_source(hp.loop_sync)``). They take a
consumer that is already subscribed, a ``handle(record)`` function that does the
processing, and a ``stop()`` predicate checked once per poll. :func:`consume`
builds the consumer, runs one loop with bookkeeping, and closes it.

Modes:

* ``none``: never commit (the floor for benchmarks; a restart re-reads everything);
* ``auto``: ``enable_auto_commit=True``; kafka-python commits inside ``poll()``;
* ``sync``: ``commit()`` after each batch; blocks until the broker answers;
* ``sync_per_record``: ``commit({tp: offset + 1})`` after every record;
* ``async``: ``commit_async(callback)`` after each batch; never waits, never retries;
* ``combined``: async after each batch, one sync ``commit()`` in ``finally``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from kafka.structs import OffsetAndMetadata

from .consumers import make_consumer
from .tracing import CommitTracer

__all__ = [
    "MODES",
    "ConsumeResult",
    "consume",
    "loop_none",
    "loop_auto",
    "loop_sync",
    "loop_sync_per_record",
    "loop_async",
    "loop_combined",
    "show_source",
]

Handle = Callable[[Any], None]
Stop = Callable[[], bool]
OnCommit = Callable[[Any, Any], None]
POLL_MS = 100


def loop_none(consumer: Any, handle: Handle, stop: Stop, poll_ms: int = POLL_MS) -> None:
    """No commits at all: the group's offsets never move (notebook 06's floor)."""
    while not stop():
        batch = consumer.poll(timeout_ms=poll_ms)
        for records in batch.values():
            for record in records:
                handle(record)


def loop_auto(consumer: Any, handle: Handle, stop: Stop, poll_ms: int = POLL_MS) -> None:
    """Auto commit (notebook 02): no commit call; each ``poll()`` may commit the
    positions it returned before, once ``auto_commit_interval_ms`` has passed."""
    while not stop():
        batch = consumer.poll(timeout_ms=poll_ms)
        for records in batch.values():
            for record in records:
                handle(record)


def loop_sync(consumer: Any, handle: Handle, stop: Stop, poll_ms: int = POLL_MS) -> None:
    """Synchronous commit per batch (notebook 03): process the batch, then block in
    ``commit()`` until the broker has stored the new positions."""
    while not stop():
        batch = consumer.poll(timeout_ms=poll_ms)
        for records in batch.values():
            for record in records:
                handle(record)
        if batch:
            consumer.commit()


def loop_sync_per_record(consumer: Any, handle: Handle, stop: Stop, poll_ms: int = POLL_MS) -> None:
    """Synchronous commit per record (notebook 03): the narrowest replay window and
    the slowest loop; the offset committed is the *next* record to read."""
    while not stop():
        batch = consumer.poll(timeout_ms=poll_ms)
        for tp, records in batch.items():
            for record in records:
                handle(record)
                consumer.commit({tp: OffsetAndMetadata(record.offset + 1, "", -1)})


def loop_async(consumer: Any, handle: Handle, stop: Stop, poll_ms: int = POLL_MS,
               on_commit: OnCommit | None = None) -> None:
    """Asynchronous commit per batch (notebook 04): ``commit_async`` sends and returns at
    once; ``on_commit(offsets, result_or_exception)`` runs later, inside a future
    ``poll()`` or ``commit*()`` call. A failed async commit is not retried."""
    while not stop():
        batch = consumer.poll(timeout_ms=poll_ms)
        for records in batch.values():
            for record in records:
                handle(record)
        if batch:
            consumer.commit_async(callback=on_commit)


def loop_combined(consumer: Any, handle: Handle, stop: Stop, poll_ms: int = POLL_MS,
                  on_commit: OnCommit | None = None) -> None:
    """Async in the loop, one sync commit on the way out (notebook 05): fast while
    running, and the final position is stored (or the error raised) before close."""
    try:
        while not stop():
            batch = consumer.poll(timeout_ms=poll_ms)
            for records in batch.values():
                for record in records:
                    handle(record)
            if batch:
                consumer.commit_async(callback=on_commit)
    finally:
        consumer.commit()


_LOOPS: dict[str, Callable[..., None]] = {
    "none": loop_none,
    "auto": loop_auto,
    "sync": loop_sync,
    "sync_per_record": loop_sync_per_record,
    "async": loop_async,
    "combined": loop_combined,
}
MODES: tuple[str, ...] = tuple(_LOOPS)


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

    @property
    def records_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0


def consume(
    mode: str,
    topic: str,
    group_id: str,
    *,
    max_records: int | None = None,
    idle_ms: int = 2000,
    max_seconds: float | None = None,
    process: Handle | None = None,
    tracer: CommitTracer | None = None,
    on_commit: OnCommit | None = None,
    poll_ms: int = POLL_MS,
    bootstrap: str | None = None,
    **consumer_settings: Any,
) -> ConsumeResult:
    """Consume ``topic`` in group ``group_id`` with one commit mode (notebooks 02-06).

    Stops after ``max_records`` (checked once per poll, so a whole batch may finish),
    after ``idle_ms`` with no new record once records have flowed, or after
    ``max_seconds``. ``process(record)`` is called for each record; ``tracer`` sees
    every commit; async callbacks are collected in ``ConsumeResult.callbacks`` and
    passed on to ``on_commit``. Other keywords are kafka-python consumer settings.
    """
    if mode not in _LOOPS:
        raise ValueError(f"unknown commit mode {mode!r}; choose one of {', '.join(MODES)}")
    if max_records is not None and max_records < 0:
        raise ValueError(f"max_records must be >= 0, not {max_records!r}")
    settings = {"enable_auto_commit": mode == "auto", **consumer_settings}
    if mode != "auto" and settings["enable_auto_commit"]:
        raise ValueError(f"mode {mode!r} commits by hand: leave enable_auto_commit off")
    consumer = make_consumer(topic, group_id=group_id, bootstrap=bootstrap, **settings)
    if tracer is not None:
        tracer.attach(consumer)

    processed = 0
    polls = 0
    last: dict[int, int] = {}
    callbacks: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    last_record_at = t0
    reason = ""

    def handle(record: Any) -> None:
        nonlocal processed, last_record_at
        if process is not None:
            process(record)
        processed += 1
        last[record.partition] = record.offset
        last_record_at = time.perf_counter()

    def stop() -> bool:
        nonlocal polls, reason
        polls += 1
        now = time.perf_counter()
        if max_records is not None and processed >= max_records:
            reason = "max_records"
        elif max_seconds is not None and now - t0 >= max_seconds:
            reason = "max_seconds"
        elif processed and (now - last_record_at) * 1000 >= idle_ms:
            reason = "idle"
        elif not processed and (now - t0) * 1000 >= max(idle_ms, 10_000) and max_records != 0:
            reason = "nothing to read"
        return bool(reason)

    def commit_callback(offsets: Any, result: Any) -> None:
        callbacks.append({
            "at": round(time.perf_counter() - t0, 6),
            "offsets": {f"{tp.topic}:{tp.partition}": om.offset for tp, om in offsets.items()},
            "result": f"{type(result).__name__}: {result}" if isinstance(result, BaseException)
            else repr(result),
        })
        if on_commit is not None:
            on_commit(offsets, result)

    loop = _LOOPS[mode]
    kwargs: dict[str, Any] = {"poll_ms": poll_ms}
    if mode in ("async", "combined"):
        kwargs["on_commit"] = commit_callback
    try:
        loop(consumer, handle, stop, **kwargs)
        seconds = time.perf_counter() - t0  # the loop's time; close() comes after
    finally:
        consumer.close(autocommit=(mode == "auto"))
    return ConsumeResult(mode, processed, polls - 1, seconds, reason or "stopped",
                         dict(sorted(last.items())), callbacks)


def show_source(obj: Any) -> None:
    """Show a helper's source code in the notebook, highlighted (notebooks 02-05)."""
    import inspect

    from IPython.display import Code, display

    display(Code(inspect.getsource(obj), language="python"))
