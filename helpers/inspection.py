"""Look at a group's bookmarks: offsets per partition, and ``__consumer_offsets`` (notebook 01).

Two views of the same facts:

* :func:`offsets_table` asks the broker (ListOffsets, OffsetFetch) and the consumer
  (its position) and puts log start, log end, committed offset, position and lag
  side by side, one row per partition.
* :func:`commit_records` reads the records the group coordinator itself wrote to the
  internal topic ``__consumer_offsets`` and decodes them to the byte, following the
  message schemas shipped in Apache Kafka 4.3.1 (``group-coordinator`` jar,
  ``common/message/*.json``). Which partition of that topic holds a group's records is
  :func:`offsets_partition_for`: ``Utils.abs(groupId.hashCode()) % partitions``,
  exactly as ``GroupCoordinatorService.partitionFor`` computes it.

Record layout on the wire (``CoordinatorRecordSerde``): the key is an int16 *record
type* followed by the key fields at version 0; the value is an int16 *version*
followed by the value fields at that version, or null (a tombstone).

=====  ==============================  ==============================================
type   key                             value
=====  ==============================  ==============================================
0, 1   group, topic, partition         OffsetCommitValue v0-v4 (v4+ flexible)
2      group                           GroupMetadataValue v0-v4 (v4+ flexible)
3+     group id first, then others     KIP-848 consumer / share / streams groups:
                                       reported as ``type N``, not decoded
=====  ==============================  ==============================================

Nothing here unpickles or evaluates broker bytes; bytes that do not fit the schema
are reported in the ``error`` field of the record, never raised.
"""
from __future__ import annotations

import struct
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from kafka import KafkaConsumer

__all__ = [
    "OFFSETS_TOPIC",
    "DEFAULT_OFFSETS_PARTITIONS",
    "RECORD_FIELDS",
    "RECORD_TYPE_NAMES",
    "java_string_hashcode",
    "kafka_abs",
    "offsets_partition_for",
    "name_with_hashcode",
    "offsets_topic_partitions",
    "offsets_table",
    "decode_offsets_record",
    "offsets_topic_snapshot",
    "read_offsets_topic",
    "commit_records",
]

OFFSETS_TOPIC = "__consumer_offsets"
#: Kafka's default for ``offsets.topic.num.partitions``.
DEFAULT_OFFSETS_PARTITIONS = 50
_INT32_MIN = -(2**31)

#: Record types (the int16 that starts every key) in Kafka 4.3.1's group coordinator.
RECORD_TYPE_NAMES: dict[int, str] = {
    0: "LegacyOffsetCommit",
    1: "OffsetCommit",
    2: "GroupMetadata",
    3: "ConsumerGroupMetadata",
    4: "ConsumerGroupPartitionMetadata",
    5: "ConsumerGroupMemberMetadata",
    6: "ConsumerGroupTargetAssignmentMetadata",
    7: "ConsumerGroupTargetAssignmentMember",
    8: "ConsumerGroupCurrentMemberAssignment",
    10: "ShareGroupMemberMetadata",
    11: "ShareGroupMetadata",
    12: "ShareGroupTargetAssignmentMetadata",
    13: "ShareGroupTargetAssignmentMember",
    14: "ShareGroupCurrentMemberAssignment",
    15: "ShareGroupStatePartitionMetadata",
    16: "ConsumerGroupRegularExpression",
    17: "StreamsGroupMetadata",
    19: "StreamsGroupMemberMetadata",
    20: "StreamsGroupTargetAssignmentMetadata",
    21: "StreamsGroupTargetAssignmentMember",
    22: "StreamsGroupCurrentMemberAssignment",
    23: "StreamsGroupTopology",
}

#: The keys of every dict :func:`decode_offsets_record` returns, in display order
#: (:func:`read_offsets_topic` adds ``partition``, ``offset`` and ``timestamp`` first).
RECORD_FIELDS: tuple[str, ...] = (
    "kind", "key_type", "group", "topic", "committed_partition", "committed_offset",
    "leader_epoch", "metadata", "commit_timestamp", "expire_timestamp", "topic_id",
    "value_version", "tombstone", "detail", "error",
)


# ---------------------------------------------------------------- the partition formula


