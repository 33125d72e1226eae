"""Reference solutions for notebook 07 (what commits cost). Try the exercise first."""
from __future__ import annotations

import math
from typing import Any


def nb07_predict_callback_ran() -> bool:
    """Prediction (notebook 07): has a ``commit_async`` callback run once the broker's answer is in?

    No. kafka-python's I/O thread receives the answer and only queues the callback;
    the queue is run by the consumer's own thread at the start of ``poll()``,
    ``commit()`` and ``commit_async()`` (``_invoke_completed_offset_commit_callbacks``
    in ``kafka/coordinator/consumer.py``). Until one of those is called, nothing runs it.
    """
    return False


def nb07_predict_per_record_wait(round_trip_ms: float = 1.0) -> str:
    """Prediction (notebook 07): how much longer a record takes with a sync commit after it.

    Theory, not a measurement: the loop now also waits for one commit round trip per
    record, a request to the broker and its answer; with the broker on the same machine
    that is about a millisecond. Bands: A < 10 µs, B < 0.1 ms, C < 10 ms, D beyond.
    """
    ms = round_trip_ms
    return "A" if ms < 0.01 else "B" if ms < 0.1 else "C" if ms < 10 else "D"


def nb07_min_batches(n_messages: int, max_poll_records: int = 500) -> int:
    """Exercise (notebook 07): the fewest batches, hence sync-per-batch commits, for ``n_messages``."""
    return math.ceil(n_messages / max_poll_records)


def nb07_slowest_mode(table: Any) -> str:
    """Exercise (notebook 07): the mode with the highest ratio, kafka-python, plain style."""
    return str(table.loc[("kafka-python", "plain")]["ratio"].idxmax())


def nb07_ck_per_record_commits(result: Any) -> int:
    """Exercise (notebook 07): commits of confluent-kafka's sync-per-record loop (median of rounds)."""
    return int(result.row("confluent-kafka", "sync_per_record")["commits"])


def nb07_article_ms_per_commit(article_seconds: dict[str, float], messages: int = 100_000,
                               per_batch: int = 500) -> float:
    """Exercise (notebook 07): ms per commit if the article's whole sync-async gap were commit waits."""
    gap_s = article_seconds["sync"] - article_seconds["async"]
    commits = messages / per_batch
    return round(gap_s / commits * 1000, 2)
