"""Reference solutions for notebook 01 (offsets as bookmarks).

Try each exercise first; open a solution on purpose with
``hp.show_solution("nb01_offsets_partition")``. The notebook's tests run with
``SOLVE_EXERCISES = True``, which fills the answer cells with ``hp.solve(...)``.
"""
from __future__ import annotations

from typing import Any

# ---------------------------------------------------------------------------- predictions


def nb01_predict_committed_partitions() -> int:
    """Auto commit is off and nobody called commit(): no partition has a bookmark yet."""
    return 0


def nb01_predict_resume_reads(n_messages: int, consume_first: int) -> int:
    """A restarted consumer of the same group starts at the committed offsets
    (last processed + 1), so it reads exactly what the first one left."""
    return n_messages - consume_first


def nb01_predict_latest_reads(n_messages: int) -> int:
    """A brand-new group has no bookmark; kafka-python's default auto_offset_reset decides."""
    from kafka import KafkaConsumer

    return 0 if KafkaConsumer.DEFAULT_CONFIG["auto_offset_reset"] == "latest" else n_messages


# ---------------------------------------------------------------------------- answers


def nb01_offsets_partition(group_id: str, partitions: int) -> int:
    """Kafka's GroupCoordinatorService.partitionFor: Utils.abs(groupId.hashCode()) % partitions."""
    from helpers.inspection import java_string_hashcode, kafka_abs

    return kafka_abs(java_string_hashcode(group_id)) % partitions


def nb01_committed_offset(last_processed_offset: int) -> int:
    """commit() stores the position: the next record to read, one past the last one processed."""
    return last_processed_offset + 1


def nb01_lag(table: Any) -> int:
    """Records the next consumer reads: per partition, log end minus where it starts.

    It starts at the committed offset; a partition with no bookmark starts where
    auto_offset_reset says ('earliest' in the course: the log start).
    """
    start = table["committed"].fillna(table["log_start"])
    return int((table["log_end"] - start).sum())
