"""Reference solutions for notebook 06 (``06_your_consumer.ipynb``): your production consumer.

Try each exercise first; ``hp.show_solution("nb06_batching_loop")`` opens one on purpose.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kafka.structs import OffsetAndMetadata

#: How often the batching loop commits, in records (the exercise's number).
COMMIT_EVERY = 10


def nb06_predict_bad_record() -> str:
    """"c": the course's deserializers never raise; the record arrives as ``hp.Undecodable``."""
    return "c"


def nb06_predict_members_after_sigterm() -> int:
    """0: the loop's ``finally`` calls ``close()``, which sends LeaveGroup before the process exits."""
    return 0


def nb06_predict_reread() -> int:
    """0: the final sync ``commit()`` stored the position of everything processed."""
    return 0


def nb06_committed_offset(last_processed_offset: int) -> int:
    """A committed offset is the next record to read: the last processed offset plus one."""
    return last_processed_offset + 1


def nb06_poll_setting() -> str:
    """The longest gap between two ``poll()`` calls before kafka-python makes the member leave."""
    return "max_poll_interval_ms"


def nb06_batching_loop(consumer: Any, process: Callable[[Any], None],
                       running: Callable[[], bool]) -> None:
    """Commit synchronously every ``COMMIT_EVERY`` records, mid-batch, with explicit offsets
    (the next record to read of each partition); commit the rest on a clean stop; always close.
    A SIGKILL then replays at most ``COMMIT_EVERY`` records."""
    done: dict[Any, OffsetAndMetadata] = {}  # partition -> next offset to read, not committed yet
    since_commit = 0  # records processed since the last commit
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            for tp, records in batch.items():
                for record in records:
                    process(record)
                    done[tp] = OffsetAndMetadata(record.offset + 1, "", -1)
                    since_commit += 1
                    if since_commit >= COMMIT_EVERY:
                        consumer.commit(dict(done))  # sync: returns once the broker stored it
                        done.clear()
                        since_commit = 0
        consumer.commit()  # a clean stop: the position of everything processed, confirmed
    finally:
        consumer.close()
