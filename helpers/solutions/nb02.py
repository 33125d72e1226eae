"""Reference solutions for notebook 02 (auto commit).

Try each exercise first; open a solution on purpose with
``hp.show_solution("nb02_auto_loop")``. The notebook's tests run with
``SOLVE_EXERCISES = True``, which fills the answer cells with ``hp.solve(...)``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

# ---------------------------------------------------------------------------- predictions


def nb02_predict_idle_commits() -> int:
    """kafka-python sends auto commits from inside poll(); a consumer that does not poll sends none."""
    return 0


def nb02_predict_committed_after_poll(returned_by_first_poll: int) -> int:
    """The commit inside the next poll() covers what earlier polls returned (processed or not):
    offsets 0 .. returned-1, so the bookmark is the next one, ``returned``."""
    return returned_by_first_poll


def nb02_predict_handoff() -> str:
    """Records handed to a worker are committed by the next poll() before they are processed:
    a crash skips them."""
    return "lost"


# ---------------------------------------------------------------------------- answers


def nb02_replayed(report: Any) -> int:
    """Run 2 starts each partition at the offset committed when run 1 died: every record run 1
    processed at or above it is processed again."""
    return sum(1 for e in report.ledger
               if e["run"] == 1 and e["offset"] >= (report.committed_before.get(e["partition"]) or 0))


def nb02_committed_after_failure(returned_by_poll: int) -> int:
    """close() (autocommit=True by default) commits the position: everything poll() returned,
    including the failed record and the ones after it that were never processed."""
    return returned_by_poll


# ---------------------------------------------------------------------------- write code


def nb02_auto_loop(consumer: Any, process: Callable[[Any], None],
                   running: Callable[[], bool]) -> None:
    """An at-least-once auto-commit loop: every record of a batch is processed before the next
    poll() (which may auto-commit it), and close() runs on the way out. close() commits the
    position only after a clean stop: after an exception the rest of the batch was never
    processed, and committing it would lose it (``with consumer:`` behaves the same way)."""
    clean = False
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    process(record)
        clean = True
    finally:
        consumer.close(autocommit=clean)
