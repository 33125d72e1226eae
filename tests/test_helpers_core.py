"""helpers core: serializers, the consumer factory's checks, topics and seeding."""
from __future__ import annotations

import pytest

import helpers as hp
from helpers.consumers import JsonDeserializer, JsonSerializer, TextDeserializer, Undecodable


def test_json_round_trips_and_none_stays_a_tombstone():
    ser, de = JsonSerializer(), JsonDeserializer()
    value = {"n": 3, "text": "offset ✓", "nested": [1, 2.5, None]}
    assert de.deserialize("t", [], ser.serialize("t", [], value)) == value
    assert ser.serialize("t", [], None) is None and de.deserialize("t", [], None) is None


@pytest.mark.parametrize("raw", [b"\x80\x04\x95pickle", b"{not json", b"\xff\xfe"])
def test_undecodable_bytes_are_kept_not_raised(raw):
    value = JsonDeserializer().deserialize("t", [], raw)
    assert isinstance(value, Undecodable) and value.raw == raw and value.error
    assert "Undecodable" in repr(value)


def test_text_deserializer_keeps_bad_bytes():
    assert TextDeserializer().deserialize("t", [], b"key-1") == "key-1"
    bad = TextDeserializer().deserialize("t", [], b"\xff")
    assert isinstance(bad, Undecodable) and bad.raw == b"\xff"


@pytest.mark.parametrize("settings, message", [
    ({"auto_commit_interval": 100}, "did you mean 'auto_commit_interval_ms'"),
    ({"auto.commit.interval.ms": 100}, "underscores"),
    ({"auto_commit_interval_ms": -5}, "positive"),
    ({"max_poll_records": 0}, "positive"),
    ({"auto_offset_reset": "beginning"}, "earliest"),
])
def test_consumer_factory_rejects_nonsense_before_connecting(settings, message):
    with pytest.raises(ValueError, match=message):
        hp.make_consumer("t", group_id="g", bootstrap="127.0.0.1:1", **settings)


def test_zero_partitions_and_negative_counts_are_rejected_before_connecting():
    with pytest.raises(ValueError, match="partitions"):
        hp.create_topic("x", 0, bootstrap="127.0.0.1:1")
    with pytest.raises(ValueError, match="n must be"):
        hp.seed_messages("x", -1, bootstrap="127.0.0.1:1")


def test_two_unique_names_with_one_prefix_differ():
    assert hp.unique_name("t") != hp.unique_name("t")


@pytest.mark.broker
def test_create_topic_is_idempotent_and_checks_partitions(kafka):
    name = hp.unique_name("core")
    assert hp.create_topic(name, 2) == name
    assert hp.create_topic(name, 2) == name
    with pytest.raises(ValueError, match="already exists with 2 partitions"):
        hp.create_topic(name, 3)
    assert hp.delete_topic(name) is True


@pytest.mark.broker
def test_seed_then_consume_everything_with_keys_and_json(kafka):
    topic = hp.create_topic(hp.unique_name("core"), 3)
    counts = hp.seed_messages(topic, 90)
    assert sum(counts.values()) == 90 and set(counts) <= {0, 1, 2}
    seen = {}
    result = hp.consume("sync", topic, hp.unique_name("g"), max_records=90,
                        process=lambda r: seen.setdefault(r.value["n"], r.key))
    assert result.processed == 90
    assert seen == {i: f"key-{i}" for i in range(90)}


@pytest.mark.broker
def test_a_poison_record_does_not_stop_the_loop(kafka):
    topic = hp.create_topic(hp.unique_name("poison"), 1)
    producer = hp.make_producer(value_serializer=None)
    producer.send(topic, key="bad", value=b"\x80\x04not-json")
    producer.flush()
    producer.close()
    hp.seed_messages(topic, 3, start=1)
    values = []
    hp.consume("sync", topic, hp.unique_name("g"), max_records=4, process=lambda r: values.append(r.value))
    assert isinstance(values[0], Undecodable) and values[0].raw == b"\x80\x04not-json"
    assert [v["n"] for v in values[1:]] == [1, 2, 3]


def test_unknown_commit_mode_lists_the_valid_ones():
    with pytest.raises(ValueError, match="sync_per_record"):
        hp.consume("sometimes", "t", "g", bootstrap="127.0.0.1:1")


@pytest.mark.broker
def test_tracer_sees_every_mode_of_commit(kafka):
    topic = hp.create_topic(hp.unique_name("trace"), 2)
    hp.seed_messages(topic, 200)
    modes = {}
    for mode in ("auto", "sync", "async", "combined"):
        tracer = hp.CommitTracer()
        hp.consume(mode, topic, hp.unique_name("g"), tracer=tracer, idle_ms=600,
                   max_poll_records=50, auto_commit_interval_ms=100)
        modes[mode] = {r["mode"] for r in tracer.rows()}
        assert all(r["outcome"] == "success" for r in tracer.rows()), tracer.rows()
        # the last successful commit is the end of each partition: everything processed
        assert sum(tracer.last_committed().values()) == 200
    assert modes["auto"] == {"auto", "auto-sync"}  # in poll(), and once more in close()
    assert modes["sync"] == {"sync"} and modes["async"] == {"async"}
    assert modes["combined"] == {"async", "sync"}


@pytest.mark.broker
def test_tracer_skips_commits_that_send_nothing(kafka):
    """An auto commit due while nothing is consumed yet (a slow join) sends no request: not an attempt."""
    topic = hp.create_topic(hp.unique_name("trace-empty"), 1)
    consumer = hp.make_consumer(topic, group_id=hp.unique_name("g"), enable_auto_commit=False)
    tracer = hp.CommitTracer()
    tracer.attach(consumer)
    try:
        consumer.commit_async({})  # what the auto commit calls before the first records
        consumer.commit({})
        assert tracer.rows() == []
    finally:
        consumer.close()
