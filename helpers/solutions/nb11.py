"""Reference solutions for notebook 11 (offsets you choose). Try the exercises first."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kafka import ConsumerRebalanceListener

from helpers.offset_store import open_store, result_of, store_path, stored_offsets


def nb11_predict_restart_first(processed: int) -> int:
    """The group committed the last processed record's own offset, ``processed - 1``: a
    restart starts AT the committed offset, so it reads that record again."""
    return processed - 1


def nb11_predict_none() -> str:
    """No committed offset and no reset policy: kafka-python cannot pick a position, so
    ``poll()`` raises (``SubscriptionState.reset_missing_positions`` in 3.0.12)."""
    return "NoOffsetForPartitionError"


def nb11_predict_earliest_after_delete(delete_before: int) -> int:
    """The committed offset is below the log start: the fetch fails with OFFSET_OUT_OF_RANGE
    and 'earliest' resets to the first offset that still exists, ``delete_before``."""
    return delete_before


def nb11_replay_from(tp: Any, when_ms: int) -> int:
    """The first offset whose timestamp is at or after ``when_ms``, asked of the broker."""
    from helpers.consumers import make_consumer

    consumer = make_consumer(enable_auto_commit=False)
    try:
        return int(consumer.offsets_for_times({tp: when_ms})[tp].offset)
    finally:
        consumer.close()


def nb11_db_duplicates(trials: Any) -> int:
    """Result rows the Kafka-commit loop stored twice, over all its trials."""
    rows = trials[trials["store"] == "offsets committed to Kafka"]
    return int(rows["db_duplicates"].sum())


class _SeekToStored(ConsumerRebalanceListener):
    def __init__(self, consumer: Any, path: Any) -> None:
        self.consumer, self.path = consumer, path

    def on_partitions_assigned(self, assigned: Any) -> None:
        stored = stored_offsets(self.path)  # its own connection: this runs on kafka-python's I/O thread
        for tp in assigned:
            if tp in stored:
                self.consumer.seek(tp, stored[tp])
            else:
                self.consumer.seek_to_beginning(tp)

    def on_partitions_revoked(self, revoked: Any) -> None:
        pass  # nothing to save: each offset was stored with its result


def nb11_store_loop(consumer: Any, process: Callable[[Any], None], running: Callable[[], bool]) -> None:
    """Each result and its partition's next offset in one SQLite transaction; seek to the
    stored offsets on assignment; no Kafka commits."""
    path = store_path(consumer.config["group_id"])
    db = open_store(path)
    consumer.subscribe(sorted(consumer.subscription()), listener=_SeekToStored(consumer, path))
    try:
        while running():
            for records in consumer.poll(timeout_ms=100).values():
                for record in records:
                    process(record)
                    with db:  # one transaction: both rows, or neither
                        db.execute("INSERT INTO results (topic, partition, offset, result, pid) "
                                   "VALUES (?, ?, ?, ?, 0)",
                                   (record.topic, record.partition, record.offset, result_of(record)))
                        db.execute("INSERT INTO offsets (topic, partition, next_offset) VALUES (?, ?, ?) "
                                   "ON CONFLICT (topic, partition) "
                                   "DO UPDATE SET next_offset = excluded.next_offset",
                                   (record.topic, record.partition, record.offset + 1))
    finally:
        db.close()
        consumer.close()
