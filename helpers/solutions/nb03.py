"""Reference solutions for notebook 03 (``03_sync_commit.ipynb``): synchronous commit.

Try each exercise first; ``hp.show_solution("nb03_sync_loop")`` opens one on purpose.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


def nb03_predict_per_record_commits(n_records: int) -> int:
    """What theory predicts: ``loop_sync_per_record`` calls ``commit()`` once after every
    record it processed, so one commit request per record, whatever the batch size."""
    return n_records


def nb03_predict_kicked() -> str:
    """"CommitFailedError": once the member has left the group it has no generation, so
    kafka-python refuses the commit at once, without asking the broker (not retriable)."""
    return "CommitFailedError"


def nb03_predict_per_record_replay() -> int:
    """1: the crash lab kills the worker right after a record is processed, before that
    record's ``commit()``; the committed offset is that record, so run 2 reads it again."""
    return 1


def nb03_sync_replayed(report: Any) -> int:
    """Records processed twice after the sync-per-batch crash: the batch that was being
    processed had not been committed, so run 2 replays the part of it that run 1 finished."""
    return int(report.killed_at["in_batch"])


def nb03_sync_loop(consumer: Any, process: Callable[[Any], None],
                   running: Callable[[], bool]) -> None:
    """Sync commit per batch: process every record of the batch, then ``commit()``, which
    returns once the broker stored the new positions; ``close()`` in ``finally``."""
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
