"""Commit tracing: every commit attempt a consumer makes, with timing and outcome (notebook 02).

``tracer = CommitTracer(); tracer.attach(consumer)`` wraps the consumer's group
coordinator, so it sees every commit kafka-python makes, including the ones you
did not ask for (auto commits inside ``poll()``, the commit inside ``close()``):

* ``auto``: periodic auto commit, sent asynchronously from inside ``poll()``;
* ``auto-sync``: auto commit done synchronously by ``close()`` or a rebalance;
* ``sync``: ``consumer.commit()``; ``async``: ``consumer.commit_async()``.

Each :class:`CommitAttempt` has the offsets, when it was asked for, when the
broker's answer arrived, when the user's callback ran (async), and the outcome.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["CommitAttempt", "CommitTracer"]

log = logging.getLogger(__name__)


@dataclass
class CommitAttempt:
    """One commit attempt, as the tracer saw it (times in seconds since the tracer began)."""

    id: int
    mode: str  # "auto", "auto-sync", "sync", "async"
    offsets: dict[str, int]  # "topic:partition" -> committed offset (next record to read)
    started: float
    completed: float | None = None  # the broker's answer arrived (or the call raised)
    callback_at: float | None = None  # async only: when the callback actually ran
    outcome: str = "pending"  # "success", "error" or "pending"
    error: str | None = None  # "ExceptionType: message"
    thread: str = ""

    @property
    def latency_ms(self) -> float | None:
        return None if self.completed is None else (self.completed - self.started) * 1000


def _fmt_offsets(offsets: Any) -> dict[str, int]:
    return {f"{tp.topic}:{tp.partition}": int(getattr(om, "offset", om))
            for tp, om in sorted(offsets.items(), key=lambda kv: (kv[0].topic, kv[0].partition))}


def _fmt_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class CommitTracer:
    """Records every commit attempt of the consumers it is attached to (notebook 02).

    ``sink``, if given, is called with each attempt's row (as :meth:`rows` gives it)
    the moment the attempt finishes (success or error), so a caller can write the
    commit history out as it happens; the crash lab (notebook 02) appends it to a
    file that survives a SIGKILL. Attempts still pending when the process dies never
    reach the sink. An exception raised by the sink is logged, never propagated.
    """

    def __init__(self, sink: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.t0 = time.perf_counter()
        self.attempts: list[CommitAttempt] = []
        self.sink = sink
        self._lock = threading.Lock()

    def now(self) -> float:
        """Seconds since the tracer was created (the time axis of every attempt)."""
        return time.perf_counter() - self.t0

    def _new(self, mode: str, offsets: Any) -> CommitAttempt:
        with self._lock:
            attempt = CommitAttempt(len(self.attempts), mode, _fmt_offsets(offsets), self.now(),
                                    thread=threading.current_thread().name)
            self.attempts.append(attempt)
        return attempt

    def _finish(self, attempt: CommitAttempt, exc: BaseException | None) -> None:
        if attempt.completed is None:
            attempt.completed = self.now()
        if exc is None:
            attempt.outcome = "success"
        else:
            attempt.outcome, attempt.error = "error", _fmt_error(exc)
        if self.sink is not None:
            try:
                self.sink({**asdict(attempt), "latency_ms": attempt.latency_ms})
            except Exception:  # a broken sink must not break the consumer it watches
                log.exception("CommitTracer sink failed")

    def attach(self, consumer: Any) -> Any:
        """Trace ``consumer``'s commits from now on; returns the consumer."""
        coord = consumer._coordinator
        if getattr(coord, "_course_tracer", None) is not None:
            raise ValueError("this consumer already has a CommitTracer attached")
        coord._course_tracer = self
        orig_sync = coord.commit_offsets_sync
        orig_async = coord.commit_offsets_async
        orig_auto_sync = coord._maybe_auto_commit_offsets_sync
        auto_callback = coord._commit_offsets_async_on_complete
        state = {"auto_sync": False}

        def maybe_auto_commit_offsets_sync(*args: Any, **kwargs: Any) -> Any:
            state["auto_sync"] = True
            try:
                return orig_auto_sync(*args, **kwargs)
            finally:
                state["auto_sync"] = False

        def commit_offsets_sync(offsets: Any, timeout_ms: Any = None) -> Any:
            if not offsets:
                return orig_sync(offsets, timeout_ms=timeout_ms)
            attempt = self._new("auto-sync" if state["auto_sync"] else "sync", offsets)
            try:
                result = orig_sync(offsets, timeout_ms=timeout_ms)
            except BaseException as exc:
                self._finish(attempt, exc)
                raise
            self._finish(attempt, None)
            return result

        def commit_offsets_async(offsets: Any, callback: Callable | None = None) -> Any:
            if not offsets:  # nothing consumed yet (an auto commit during a slow join): no request is sent
                return orig_async(offsets, callback)
            is_auto = callback == auto_callback
            attempt = self._new("auto" if is_auto else "async", offsets)
            user_callback = callback or coord.config["default_offset_commit_callback"]

            def traced_callback(offs: Any, res_or_exc: Any) -> Any:
                attempt.callback_at = self.now()
                if attempt.outcome == "pending":
                    self._finish(attempt, res_or_exc if isinstance(res_or_exc, BaseException) else None)
                return user_callback(offs, res_or_exc)

            # With the coordinator unknown, kafka-python returns the coordinator-lookup
            # future instead; then only the callback tells how the commit ended.
            commit_future = not coord.coordinator_unknown()
            future = orig_async(offsets, traced_callback)

            def on_done(value: Any) -> None:
                # Runs when the broker's answer arrives (before the callback, which waits for poll()).
                if attempt.outcome == "pending":
                    self._finish(attempt, value if isinstance(value, BaseException) else None)

            if future is not None and commit_future:
                future.add_both(on_done)
            return future

        coord._maybe_auto_commit_offsets_sync = maybe_auto_commit_offsets_sync
        coord.commit_offsets_sync = commit_offsets_sync
        coord.commit_offsets_async = commit_offsets_async
        return consumer

    # ------------------------------------------------------------ views

    def rows(self) -> list[dict[str, Any]]:
        """The attempts as plain dicts (JSON-ready), with ``latency_ms``."""
        with self._lock:
            return [{**asdict(a), "latency_ms": a.latency_ms} for a in self.attempts]

    def summary(self) -> dict[str, Any]:
        """Counts per mode and outcome, and commit latency percentiles in ms."""
        rows = self.rows()
        lat = sorted(r["latency_ms"] for r in rows if r["latency_ms"] is not None)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 3) if lat else None

        by: dict[str, int] = {}
        for r in rows:
            key = f"{r['mode']}/{r['outcome']}"
            by[key] = by.get(key, 0) + 1
        return {"attempts": len(rows), "by_mode_outcome": by,
                "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99),
                               "max": lat[-1] if lat else None}}

    def last_committed(self) -> dict[str, int]:
        """The highest successfully committed offset per ``topic:partition``."""
        best: dict[str, int] = {}
        for r in self.rows():
            if r["outcome"] == "success":
                for k, v in r["offsets"].items():
                    best[k] = max(best.get(k, -1), v)
        return best