def java_string_hashcode(s: str) -> int:
    """Java's ``String.hashCode()``: 32-bit signed, over UTF-16 code units (notebook 01).

    ``s[0]*31^(n-1) + ... + s[n-1]`` with int overflow; a character outside the BMP
    counts as its two surrogates, as in Java.
    """
    if not isinstance(s, str):
        raise TypeError(f"java_string_hashcode takes a str, not {type(s).__name__}")
    units = s.encode("utf-16-be", "surrogatepass")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + ((units[i] << 8) | units[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def kafka_abs(n: int) -> int:
    """Kafka's ``Utils.abs`` (notebook 01): ``abs(n)``, except ``Integer.MIN_VALUE`` -> 0.

    Java's ``Math.abs(Integer.MIN_VALUE)`` overflows and stays negative; Kafka maps it
    to 0 so that a partition number is never negative.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not _INT32_MIN <= n < 2**31:
        raise ValueError(f"kafka_abs takes a 32-bit int, not {n!r}")
    return 0 if n == _INT32_MIN else abs(n)


def offsets_partition_for(group_id: str, partitions: int = DEFAULT_OFFSETS_PARTITIONS) -> int:
    """The ``__consumer_offsets`` partition that holds ``group_id``'s commits (notebook 01).

    ``Utils.abs(groupId.hashCode()) % partitions``, as Kafka's
    ``GroupCoordinatorService.partitionFor`` computes it. ``partitions`` is the
    broker's ``offsets.topic.num.partitions`` (50 unless changed; see
    :func:`offsets_topic_partitions`). Not Python's ``hash()``, which is salted per process.
    """
    if not isinstance(group_id, str):
        raise TypeError(f"group_id must be a str, not {type(group_id).__name__}")
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise ValueError(f"partitions must be a whole number >= 1, not {partitions!r}")
    return kafka_abs(java_string_hashcode(group_id)) % partitions


def name_with_hashcode(start: str, target: int) -> str:
    """``start``, or ``start`` plus 7 characters, whose Java ``hashCode()`` is ``target`` (notebook 01).

    ``hashCode(start + s) = hashCode(start)·31^7 + hashCode-sum of s`` (mod 2^32), so the
    suffix is ``target`` minus the first term, written in base 31 with the characters
    ``'0'`` .. ``'N'`` (31^7 > 2^32: every value has such a suffix). Notebook 01 uses it
    on a shared broker for a group of the learner's own whose hashCode is
    ``Integer.MIN_VALUE``, like ``"polygenelubricants"``.
    """
    if isinstance(target, bool) or not isinstance(target, int) or not _INT32_MIN <= target < 2**31:
        raise ValueError(f"target must be a 32-bit int, not {target!r}")
    if java_string_hashcode(start) == target:
        return start
    k, zero = 7, ord("0")
    need = (target - java_string_hashcode(start) * 31**k - zero * sum(31**i for i in range(k))) % 2**32
    digits = []
    for _ in range(k):
        need, d = divmod(need, 31)
        digits.append(d)
    return start + "".join(chr(zero + d) for d in reversed(digits))


# ---------------------------------------------------------------- decoding, byte by byte


class _DecodeError(ValueError):
    pass


class _Reader:
    """Kafka's wire types over one byte string; every short read is a _DecodeError."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = bytes(data)
        self.pos = 0
        self.what = what

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, field: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise _DecodeError(
                f"{self.what}: {field} needs {n} byte(s) at byte {self.pos}, "
                f"but only {self.left()} remain"
            )
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int16(self, field: str) -> int:
        return struct.unpack(">h", self.take(2, field))[0]

    def int32(self, field: str) -> int:
        return struct.unpack(">i", self.take(4, field))[0]

    def int64(self, field: str) -> int:
        return struct.unpack(">q", self.take(8, field))[0]

    def uvarint(self, field: str) -> int:
        """Unsigned varint, at most 5 bytes (Kafka's ByteUtils.readUnsignedVarint)."""
        value = 0
        for i in range(5):
            (b,) = self.take(1, field)
            value |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                return value
        raise _DecodeError(f"{self.what}: {field} is a varint longer than 5 bytes")

    def _text(self, raw: bytes, field: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _DecodeError(f"{self.what}: {field} is not UTF-8 ({e})") from None

    def string(self, field: str, *, nullable: bool = False, compact: bool = False) -> str | None:
        """int16-length string, or (compact) uvarint length+1; -1 / 0 means null."""
        n = self.uvarint(field) - 1 if compact else self.int16(field)
        if n == -1:
            if nullable:
                return None
            raise _DecodeError(f"{self.what}: {field} is null, but the schema does not allow null")
        if n < -1:
            raise _DecodeError(f"{self.what}: {field} has invalid length {n}")
        return self._text(self.take(n, field), field)

    def bytes_(self, field: str, *, compact: bool = False) -> bytes | None:
        n = self.uvarint(field) - 1 if compact else self.int32(field)
        if n == -1:
            return None
        if n < -1:
            raise _DecodeError(f"{self.what}: {field} has invalid length {n}")
        return self.take(n, field)

    def array_len(self, field: str, *, compact: bool = False) -> int:
        n = self.uvarint(field) - 1 if compact else self.int32(field)
        if n < 0:
            raise _DecodeError(f"{self.what}: {field} is a null or negative-length array ({n})")
        return n

    def tagged_fields(self, field: str) -> dict[int, bytes]:
        """A flexible version's tagged-field section: count, then (tag, size, bytes)."""
        out: dict[int, bytes] = {}
        for _ in range(self.uvarint(f"{field} count")):
            tag = self.uvarint(f"{field} tag")
            size = self.uvarint(f"{field} tag {tag} size")
            out[tag] = self.take(size, f"{field} tag {tag}")
        return out


def _empty_record() -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(RECORD_FIELDS)
    out["tombstone"] = False
    return out


def _kind(key_type: int) -> str:
    if key_type in (0, 1):
        return "offset_commit"
    if key_type == 2:
        return "group_metadata"
    return f"type {key_type}"


def _decode_key(key: bytes, out: dict[str, Any]) -> None:
    r = _Reader(key, "key")
    key_type = r.int16("record type")
    out["key_type"] = key_type
    out["kind"] = _kind(key_type)
    if key_type < 0:
        raise _DecodeError(f"key: record type {key_type} is negative, not a coordinator record")
    if key_type in (0, 1):  # (Legacy)OffsetCommitKey, version 0
        out["group"] = r.string("group")
        out["topic"] = r.string("topic")
        out["committed_partition"] = r.int32("partition")
    elif key_type == 2:  # GroupMetadataKey, version 0
        out["group"] = r.string("group")
    else:
        # KIP-848 consumer, share and streams group records: every key Kafka 4.3.1
        # defines starts with the group id (a version-0 string); best effort.
        try:
            out["group"] = r.string("group id")
        except _DecodeError:
            out["group"] = None
        out["detail"] = {"schema": RECORD_TYPE_NAMES.get(key_type, "unknown to Kafka 4.3.1")}
        return
    if r.left():
        raise _DecodeError(f"key: {r.left()} unexpected byte(s) after the {out['kind']} key")


def _decode_offset_commit_value(value: bytes, out: dict[str, Any]) -> None:
    r = _Reader(value, "OffsetCommitValue")
    version = r.int16("version")
    out["value_version"] = version
    if not 0 <= version <= 4:
        raise _DecodeError(f"OffsetCommitValue: unknown version {version} (Kafka 4.3.1 knows 0-4)")
    flexible = version >= 4
    out["committed_offset"] = r.int64("offset")
    if version >= 3:
        out["leader_epoch"] = r.int32("leaderEpoch")
    out["metadata"] = r.string("metadata", compact=flexible)
    out["commit_timestamp"] = r.int64("commitTimestamp")
    if version == 1:
        out["expire_timestamp"] = r.int64("expireTimestamp")
    if flexible:
        tags = r.tagged_fields("tagged fields")
        topic_id = tags.pop(0, None)
        if topic_id is not None:
            if len(topic_id) != 16:
                raise _DecodeError(f"OffsetCommitValue: topicId tag has {len(topic_id)} bytes, not 16")
            out["topic_id"] = str(uuid.UUID(bytes=topic_id))
        if tags:
            out["detail"] = {"unknown_tags": {t: b.hex() for t, b in sorted(tags.items())}}
    if r.left():
        raise _DecodeError(f"OffsetCommitValue v{version}: {r.left()} unexpected byte(s) at the end")


def _decode_group_metadata_value(value: bytes, out: dict[str, Any]) -> None:
    r = _Reader(value, "GroupMetadataValue")
    version = r.int16("version")
    out["value_version"] = version
    if not 0 <= version <= 4:
        raise _DecodeError(f"GroupMetadataValue: unknown version {version} (Kafka 4.3.1 knows 0-4)")
    fx = version >= 4
    detail: dict[str, Any] = {
        "protocol_type": r.string("protocolType", compact=fx),
        "generation": r.int32("generation"),
        "protocol": r.string("protocol", nullable=True, compact=fx),
        "leader": r.string("leader", nullable=True, compact=fx),
        "current_state_timestamp": r.int64("currentStateTimestamp") if version >= 2 else None,
    }
    members = []
    for i in range(r.array_len("members", compact=fx)):
        m: dict[str, Any] = {"member_id": r.string(f"members[{i}].memberId", compact=fx)}
        m["group_instance_id"] = (
            r.string(f"members[{i}].groupInstanceId", nullable=True, compact=fx) if version >= 3 else None
        )
        m["client_id"] = r.string(f"members[{i}].clientId", compact=fx)
        m["client_host"] = r.string(f"members[{i}].clientHost", compact=fx)
        m["rebalance_timeout_ms"] = r.int32(f"members[{i}].rebalanceTimeout") if version >= 1 else None
        m["session_timeout_ms"] = r.int32(f"members[{i}].sessionTimeout")
        sub = r.bytes_(f"members[{i}].subscription", compact=fx)
        asg = r.bytes_(f"members[{i}].assignment", compact=fx)
        m["subscription_bytes"] = None if sub is None else len(sub)
        m["assignment_bytes"] = None if asg is None else len(asg)
        if fx:
            r.tagged_fields(f"members[{i}] tagged fields")
        members.append(m)
    detail["members"] = members
    if fx:
        r.tagged_fields("tagged fields")
    out["detail"] = detail
    if r.left():
        raise _DecodeError(f"GroupMetadataValue v{version}: {r.left()} unexpected byte(s) at the end")


def _as_bytes(data: Any, what: str) -> bytes | None:
    if data is None or isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{what} must be bytes or None, not {type(data).__name__}")


def decode_offsets_record(key: bytes | None, value: bytes | None) -> dict[str, Any]:
    """Decode one ``__consumer_offsets`` record to a dict of :data:`RECORD_FIELDS` (notebook 01).

    ``kind`` is ``offset_commit`` (key types 0 and 1), ``group_metadata`` (type 2) or
    ``type N`` (newer record types, e.g. KIP-848 groups: group id only, not decoded).
    A null value is a tombstone (``tombstone=True``: the commit or group was deleted).
    Fields absent from a record's version are ``None`` (e.g. ``leader_epoch`` before
    v3). ``topic_id`` (v4 tagged field) is shown like kafka-python's ``describe_topics``.
    Never raises on bad bytes: ``error`` says what did not fit, ``detail`` keeps the
    raw bytes as hex.
    """
    key = _as_bytes(key, "key")
    value = _as_bytes(value, "value")
    out = _empty_record()
    try:
        if key is None:
            raise _DecodeError("key: null (every coordinator record has a key)")
        _decode_key(key, out)
        if value is None:
            out["tombstone"] = True
        elif out["key_type"] in (0, 1):
            _decode_offset_commit_value(value, out)
        elif out["key_type"] == 2:
            _decode_group_metadata_value(value, out)
        elif len(value) >= 2:
            out["value_version"] = struct.unpack(">h", value[:2])[0]
    except _DecodeError as e:
        out["error"] = str(e)
        out["detail"] = {
            "raw_key": None if key is None else key.hex(),
            "raw_value": None if value is None else value.hex(),
        }
    return out


# ---------------------------------------------------------------- reading the broker


def _bootstrap(bootstrap: str | None) -> str:
    if bootstrap:
        return bootstrap
    from .broker import ensure_broker

    return ensure_broker().bootstrap


def offsets_topic_partitions(bootstrap: str | None = None) -> int | None:
    """How many partitions this broker's ``__consumer_offsets`` has (notebook 01).

    ``None`` if the topic does not exist yet: Kafka creates it when a group first
    needs its coordinator.
    """
    from .topics import admin_client

    with admin_client(bootstrap) as admin:
        (desc,) = admin.describe_topics([OFFSETS_TOPIC])
    if desc.get("error_code"):
        return None
    return len(desc["partitions"])


def offsets_topic_snapshot(bootstrap: str | None = None) -> dict[int, int]:
    """The end offset of every ``__consumer_offsets`` partition, now (notebook 01).

    Pass it as ``since=`` to :func:`read_offsets_topic` / :func:`commit_records` to read
    only the records written after this moment, in *every* partition: fast on a busy
    broker, and still no assumption about where a group's records go. ``{}`` if the
    topic does not exist yet (then everything written later is new).
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=_bootstrap(bootstrap), group_id=None,
                             enable_auto_commit=False, client_id="course-inspect-offsets",
                             bootstrap_timeout_ms=10_000)
    try:
        available = consumer.partitions_for_topic(OFFSETS_TOPIC)
        if not available:
            return {}
        tps = [TopicPartition(OFFSETS_TOPIC, p) for p in sorted(available)]
        return {tp.partition: off for tp, off in sorted(consumer.end_offsets(tps).items())}
    finally:
        consumer.close(autocommit=False)


def _check_since(since: dict[int, int] | None) -> None:
    if since is None:
        return
    if not isinstance(since, dict) or not all(
        isinstance(p, int) and isinstance(o, int) and o >= 0 for p, o in since.items()
    ):
        raise ValueError(
            "since must be {partition: offset} as returned by offsets_topic_snapshot(), "
            f"not {since!r}"
        )


def _scan(
    bootstrap: str | None,
    partitions: list[int] | None,
    since: dict[int, int] | None,
    timeout_s: float,
    include_raw: bool,
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> list[dict[str, Any]]:
    from kafka import KafkaConsumer, TopicPartition

    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
        raise ValueError(f"timeout_s must be a positive number of seconds, not {timeout_s!r}")
    _check_since(since)
    consumer = KafkaConsumer(
        bootstrap_servers=_bootstrap(bootstrap),
        group_id=None,
        enable_auto_commit=False,
        key_deserializer=None,
        value_deserializer=None,
        client_id="course-inspect-offsets",
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=8 * 1024 * 1024,  # commit records are tiny and many
        max_poll_records=100_000,
        bootstrap_timeout_ms=10_000,
    )
    try:
        available = consumer.partitions_for_topic(OFFSETS_TOPIC)
        if not available:
            return []
        wanted = sorted(available) if partitions is None else sorted(set(partitions))
        missing = sorted(set(wanted) - set(available))
        if missing:
            raise ValueError(
                f"{OFFSETS_TOPIC} has partitions 0..{max(available)}; there is no partition {missing}"
            )
        tps = [TopicPartition(OFFSETS_TOPIC, p) for p in wanted]
        consumer.assign(tps)
        first = consumer.beginning_offsets(tps)
        end = consumer.end_offsets(tps)
        start = {tp: min(end[tp], max(first[tp], (since or {}).get(tp.partition, 0))) for tp in tps}
        todo = {tp for tp in tps if end[tp] > start[tp]}
        for tp in tps:
            consumer.seek(tp, start[tp])
        consumer.pause(*(set(tps) - todo))
        found: list[dict[str, Any]] = []
        seen = 0
        deadline = time.monotonic() + timeout_s
        while todo:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"read {seen} record(s) of {OFFSETS_TOPIC} in {timeout_s:g} s but partitions "
                    f"{sorted(tp.partition for tp in todo)} are not read to the end; pass a larger "
                    "timeout_s, or since=offsets_topic_snapshot() taken before the commits to look at"
                )
            batch = consumer.poll(timeout_ms=int(min(left, 1.0) * 1000) or 1)
            for tp, records in batch.items():
                for rec in records:
                    if rec.offset >= end[tp]:
                        continue
                    seen += 1
                    row = {"partition": tp.partition, "offset": rec.offset, "timestamp": rec.timestamp}
                    row.update(decode_offsets_record(rec.key, rec.value))
                    if keep is not None and not keep(row):
                        continue
                    if include_raw:
                        row["raw_key"] = None if rec.key is None else bytes(rec.key).hex()
                        row["raw_value"] = None if rec.value is None else bytes(rec.value).hex()
                    found.append(row)
            for tp in list(todo):
                if consumer.position(tp) >= end[tp]:
                    todo.discard(tp)
                    consumer.pause(tp)
        found.sort(key=lambda r: (r["partition"], r["offset"]))
        return found
    finally:
        consumer.close(autocommit=False)


def read_offsets_topic(
    bootstrap: str | None = None,
    *,
    partitions: list[int] | None = None,
    since: dict[int, int] | None = None,
    timeout_s: float = 30.0,
    include_raw: bool = False,
) -> list[dict[str, Any]]:
    """The records in ``__consumer_offsets``, decoded (notebook 01).

    Uses a consumer with no group (``assign()``, so it commits nothing and joins
    nothing) and raw-bytes deserializers, and reads each partition (all, or
    ``partitions``) up to the end offset seen at the start: from its first offset,
    or from ``since`` (see :func:`offsets_topic_snapshot`). Each dict has
    ``partition``, ``offset``, ``timestamp`` (ms) and the :data:`RECORD_FIELDS`; with
    ``include_raw`` also ``raw_key`` / ``raw_value`` as hex (``None`` when null).
    Raises ``TimeoutError`` if the end is not reached within ``timeout_s`` seconds,
    rather than return a partial answer (a busy broker holds many commit records:
    kafka-python reads roughly 10,000 a second).
    """
    return _scan(bootstrap, partitions, since, timeout_s, include_raw)


def commit_records(
    group_id: str,
    bootstrap: str | None = None,
    *,
    topic: str | None = None,
    since: dict[int, int] | None = None,
    timeout_s: float = 30.0,
    include_raw: bool = False,
) -> list[dict[str, Any]]:
    """The ``__consumer_offsets`` records that belong to ``group_id``, decoded (notebook 01).

    Reads *every* partition of ``__consumer_offsets`` (see :func:`read_offsets_topic`;
    ``since`` limits it to records written after an :func:`offsets_topic_snapshot`),
    so the ``partition`` column shows where the records really are, whatever the
    formula predicts. ``topic`` keeps only offset commits for that topic. Records whose
    key could not be decoded (``error`` set, group unknown) are kept too, so nothing
    is hidden. ``include_raw`` adds the raw bytes as hex (``raw_key``, ``raw_value``).
    """
    if not isinstance(group_id, str):
        raise TypeError(f"group_id must be a str, not {type(group_id).__name__}")

    def keep(row: dict[str, Any]) -> bool:
        if row["error"] is not None and row["group"] is None:
            return True  # undecodable key: might be this group's, so show it
        return row["group"] == group_id and (topic is None or row["topic"] == topic)

    return _scan(bootstrap, None, since, timeout_s, include_raw, keep)


def offsets_table(
    group_id: str,
    topic: str,
    consumer: KafkaConsumer | None = None,
    bootstrap: str | None = None,
) -> pd.DataFrame:
    """One row per partition of ``topic``: where the log is, and where ``group_id`` is (notebook 01).

    Columns: ``partition``; ``log_start`` (earliest offset) and ``log_end`` (end offset,
    the high watermark: the offset the next record will get); ``committed`` (the
    group's committed offset: the next record the group will read); ``position`` (the
    given consumer's next offset to fetch, if it has the partition assigned); ``lag``
    = ``log_end - committed``.

    With no committed offset, ``committed`` and ``lag`` are ``<NA>``, as
    ``kafka-consumer-groups.sh --describe`` prints ``-`` for both: where such a group
    would start depends on the ``auto_offset_reset`` of its next consumer, which the
    broker does not know, so any number would be invented.
    """
    import pandas as pd
    from kafka import TopicPartition
    from kafka.admin import OffsetSpec

    from .topics import admin_client, group_offsets

    for name, val in (("group_id", group_id), ("topic", topic)):
        if not isinstance(val, str) or not val:
            raise ValueError(f"{name} must be a non-empty str, not {val!r}")
    bootstrap = _bootstrap(bootstrap)
    with admin_client(bootstrap) as admin:
        (desc,) = admin.describe_topics([topic])
        if desc.get("error_code") or not desc["partitions"]:
            raise ValueError(f"topic {topic!r} does not exist on {bootstrap}")
        tps = [TopicPartition(topic, p["partition_index"])
               for p in sorted(desc["partitions"], key=lambda p: p["partition_index"])]
        earliest = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in tps})
        latest = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
        committed = group_offsets(admin, group_id, tps)
    assigned = set(consumer.assignment()) if consumer is not None else set()
    rows = []
    for tp in tps:
        c = committed.get(tp)
        c_off = c.offset if c is not None and c.offset >= 0 else None
        pos = consumer.position(tp) if consumer is not None and tp in assigned else None
        rows.append({
            "partition": tp.partition,
            "log_start": earliest[tp].offset,
            "log_end": latest[tp].offset,
            "committed": c_off,
            "position": pos,
            "lag": None if c_off is None else latest[tp].offset - c_off,
        })
    columns = ["partition", "log_start", "log_end", "committed", "position", "lag"]
    df = pd.DataFrame({c: pd.array([r[c] for r in rows], dtype="Int64") for c in columns})
    df.attrs.update(group_id=group_id, topic=topic)
    return df
