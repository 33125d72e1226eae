"""Topics and seeding (introduced in notebook 01).

Every notebook run makes its own topic and group names with :func:`unique_name`, so
re-running a notebook starts from a clean slate on the same shared broker; on a broker
shared by a room, each name also starts with the learner's prefix (:mod:`helpers.room`).
"""
from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from kafka import KafkaAdminClient
from kafka.errors import KafkaTimeoutError, TopicAlreadyExistsError, UnknownTopicOrPartitionError

from .broker import ensure_broker
from .consumers import make_producer
from .room import own_name

TOPIC_READY_MS = 60_000  # how long create_topic waits for every partition to have a leader

__all__ = ["unique_name", "admin_client", "create_topic", "delete_topic", "group_offsets",
           "seed_messages"]


def unique_name(prefix: str) -> str:
    """``prefix`` plus a short random suffix, e.g. ``orders-3f9a1c`` (notebook 01).

    On a shared broker the learner's prefix comes first: ``alice--orders-3f9a1c``
    (:func:`helpers.room.own_name`).
    """
    while True:  # 6 random hex digits; never the same name twice in one process
        name = own_name(f"{prefix}-{uuid.uuid4().hex[:6]}")
        if name not in _ISSUED:
            _ISSUED.add(name)
            return name


_ISSUED: set[str] = set()  # names unique_name returned in this process


@contextlib.contextmanager
def admin_client(bootstrap: str | None = None) -> Iterator[KafkaAdminClient]:
    """A ``KafkaAdminClient`` on the course broker, closed on exit."""
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap or ensure_broker().bootstrap,
        client_id="course-admin",
        bootstrap_timeout_ms=10_000,
    )
    try:
        yield admin
    finally:
        admin.close()


def group_offsets(admin: KafkaAdminClient, group_id: str, partitions: Any = None,
                  timeout_s: float = 20.0) -> dict[Any, Any]:
    """The group's committed offsets (``{TopicPartition: OffsetAndMetadata}``) (notebook 01).

    Right after a broker restart the group coordinator may still be loading and answer
    with a retriable error (``NotCoordinatorError``...); the question is asked again, for
    up to ``timeout_s``, by the course's one retry policy.
    """
    from .runner import kafka_retriable, with_retries

    pause = 0.25
    got, _ = with_retries(lambda _a: admin.list_group_offsets({group_id: partitions}),
                          attempts=max(1, int(timeout_s / pause)), retry_on=(),
                          retry_if=kafka_retriable, pause_s=pause)
    return dict(got.get(group_id, {}))


def _partition_count(admin: KafkaAdminClient, name: str) -> int:
    (desc,) = admin.describe_topics([name])
    return len(desc["partitions"])


def create_topic(
    name: str,
    partitions: int = 3,
    *,
    bootstrap: str | None = None,
    configs: dict[str, str] | None = None,
) -> str:
    """Create ``name`` with ``partitions`` partitions, or accept it if it exists as asked.

    Idempotent: an existing topic with the same partition count is fine; a
    different count raises ``ValueError`` (pick another name). Returns ``name``
    once every partition has a leader. Notebook 01.
    """
    if not isinstance(partitions, int) or partitions < 1:
        raise ValueError(f"partitions must be a whole number >= 1, not {partitions!r}")
    with admin_client(bootstrap) as admin:
        try:
            admin.create_topics(
                # -1: the cluster's default.replication.factor (1 on the single broker, 3 on the
                # course's three-node cluster, where min.insync.replicas=2 needs at least 2)
                {name: {"num_partitions": partitions, "replication_factor": -1,
                        "configs": dict(configs or {})}},
            )
        except TopicAlreadyExistsError:
            have = _partition_count(admin, name)
            if have != partitions:
                raise ValueError(
                    f"topic {name!r} already exists with {have} partitions, not {partitions}; "
                    "use another name (helpers.unique_name) or delete it first"
                ) from None
        # kafka-python waits 10 s for every partition's leader by default; a broker on a
        # busy machine (a room of learners, CI) can take longer, so wait up to a minute.
        try:
            admin.wait_for_topics([name], timeout_ms=TOPIC_READY_MS)
        except KafkaTimeoutError as exc:
            raise KafkaTimeoutError(
                f"topic {name!r} was created but its partitions had no leader after "
                f"{TOPIC_READY_MS // 1000} s: is the broker overloaded or restarting? "
                f"Check `make status` and `make logs`. ({exc})") from None
    return name


def delete_topic(name: str, *, bootstrap: str | None = None) -> bool:
    """Delete ``name``; False if it did not exist (notebook 01)."""
    with admin_client(bootstrap) as admin:
        try:
            admin.delete_topics([name])
        except UnknownTopicOrPartitionError:
            return False
    return True


def _default_value(i: int) -> dict[str, Any]:
    return {"n": i, "sent_at_ms": int(time.time() * 1000)}


def seed_messages(
    topic: str,
    n: int,
    *,
    start: int = 0,
    key: Callable[[int], str] | None = None,
    value: Callable[[int], Any] | None = None,
    partition: int | None = None,
    bootstrap: str | None = None,
    progress: bool | None = None,
) -> dict[int, int]:
    """Produce ``n`` numbered messages, ``start`` .. ``start+n-1``, and wait for all acks.

    Keys are ``key-<i>`` (so the default partitioner spreads them by key hash) and
    values are JSON ``{"n": i, "sent_at_ms": ...}`` unless ``key``/``value`` say
    otherwise; ``partition`` pins every message to one partition. A tqdm bar shows
    progress when ``n`` >= 10,000 (or ``progress=True``). Returns how many
    messages went to each partition. Notebook 01.
    """
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a whole number >= 0, not {n!r}")
    key = key or (lambda i: f"key-{i}")
    value = value or _default_value
    show = progress if progress is not None else n >= 10_000
    counts: dict[int, int] = {}
    producer = make_producer(bootstrap=bootstrap, linger_ms=20, batch_size=64 * 1024)
    try:
        futures = []
        rng: Any = range(start, start + n)
        if show:
            from tqdm.auto import tqdm

            rng = tqdm(rng, desc=f"seeding {topic}", unit="msg")
        for i in rng:
            futures.append(_send(producer, topic, key(i), value(i), partition))
            if len(futures) >= 5000:
                _collect(futures, counts)
        producer.flush()
        _collect(futures, counts)
    finally:
        producer.close()
    return dict(sorted(counts.items()))


def _send(producer: Any, topic: str, key: Any, value: Any, partition: int | None) -> Any:
    """``producer.send``, patient with a new topic on a cluster: kafka-python's partitioner
    raises TypeError when a metadata refresh from a node that does not know the topic yet
    drops its partitions (seen in notebook 12 right after create_topic); ask again for 10 s."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return producer.send(topic, key=key, value=value, partition=partition)
        except TypeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
            producer.partitions_for(topic)  # waits for metadata that has the topic's partitions


def _collect(futures: list, counts: dict[int, int]) -> None:
    for f in futures:
        meta = f.get(timeout=30)
        counts[meta.partition] = counts.get(meta.partition, 0) + 1
    futures.clear()
