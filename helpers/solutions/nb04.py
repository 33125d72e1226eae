"""Reference solutions for notebook 04 (``04_async_commit.ipynb``): asynchronous commit with a callback.

Try each exercise first; ``hp.show_solution("nb04_async_loop")`` opens one on purpose.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def nb04_predict_success_result() -> str:
    """"None": kafka-python 3.0.12 passes the commit future's value, and a successful
    OffsetCommit request resolves to ``None`` (not ``True``, not the response)."""
    return "None"


def nb04_predict_callbacks_run(n_commits: int) -> int:
    """One fewer than the commits: each callback runs inside the *next* ``poll()`` or
    ``commit*()`` call, and after the last commit the loop goes straight to ``close()``,
    which runs no callbacks."""
    return n_commits - 1


def nb04_predict_callback_order(offsets: list[int]) -> list[int]:
    """Reversed: kafka-python pushes each finished commit with ``appendleft`` and takes them
    with ``popleft``, so callbacks queued before one ``poll()`` run newest first."""
    return list(reversed(offsets))


def nb04_false_alerts(callbacks: list[dict[str, Any]]) -> int:
    """A callback testing ``result is not True`` alerts on every call; the false alerts are
    the calls for commits that succeeded, whose result is ``None``."""
    return sum(1 for c in callbacks if c["result"] == "None")


def nb04_on_commit(offsets: Any, result: Any) -> None:
    """Log failed async commits only: ``result`` is ``None`` on success, the exception on failure."""
    if isinstance(result, Exception):
        print(f"async commit of {len(offsets)} partition(s) failed: "
              f"{type(result).__name__}: {result}", file=sys.stderr, flush=True)


def nb04_async_loop(consumer: Any, process: Callable[[Any], None],
                    running: Callable[[], bool]) -> None:
    """Async commit per batch, after the batch is processed; failures reach
    :func:`nb04_on_commit` later; ``close()`` in ``finally``."""
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    process(record)
            if batch:
                consumer.commit_async(callback=nb04_on_commit)
    finally:
        consumer.close()
