"""Reference solutions for notebook 05 (``05_combined_commit.ipynb``): async in the loop, sync on the way out.

Try each exercise first; ``hp.show_solution("nb05_combined_loop")`` opens one on purpose.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..runner import log_commit_failure


def nb05_predict_committed_after_error(fail_at: int, batch: int) -> int:
    """What theory predicts: the async commits covered every *finished* batch, so the group
    keeps the first offset of the batch in which ``process()`` raised (one partition from 0)."""
    return (fail_at // batch) * batch


def nb05_predict_leave() -> str:
    """"c": kafka-python's I/O thread keeps heartbeating, so the session never expires, but the
    same thread sees that ``poll()`` has not been called for ``max_poll_interval_ms`` and
    sends LeaveGroup itself."""
    return "c"


def nb05_clean_graceful_modes(table: Any) -> list[str]:
    """The modes whose graceful exit replayed nothing, from the notebook's trial table."""
    graceful = table[(table["exit"] == "graceful") & (table["duplicates"] == 0)]
    return sorted(graceful["mode"])


def nb05_combined_crash_duplicates(table: Any) -> int:
    """How many records the combined mode processed twice after its SIGKILL."""
    row = table[(table["mode"] == "combined") & (table["exit"] == "crash")]
    return int(row["duplicates"].iloc[0])


def nb05_combined_loop(consumer: Any, process: Callable[[Any], None],
                       running: Callable[[], bool]) -> None:
    """Async commit per batch, one sync commit on a clean stop, ``close()`` in ``finally``."""
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    process(record)
            if batch:
                consumer.commit_async(callback=log_commit_failure)
        consumer.commit()  # only on a clean stop: after an exception the position covers unprocessed records
    finally:
        consumer.close()
