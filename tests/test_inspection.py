"""helpers.inspection: the partition formula, byte-exact decoding, and the broker agreeing."""
from __future__ import annotations

import struct
import uuid

import pytest

from helpers.inspection import (
    RECORD_FIELDS,
    commit_records,
    decode_offsets_record,
    java_string_hashcode,
    kafka_abs,
    offsets_partition_for,
    offsets_table,
    offsets_topic_partitions,
    offsets_topic_snapshot,
    read_offsets_topic,
)

INT_MIN = -(2**31)


def _power_sum_hash(s: str) -> int:
    """An independent String.hashCode: sum(u[i] * 31^(n-1-i)) over UTF-16 units, wrapped to int32."""
    raw = s.encode("utf-16-be", "surrogatepass")
    units = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]
    n = len(units)
    total = sum(u * 31 ** (n - 1 - i) for i, u in enumerate(units)) % 2**32
    return total - 2**32 if total >= 2**31 else total


# ---------------------------------------------------------------- String.hashCode and partitionFor


@pytest.mark.parametrize("s, expected", [
    ("", 0),                      # "".hashCode() == 0
    ("a", 97),                    # one char: its code unit
    ("ab", 97 * 31 + 98),         # 3105
    ("é", 233),                   # U+00E9, one UTF-16 unit
    ("\U0001F600", 0xD83D * 31 + 0xDE00),  # outside the BMP: two surrogates, 1772899
    # printed by `java` (String.hashCode) on this machine while writing the helper:
    ("test_group_1", -993617980),
    ("polygenelubricants", INT_MIN),
])
def test_java_string_hashcode_matches_java(s, expected):
    assert java_string_hashcode(s) == expected
    assert _power_sum_hash(s) == expected


@pytest.mark.parametrize("s", ["test_group_1", "readers-1a2b3c", "x" * 500, "Ω≈ç√∫", "\ud800 lone"])
def test_hashcode_is_a_signed_32_bit_int_equal_to_the_power_sum(s):
    h = java_string_hashcode(s)
    assert INT_MIN <= h < 2**31
    assert h == _power_sum_hash(s)


def test_test_group_1_hashes_to_partition_30_by_hand_not_28():
    # Horner by hand over "test_group_1", reduced mod 2**32 at the end (same as Java's overflow).
    h = 0
    for ch in "test_group_1":
        h = h * 31 + ord(ch)
    assert h % 2**32 == 3301349316  # the unsigned view of -993617980
    assert java_string_hashcode("test_group_1") == 3301349316 - 2**32
    assert offsets_partition_for("test_group_1") == 993617980 % 50 == 30  # not the article's 28


def test_kafka_abs_is_not_math_abs_at_min_value():
    assert kafka_abs(INT_MIN) == 0  # Java's Math.abs(MIN_VALUE) stays MIN_VALUE
    assert kafka_abs(-5) == 5 and kafka_abs(7) == 7 and kafka_abs(0) == 0
    assert kafka_abs(2**31 - 1) == 2**31 - 1 and kafka_abs(INT_MIN + 1) == 2**31 - 1
    # the group whose hashCode is MIN_VALUE lands on partition 0, not 48 (Python abs) or -48 (Java Math.abs)
    assert offsets_partition_for("polygenelubricants") == 0
    assert abs(INT_MIN) % 50 == 48


@pytest.mark.parametrize("bad", [2**31, INT_MIN - 1, 1.0, True, "3"])
def test_kafka_abs_rejects_non_int32(bad):
    with pytest.raises(ValueError, match="32-bit int"):
        kafka_abs(bad)


