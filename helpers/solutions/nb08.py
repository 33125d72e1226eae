"""Reference solutions for notebook 08 (delivery guarantees). Open one only once you have tried.

``hp.solve("nb08_...")`` calls them when the tests set ``SOLVE_EXERCISES = True``;
``hp.show_solution("nb08_...")`` shows the code.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from helpers.guarantees import already_applied, apply_effect, open_effects


def nb08_predict_amo_lost(kill_at: int, batch: int) -> int:
    """At-most-once killed while processing record ``kill_at`` (one partition, full batches of
    ``batch``): the batch was committed before any of it was processed, so the records of that
    batch after ``kill_at`` are never processed by anyone."""
    return (-kill_at) % batch


def nb08_predict_committed_count(n_messages: int) -> int:
    """Exactly-once: a read_committed reader sees each input's output once, whatever the crash."""
    return n_messages


def nb08_predict_fenced_reader() -> str:
    """The fenced producer's record sits in an aborted transaction: only read_uncommitted returns it."""
    return "read_uncommitted"


def nb08_dropped(trial: Any) -> int:
    """Records run 2 read again whose effect run 1 had applied: run 1's records at or beyond the
    group's committed offset when it died, except the one it died in (killed inside ``process()``,
    before ``apply_effect``)."""
    rep = trial.report
    committed = {int(p): (v or 0) for p, v in rep.committed_before.items()}
    run1 = [e for e in rep.ledger if e["run"] == 1]
    beyond = [e for e in run1 if e["offset"] >= committed.get(int(e["partition"]), 0)]
    return len(beyond) - 1


def nb08_idempotent_loop(consumer: Any, process: Callable[[Any], None],
                         running: Callable[[], bool]) -> None:
    """Effectively-once: at-least-once commits, and a record whose effect is already applied is dropped."""
    db = open_effects(consumer.config["group_id"])
    me = consumer.config["client_id"]
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    if already_applied(db, record):
                        continue
                    process(record)
                    apply_effect(db, record, me)
            if batch:
                consumer.commit()
    finally:
        db.close()
        consumer.close()
