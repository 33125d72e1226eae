"""Consumer and producer factories with the course's defaults (introduced in notebook 01).

kafka-python 3.x takes serializer and deserializer *objects*
(``kafka.serializer.Serializer`` / ``Deserializer``) with a
``(topic, headers, data)`` signature. The article's bare lambdas that unpickle
record bytes are shown in the course only as a warning: broker bytes are
untrusted input, and unpickling them runs whatever code the bytes name.

The deserializers here never raise: a record whose bytes are not what we expect
comes back as an :class:`Undecodable` value carrying the raw bytes and the reason,
so one bad record cannot wedge a consumer loop and nothing is lost.
"""
from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaConfigurationError
from kafka.serializer import Deserializer, Serializer

from .broker import ensure_broker

__all__ = [
    "Undecodable",
    "JsonSerializer",
    "JsonDeserializer",
    "TextSerializer",
    "TextDeserializer",
    "make_consumer",
    "make_producer",
    "COURSE_CONSUMER_DEFAULTS",
]


@dataclass(frozen=True)
class Undecodable:
    """A record key or value that could not be decoded: the raw bytes and why (notebook 01)."""

    raw: bytes
    error: str

    def __repr__(self) -> str:
        preview = self.raw[:24]
        more = "..." if len(self.raw) > 24 else ""
        return f"Undecodable({preview!r}{more}, {self.error!r})"


class JsonSerializer(Serializer):
    """Python value -> UTF-8 JSON bytes (``None`` stays ``None``, a tombstone)."""

    def serialize(self, topic: str, headers: Any, data: Any) -> bytes | None:
        if data is None:
            return None
        return json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8")


class JsonDeserializer(Deserializer):
    """UTF-8 JSON bytes -> value; bad bytes -> :class:`Undecodable`, never raises (notebook 01)."""

    def deserialize(self, topic: str, headers: Any, data: bytes | None) -> Any:
        if data is None:
            return None
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            return Undecodable(bytes(data), f"not UTF-8 JSON: {e}")


class TextSerializer(Serializer):
    """``str`` -> UTF-8 bytes (bytes pass through, ``None`` stays ``None``)."""

    def serialize(self, topic: str, headers: Any, data: Any) -> bytes | None:
        if data is None or isinstance(data, bytes):
            return data
        if isinstance(data, bytearray):
            return bytes(data)
        return str(data).encode("utf-8")


class TextDeserializer(Deserializer):
    """UTF-8 bytes -> ``str``; bad bytes -> :class:`Undecodable`, never raises (notebook 01)."""

    def deserialize(self, topic: str, headers: Any, data: bytes | None) -> Any:
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            return Undecodable(bytes(data), f"not UTF-8 text: {e}")


#: What :func:`make_consumer` sets unless told otherwise. Everything else is
#: kafka-python's default (auto commit on, every 5000 ms, as in Kafka's Java client).
COURSE_CONSUMER_DEFAULTS: dict[str, Any] = {
    # Kafka's default is "latest": a new group would skip everything already in the topic.
    # The course reads topics it has just seeded, so it starts new groups at the beginning;
    # notebook 01 shows both.
    "auto_offset_reset": "earliest",
    # Fail in 10 s, not kafka-python's 30 s, when the broker is not there.
    "bootstrap_timeout_ms": 10_000,
}


def _check_configs(cls: type, configs: dict[str, Any]) -> None:
    unknown = sorted(set(configs) - set(cls.DEFAULT_CONFIG))  # type: ignore[attr-defined]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, cls.DEFAULT_CONFIG, n=1)  # type: ignore[attr-defined]
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(
            f"{cls.__name__} has no setting {', '.join(hints)}. kafka-python settings use "
            "underscores (auto_commit_interval_ms, not auto.commit.interval.ms)."
        )
    for name in ("auto_commit_interval_ms", "max_poll_records", "max_poll_interval_ms",
                 "session_timeout_ms", "request_timeout_ms"):
        value = configs.get(name)
        if value is not None and (not isinstance(value, (int, float)) or value <= 0):
            raise ValueError(f"{name} must be a positive number of ms (or records), not {value!r}")
    reset = configs.get("auto_offset_reset")
    if reset is not None and reset not in ("earliest", "latest", "none", "smallest", "largest"):
        raise ValueError(f"auto_offset_reset must be 'earliest', 'latest' or 'none', not {reset!r}")


def make_consumer(
    *topics: str,
    group_id: str | None = None,
    bootstrap: str | None = None,
    **configs: Any,
) -> KafkaConsumer:
    """A ``KafkaConsumer`` with the course's defaults (notebook 01).

    ``topics`` are subscribed (group management); pass none to ``assign()`` yourself.
    Keys are decoded as text and values as JSON, by deserializer objects that never
    raise. The topics' metadata is fetched before returning, so the first ``poll()``
    joins the group knowing every partition (kafka-python 3.0.12 can otherwise be
    assigned nothing). Any kafka-python setting can be overridden by keyword; a misspelt
    one is rejected with a suggestion.
    """
    settings: dict[str, Any] = dict(COURSE_CONSUMER_DEFAULTS)
    settings.update(
        key_deserializer=TextDeserializer(),
        value_deserializer=JsonDeserializer(),
        client_id=f"course-{group_id or 'nogroup'}-{os.getpid()}",
    )
    settings.update(configs)
    _check_configs(KafkaConsumer, settings)
    bootstrap = bootstrap or ensure_broker().bootstrap
    try:
        consumer = KafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=group_id, **settings)
    except KafkaConfigurationError as e:
        raise ValueError(f"kafka-python rejected the consumer settings: {e}") from e
    # Know the topics' partitions before the first poll() joins the group. Otherwise
    # kafka-python 3.0.12 may join with no metadata yet, be assigned nothing, and rely
    # on a later metadata update to rejoin; under load we saw it stay empty for good.
    for topic in topics:
        consumer.partitions_for_topic(topic)
    return consumer


def make_producer(bootstrap: str | None = None, **configs: Any) -> KafkaProducer:
    """A ``KafkaProducer`` sending text keys and JSON values (notebook 01)."""
    settings: dict[str, Any] = {
        "key_serializer": TextSerializer(),
        "value_serializer": JsonSerializer(),
        "acks": "all",
        "linger_ms": 5,
        "bootstrap_timeout_ms": 10_000,
        "client_id": f"course-producer-{os.getpid()}",
    }
    settings.update(configs)
    _check_configs(KafkaProducer, settings)
    bootstrap = bootstrap or ensure_broker().bootstrap
    return KafkaProducer(bootstrap_servers=bootstrap, **settings)