def test_offsets_partition_for_stays_in_range_and_rejects_bad_counts():
    assert offsets_partition_for("a", 50) == 97 % 50
    assert offsets_partition_for("a", 1) == 0
    assert offsets_partition_for("", 50) == 0
    for p in (1, 3, 50, 200):
        assert 0 <= offsets_partition_for("some-group", p) < p
    with pytest.raises(ValueError, match="partitions"):
        offsets_partition_for("g", 0)
    with pytest.raises(ValueError, match="partitions"):
        offsets_partition_for("g", True)
    with pytest.raises(TypeError, match="group_id must be a str"):
        offsets_partition_for(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes a str"):
        java_string_hashcode(b"bytes")  # type: ignore[arg-type]


# ---------------------------------------------------------------- hand-built records


def s16(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def compact(text: str | None) -> bytes:
    if text is None:
        return b"\x00"
    raw = text.encode()
    assert len(raw) + 1 < 0x80
    return bytes([len(raw) + 1]) + raw


def commit_key(group: str, topic: str, partition: int, key_type: int = 1) -> bytes:
    return struct.pack(">h", key_type) + s16(group) + s16(topic) + struct.pack(">i", partition)


TOPIC_ID = uuid.UUID("5881d3e8-2b13-45e6-8311-dd634a81d736")


def test_real_broker_record_decodes_to_the_byte():
    # An OffsetCommit record Kafka 4.3.1 wrote (key type 1, value v4 with the topicId tag).
    key = bytes.fromhex("0001000f65787067726f75702d623366363335000a6578702d37323561383800000002")
    value = bytes.fromhex("0004000000000000000a0000000001000001a209d4c3e9"
                          "0100105881d3e82b1345e68311dd634a81d736")
    r = decode_offsets_record(key, value)
    assert set(r) == set(RECORD_FIELDS)
    assert r["error"] is None
    assert (r["kind"], r["key_type"], r["group"], r["topic"], r["committed_partition"]) == \
        ("offset_commit", 1, "expgroup-b3f635", "exp-725a88", 2)
    assert (r["value_version"], r["committed_offset"], r["leader_epoch"], r["metadata"]) == (4, 10, 0, "")
    assert r["commit_timestamp"] == 0x1A209D4C3E9
    assert r["topic_id"] == str(TOPIC_ID)
    assert r["expire_timestamp"] is None and r["tombstone"] is False


@pytest.mark.parametrize("version, body, want", [
    # v0: offset, metadata, commitTimestamp
    (0, struct.pack(">q", 42) + s16("m0") + struct.pack(">q", 1000),
     dict(committed_offset=42, leader_epoch=None, metadata="m0", commit_timestamp=1000,
          expire_timestamp=None)),
    # v1: + expireTimestamp
    (1, struct.pack(">q", 43) + s16("m1") + struct.pack(">qq", 1001, 2002),
     dict(committed_offset=43, leader_epoch=None, metadata="m1", commit_timestamp=1001,
          expire_timestamp=2002)),
    # v2: like v0
    (2, struct.pack(">q", 44) + s16("") + struct.pack(">q", 1002),
     dict(committed_offset=44, leader_epoch=None, metadata="", commit_timestamp=1002, expire_timestamp=None)),
    # v3: leaderEpoch after offset
    (3, struct.pack(">qi", 45, 7) + s16("m3") + struct.pack(">q", 1003),
     dict(committed_offset=45, leader_epoch=7, metadata="m3", commit_timestamp=1003, expire_timestamp=None)),
    # v4: flexible: compact string, then an empty tagged-field section
    (4, struct.pack(">qi", 46, -1) + compact("m4") + struct.pack(">q", 1004) + b"\x00",
     dict(committed_offset=46, leader_epoch=-1, metadata="m4", commit_timestamp=1004, topic_id=None)),
])
def test_offset_commit_value_v0_to_v4_decode_field_by_field(version, body, want):
    r = decode_offsets_record(commit_key("g", "t", 3), struct.pack(">h", version) + body)
    assert r["error"] is None, r["error"]
    assert r["value_version"] == version
    for field, value in want.items():
        assert r[field] == value, field


def test_legacy_key_type_0_and_64_bit_offsets_decode():
    value = struct.pack(">hq", 0, 2**40 + 5) + s16("ünï") + struct.pack(">q", -1)
    r = decode_offsets_record(commit_key("grp", "tpc", 2**31 - 1, key_type=0), value)
    assert r["error"] is None
    assert (r["kind"], r["key_type"], r["committed_partition"]) == ("offset_commit", 0, 2**31 - 1)
    assert (r["committed_offset"], r["metadata"], r["commit_timestamp"]) == (2**40 + 5, "ünï", -1)


def test_v4_topic_id_tag_is_read_and_unknown_tags_are_kept():
    tags = b"\x02" + b"\x00\x10" + TOPIC_ID.bytes + b"\x05\x02\xab\xcd"
    value = struct.pack(">hqi", 4, 9, 0) + compact("") + struct.pack(">q", 5) + tags
    r = decode_offsets_record(commit_key("g", "t", 0), value)
    assert r["error"] is None
    assert r["topic_id"] == str(TOPIC_ID)
    assert r["detail"] == {"unknown_tags": {5: "abcd"}}


def test_tombstone_has_key_fields_and_no_value():
    r = decode_offsets_record(commit_key("g", "t", 1), None)
    assert r["tombstone"] is True and r["error"] is None
    assert (r["group"], r["topic"], r["committed_partition"], r["committed_offset"]) == ("g", "t", 1, None)
    r = decode_offsets_record(struct.pack(">h", 2) + s16("g2"), None)
    assert (r["kind"], r["group"], r["tombstone"]) == ("group_metadata", "g2", True)


def _member_v3() -> bytes:
    return (s16("m-1") + struct.pack(">h", -1) + s16("client") + s16("/127.0.0.1")
            + struct.pack(">ii", 300000, 45000) + struct.pack(">i", 3) + b"abc" + struct.pack(">i", 0))


def test_group_metadata_v3_decodes_its_member_list():
    value = (struct.pack(">h", 3) + s16("consumer") + struct.pack(">i", 2) + s16("range") + s16("m-1")
             + struct.pack(">q", 123) + struct.pack(">i", 1) + _member_v3())
    r = decode_offsets_record(struct.pack(">h", 2) + s16("grp"), value)
    assert r["error"] is None
    assert (r["kind"], r["group"], r["value_version"]) == ("group_metadata", "grp", 3)
    d = r["detail"]
    assert (d["protocol_type"], d["generation"], d["protocol"], d["leader"],
            d["current_state_timestamp"]) == ("consumer", 2, "range", "m-1", 123)
    assert d["members"] == [{
        "member_id": "m-1", "group_instance_id": None, "client_id": "client", "client_host": "/127.0.0.1",
        "rebalance_timeout_ms": 300000, "session_timeout_ms": 45000,
        "subscription_bytes": 3, "assignment_bytes": 0,
    }]


def test_group_metadata_v4_flexible_and_an_empty_v0_decode():
    member = (compact("m") + compact(None) + compact("c") + compact("h") + struct.pack(">ii", 1, 2)
              + b"\x03xy" + b"\x01" + b"\x00")  # compact bytes len+1, member tags
    value = (struct.pack(">h", 4) + compact("consumer") + struct.pack(">i", 5) + compact(None) + compact(None)
             + struct.pack(">q", 9) + b"\x02" + member + b"\x00")
    r = decode_offsets_record(struct.pack(">h", 2) + s16("g"), value)
    assert r["error"] is None, r["error"]
    d = r["detail"]
    assert (d["generation"], d["protocol"], d["leader"]) == (5, None, None)
    assert d["members"][0]["subscription_bytes"] == 2 and d["members"][0]["assignment_bytes"] == 0
    v0 = (struct.pack(">h", 0) + s16("") + struct.pack(">i", 0) + struct.pack(">hh", -1, -1)
          + struct.pack(">i", 0))
    r = decode_offsets_record(struct.pack(">h", 2) + s16("g"), v0)
    assert r["error"] is None
    assert r["detail"]["members"] == [] and r["detail"]["current_state_timestamp"] is None


def test_newer_record_types_are_reported_as_type_n():
    key = struct.pack(">h", 5) + s16("kip848-group") + s16("member-1")  # ConsumerGroupMemberMetadataKey
    r = decode_offsets_record(key, struct.pack(">h", 0) + b"\x00\x01\x02")
    assert r["error"] is None
    assert (r["kind"], r["key_type"], r["group"], r["value_version"]) == ("type 5", 5, "kip848-group", 0)
    assert r["detail"] == {"schema": "ConsumerGroupMemberMetadata"}
    r = decode_offsets_record(struct.pack(">h", 999), b"")
    assert (r["kind"], r["group"], r["error"]) == ("type 999", None, None)


@pytest.mark.parametrize("key, value, message", [
    (None, b"", "key: null"),
    (b"", b"", "record type needs 2 byte"),
    (b"\x00\x01\x00\x05ab", b"", "group needs 5 byte"),
    (struct.pack(">h", -3), b"", "negative"),
    (commit_key("g", "t", 0) + b"\x00", None, "unexpected byte"),
    (commit_key("g", "t", 0), struct.pack(">h", 9) + b"\x00" * 20, "unknown version 9"),
    (commit_key("g", "t", 0), struct.pack(">hq", 3, 1), "leaderEpoch needs 4"),
    (commit_key("g", "t", 0), struct.pack(">hq", 0, 1) + struct.pack(">h", -1) + b"\x00" * 8, "null"),
    (commit_key("g", "t", 0), struct.pack(">hq", 0, 1) + b"\x00\x02\xff\xfe" + b"\x00" * 8, "not UTF-8"),
    (commit_key("g", "t", 0), struct.pack(">hqi", 4, 1, 0) + b"\x80\x80\x80\x80\x80\x01", "longer than 5"),
    (commit_key("g", "t", 0), struct.pack(">hqi", 4, 1, 0) + b"\x01" + struct.pack(">q", 0)
     + b"\x01\x00\x03abc", "topicId tag has 3 bytes"),
    (commit_key("g", "t", 0), struct.pack(">hq", 0, 1) + s16("") + struct.pack(">q", 0) + b"!", "unexpected"),
    (struct.pack(">h", 2) + s16("g"), struct.pack(">h", 3) + s16("consumer"), "generation needs 4"),
])
def test_bad_bytes_are_reported_not_raised(key, value, message):
    r = decode_offsets_record(key, value)
    assert r["error"] and message in r["error"], r["error"]
    assert set(r["detail"]) == {"raw_key", "raw_value"}
    assert r["detail"]["raw_key"] == (None if key is None else key.hex())


def test_non_bytes_input_is_a_type_error():
    with pytest.raises(TypeError, match="key must be bytes"):
        decode_offsets_record("0001", None)  # type: ignore[arg-type]


# ---------------------------------------------------------------- on the broker


@pytest.mark.broker
def test_commit_lands_in_the_predicted_partition(kafka):
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    from helpers.topics import create_topic, seed_messages, unique_name

    topic = create_topic(unique_name("insp"), 2, bootstrap=kafka.bootstrap)
    seed_messages(topic, 10, partition=0, bootstrap=kafka.bootstrap)
    group = unique_name("insp-group")
    before = offsets_table(group, topic, bootstrap=kafka.bootstrap)
    assert before["committed"].isna().all() and before["lag"].isna().all()
    assert before["log_end"].tolist() == [10, 0]

    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=group,
                             enable_auto_commit=False, bootstrap_timeout_ms=10_000)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        snapshot = offsets_topic_snapshot(kafka.bootstrap)
        consumer.commit({tp: OffsetAndMetadata(7, "bookmark", -1)})
        table = offsets_table(group, topic, consumer=consumer, bootstrap=kafka.bootstrap)
        assert table.loc[0, "committed"] == 7 and table.loc[0, "lag"] == 3
        assert table.loc[0, "position"] == 7  # a new assignment starts at the committed offset
        assert table["position"].isna().tolist() == [False, True]  # partition 1 is not assigned
    finally:
        consumer.close(autocommit=False)

    partitions = offsets_topic_partitions(kafka.bootstrap)
    assert partitions == 50  # Kafka's default offsets.topic.num.partitions
    predicted = offsets_partition_for(group, partitions)
    # every partition of __consumer_offsets, from where it ended before the commit
    records = commit_records(group, kafka.bootstrap, since=snapshot, include_raw=True)
    commits = [r for r in records if r["kind"] == "offset_commit"]
    assert [(r["topic"], r["committed_partition"], r["committed_offset"], r["metadata"])
            for r in commits] == [(topic, 0, 7, "bookmark")]
    assert {r["partition"] for r in records} == {predicted}
    assert all(r["error"] is None for r in records)
    (c,) = commits
    again = decode_offsets_record(bytes.fromhex(c["raw_key"]), bytes.fromhex(c["raw_value"]))
    assert again["committed_offset"] == 7
    assert c["value_version"] == 4 and c["leader_epoch"] == -1  # Kafka 4.3.1 writes v4; no epoch given

    # the same record, reading only the predicted partition
    whole = [r for r in read_offsets_topic(kafka.bootstrap, partitions=[predicted], since=snapshot)
             if r["group"] == group and r["kind"] == "offset_commit"]
    assert [(r["partition"], r["offset"]) for r in whole] == [(c["partition"], c["offset"])]
    assert offsets_topic_snapshot(kafka.bootstrap)[predicted] > c["offset"]


@pytest.mark.broker
def test_offsets_table_rejects_unknown_topic(kafka):
    with pytest.raises(ValueError, match="does not exist"):
        offsets_table("g", "no-such-topic-zz9", bootstrap=kafka.bootstrap)
    with pytest.raises(ValueError, match="non-empty str"):
        offsets_table("", "t", bootstrap=kafka.bootstrap)


@pytest.mark.broker
def test_nonsense_scan_arguments_are_value_or_type_errors(kafka):
    with pytest.raises(ValueError, match="timeout_s"):
        read_offsets_topic(kafka.bootstrap, timeout_s=0)
    with pytest.raises(ValueError, match="since must be"):
        commit_records("g", kafka.bootstrap, since={0: -1})
    with pytest.raises(ValueError, match="no partition"):
        read_offsets_topic(kafka.bootstrap, partitions=[50])
    with pytest.raises(TypeError, match="group_id"):
        commit_records(None, kafka.bootstrap)  # type: ignore[arg-type]
