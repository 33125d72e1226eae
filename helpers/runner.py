"""The loop contract: one way to run any consumer loop, yours or the course's (notebooks 02 and 06).

A commit-mode **loop** is a plain function you could paste into a service::

    def consume_loop(consumer, process, running):
        try:
            while running():
                batch = consumer.poll(timeout_ms=100)
                for records in batch.values():
                    for record in records:
                        process(record)
                if batch:
                    consumer.commit_async(callback=log_commit_failure)
            consumer.commit()          # a clean stop: the final position, confirmed
        finally:
            consumer.close()           # leave the group now, not after session_timeout_ms

* ``consumer``: a ``KafkaConsumer`` already subscribed, built with the settings of the
  commit mode the loop claims (:mod:`helpers.modes`);
* ``process(record)``: the work for one record, called once per record;
* ``running()``: ``True`` while the service should go on; ``False`` once it was asked
  to stop (SIGTERM, or the runner has seen what it needed). Check it once per poll;
* the loop owns its commits **and** ``close()``.

This module runs such a loop in the notebook's process (:func:`run_loop`, used by
:func:`helpers.modes.consume` and the benchmark); the crash lab runs the same loop in a
child process (:mod:`helpers.crashlab.worker`). :class:`Until` is the one stop rule
all of them use, and :func:`with_retries` the one retry policy.
"""
from __future__ import annotations

import importlib
import inspect
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "Loop",
    "LoopRun",
    "Stalled",
    "Until",
    "load_loop",
    "log_commit_failure",
    "loop_ref",
    "run_loop",
    "kafka_retriable",
    "with_retries",
]

Loop = Callable[..., None]  # loop(consumer, process, running[, on_commit=...]) -> None
T = TypeVar("T")


class Stalled(RuntimeError):
    """A consumer got no records for too long (a stuck group join); retried by :func:`with_retries`."""


