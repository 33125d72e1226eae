"""Reference solutions for notebook 09 (operating a group's offsets).

Open one only after trying: ``hp.show_solution("nb09_reset_to_datetime")``.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any


def nb09_predict_resets_active_group() -> bool:
    """Will ``kafka-consumer-groups --reset-offsets ... --execute`` reset a group that has a member?

    No: it asks for the group's state first and resets only an Empty (or Dead) group, because a
    running member would overwrite the new offsets with its next commit.
    """
    return False


def nb09_predict_shift(before: Mapping[int, int], shift: int, log_start: Mapping[int, int],
                       log_end: Mapping[int, int]) -> dict[int, int]:
    """Where ``--shift-by shift`` leaves each partition: committed + shift, clamped into the log."""
    return {p: min(log_end[p], max(log_start[p], offset + shift)) for p, offset in before.items()}


def nb09_predict_latest_reads() -> int:
    """How many of the records already in the topic a ``latest`` consumer of a group whose
    offsets were deleted reads: none, it starts at the log end."""
    return 0


def nb09_to_offset(target: int, log_start: int, log_end: int) -> int:
    """``--to-offset target`` on a partition: the tool clamps the target into [log start, log end]."""
    return min(log_end, max(log_start, target))


def nb09_reset_to_datetime(admin: Any, group_id: str, topic: str, when: datetime) -> dict[Any, Any]:
    """Reset ``group_id`` on every partition of ``topic`` to the first record at or after ``when``.

    One admin call: ``reset_group_offsets`` with an ``OffsetTimestamp`` (milliseconds since the
    epoch) per partition; the broker looks up the offset (ListOffsets by timestamp). The group
    must have no member. Returns what the call returned: ``{TopicPartition: {"error", "offset"}}``.
    """
    from kafka import TopicPartition
    from kafka.admin import OffsetTimestamp

    (desc,) = admin.describe_topics([topic])
    ms = OffsetTimestamp(int(when.timestamp() * 1000))
    return admin.reset_group_offsets(
        group_id, {TopicPartition(topic, p["partition_index"]): ms for p in desc["partitions"]})