def log_commit_failure(offsets: Any, result: Any) -> None:
    """An async commit callback that reports failures on stderr (notebook 04).

    kafka-python calls it as ``callback(offsets, result)``; on success ``result`` is
    ``None``, on failure the exception. A failed async commit is never retried.
    """
    if isinstance(result, BaseException):
        print(f"async commit of {len(offsets)} partition(s) failed: "
              f"{type(result).__name__}: {result}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- loops by name

def load_loop(loop: Loop | str) -> Loop:
    """A loop function from itself or from ``"module:function"`` (re-read from disk; notebook 06).

    A module you just wrote with ``%%writefile my_loop.py`` is imported afresh each time,
    so an edited file takes effect without restarting the kernel.
    """
    if callable(loop):
        return loop
    if not isinstance(loop, str) or ":" not in loop:
        raise ValueError(f"a loop is a function or 'module:function', not {loop!r}")
    module_name, _, func = loop.partition(":")
    try:
        module = importlib.import_module(module_name)
        module = importlib.reload(module) if not module_name.startswith("helpers.") else module
    except ImportError as e:
        raise ValueError(f"cannot import {module_name!r} for loop {loop!r}: {e}. Is the file "
                         f"{module_name.replace('.', '/')}.py in the notebook's folder?") from e
    found = getattr(module, func, None)
    if not callable(found):
        raise ValueError(f"{module_name!r} has no function {func!r} (loop {loop!r})")
    return found


def loop_ref(loop: Loop | str) -> str:
    """``"module:function"`` for a loop another process can import (notebook 06).

    A function defined in a notebook cell lives in ``__main__``, which a child process
    cannot import: write it to a file first (``%%writefile my_loop.py``) and import it.
    """
    if isinstance(loop, str):
        load_loop(loop)  # fail here, in the notebook, not in the child
        return loop
    module, name = getattr(loop, "__module__", None), getattr(loop, "__qualname__", "")
    if module == "__main__":
        raise ValueError(
            f"loop {name!r} was defined in a notebook cell, and the crash lab runs it in another "
            f"process, which cannot see the notebook. Save the cell as a module "
            f"(%%writefile my_loop.py), then pass loop='my_loop:{name}'.")
    if not callable(loop) or not module or "<" in name or "." in name:
        raise ValueError(f"{loop!r} is not a module-level function another process can import")
    return f"{module}:{name}"


# ---------------------------------------------------------------------------- stopping

class Until:
    """When a runner's ``running()`` turns ``False`` (notebooks 02 and 06).

    After ``max_records`` processed (checked once per poll, so a batch finishes), after
    ``idle_s`` without a new record once records have flowed, after ``max_seconds``,
    when ``drained()`` says the topic is read to its end, or when :meth:`stop` was
    called (a SIGTERM handler calls it). ``nothing_s``: give up if no record at all
    came in that long (``reason`` is then ``"nothing to read"``).
    """

    def __init__(self, *, max_records: int | None = None, idle_s: float | None = None,
                 max_seconds: float | None = None, nothing_s: float | None = None,
                 drained: Callable[[], bool] | None = None) -> None:
        self.max_records, self.idle_s, self.max_seconds = max_records, idle_s, max_seconds
        self.nothing_s, self.drained = nothing_s, drained
        self.t0 = self.last = time.perf_counter()
        self.count = 0
        self.polls = 0
        self.reason = ""

    def done(self, n: int = 1) -> None:
        """Count ``n`` records as processed."""
        self.count += n
        self.last = time.perf_counter()

    def stop(self, reason: str = "stop signal") -> None:
        """Ask the loop to stop at its next ``running()`` check."""
        self.reason = self.reason or reason

    def running(self) -> bool:
        """The loop's ``running()``: ``False`` from the first time a rule says stop."""
        self.polls += 1
        if self.reason:
            return False
        now = time.perf_counter()
        if self.max_records is not None and self.count >= self.max_records:
            self.reason = "max_records"
        elif self.max_seconds is not None and now - self.t0 >= self.max_seconds:
            self.reason = "max_seconds"
        elif self.count and self.idle_s is not None and now - self.last >= self.idle_s:
            self.reason = "idle"
        elif not self.count and self.nothing_s is not None and now - self.t0 >= self.nothing_s:
            self.reason = "nothing to read"
        elif self.drained is not None and self.drained():
            self.reason = "drained"
        return not self.reason


# ---------------------------------------------------------------------------- running

@dataclass
class LoopRun:
    """How one :func:`run_loop` call went (notebook 06)."""

    seconds: float  # the loop's own time, close() included when the loop closes
    closed_by_loop: bool  # False: the loop forgot close(); the runner closed it
    error: str | None  # the exception the loop raised, "Type: message"


def _accepts(func: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def run_loop(loop: Loop | str, consumer: Any, process: Callable[[Any], None],
             running: Callable[[], bool], *, reraise: bool = True, close_forgotten: bool = True,
             **extras: Any) -> LoopRun:
    """Run ``loop(consumer, process, running)`` by the contract above (notebooks 02 and 06).

    ``extras`` (such as ``on_commit=``) are passed only to loops that accept them. If
    the loop returns without closing the consumer, the runner closes it *without*
    committing (``close(autocommit=False)``), so your loop's bookkeeping is what counts,
    and says so in :attr:`LoopRun.closed_by_loop`; ``close_forgotten=False`` leaves it
    open (the crash lab's worker, which then exits as the loop left it).
    """
    func = load_loop(loop)
    kwargs = {k: v for k, v in extras.items() if v is not None and _accepts(func, k)}
    t0 = time.perf_counter()
    error: BaseException | None = None
    try:
        func(consumer, process, running, **kwargs)
    except BaseException as exc:  # reported (and re-raised) after the consumer is closed
        error = exc
    seconds = time.perf_counter() - t0
    closed = bool(getattr(consumer, "_closed", False))
    if not closed and close_forgotten:
        consumer.close(autocommit=False)
    if error is not None and reraise:
        raise error
    return LoopRun(seconds, closed, None if error is None else f"{type(error).__name__}: {error}")


def with_retries(run: Callable[[int], T], *, attempts: int = 4,
                 retry_on: tuple[type[BaseException], ...] = (Stalled,),
                 retry_if: Callable[[BaseException], bool] | None = None,
                 pause_s: float = 0.0) -> tuple[T, int]:
    """``run(attempt)`` until it does not raise; returns (result, retries) (notebook 07).

    The course's one retry policy. An exception is retried if it is one of ``retry_on``
    or ``retry_if(exc)`` says so, at most ``attempts`` times, ``pause_s`` apart; the last
    failure is raised. Uses: a consumer that joined its group but was assigned nothing
    (kafka-python 3.0.12 can, under load) is retried with a fresh group; an admin call
    that meets a retriable error (a coordinator still loading after a broker restart)
    is asked again (:func:`kafka_retriable`).
    """
    for attempt in range(attempts):
        try:
            return run(attempt), attempt
        except BaseException as exc:
            again = isinstance(exc, retry_on) or (retry_if is not None and retry_if(exc))
            if not again or attempt == attempts - 1:
                raise
            if pause_s:
                time.sleep(pause_s)
    raise AssertionError("unreachable")


def kafka_retriable(exc: BaseException) -> bool:
    """True for kafka-python errors marked retriable (NotCoordinatorError...; notebook 03)."""
    return bool(getattr(exc, "retriable", False))
