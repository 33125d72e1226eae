"""One member of a consumer group, in its own process (notebook 10).

``python -m helpers.rebalance_worker CONFIG.json`` is what :func:`helpers.rebalance.run_group`
starts for each member. It joins ``group_id`` with the settings of a commit mode
(:mod:`helpers.modes`) and a partition assignor, and runs a loop by the loop contract of
:mod:`helpers.runner` (the mode's own loop, or ``"module:function"``). It writes two files,
one JSON line per ``O_APPEND`` write so they survive SIGKILL:

* the **ledger**: one line per processed record (member, partition, offset, time);
* the **events**: ``started``, every ``assigned`` / ``revoked`` / ``lost`` call of its
  :class:`~kafka.ConsumerRebalanceListener` (with the generation the member saw), a
  ``listener_error``, and ``stopped`` (with why).

SIGTERM (and SIGINT) make ``running()`` return ``False``: the loop finishes its batch,
commits as its mode does, and closes (a dynamic member then leaves the group at once).
SIGKILL is a crash: the broker notices after ``session_timeout_ms``.

``listener`` (``"module:factory"``) adds your own listener: the worker calls
``factory(consumer, processed)``, where ``processed`` maps each ``TopicPartition`` to the
next offset to read (last processed offset + 1), and records what it sees around it.
``client: "confluent"`` runs a confluent-kafka consumer instead (``group.protocol`` from
the config: ``consumer`` is KIP-848's protocol), with a sync commit after each batch.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .jsonl import append_row as _append

__all__ = ["ASSIGNORS", "assignor_class", "confluent_loop", "main", "member_consumer"]

#: Assignor names the worker accepts -> kafka-python classes (import path, class name).
ASSIGNORS: dict[str, tuple[str, str]] = {
    "range": ("kafka.coordinator.assignors.range", "RangePartitionAssignor"),
    "roundrobin": ("kafka.coordinator.assignors.roundrobin", "RoundRobinPartitionAssignor"),
    "sticky": ("kafka.coordinator.assignors.sticky.sticky_assignor", "StickyPartitionAssignor"),
    "cooperative-sticky": ("kafka.coordinator.assignors.cooperative_sticky", "CooperativeStickyAssignor"),
}


def _parts(tps: Any) -> list[int]:
    return sorted(int(getattr(tp, "partition", tp)) for tp in tps)


def assignor_class(name: str) -> Any:
    """The kafka-python assignor class called ``name`` (``range``, ``cooperative-sticky``...)."""
    import importlib

    if name not in ASSIGNORS:
        raise ValueError(f"unknown assignor {name!r}; choose one of {', '.join(ASSIGNORS)}")
    module, cls = ASSIGNORS[name]
    return getattr(importlib.import_module(module), cls)


def _load(ref: str) -> Any:
    import importlib

    module_name, _, name = ref.partition(":")
    found = getattr(importlib.import_module(module_name), name, None)
    if found is None:
        raise ValueError(f"{module_name!r} has no {name!r} (listener {ref!r})")
    return found


def _recorder(consumer: Any, log: Callable[..., None], inner: Any) -> Any:
    """A listener that logs every call, then hands it to ``inner`` (yours, or None)."""
    from kafka import AsyncConsumerRebalanceListener, ConsumerRebalanceListener

    def generation() -> int | None:
        gid = consumer.group_metadata().generation_id
        return None if gid is None or gid < 0 else int(gid)

    if isinstance(inner, AsyncConsumerRebalanceListener):
        class AsyncRecorder(AsyncConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked: Any) -> None:
                log("revoked", revoked, generation())
                await _guard(inner.on_partitions_revoked(revoked))

            async def on_partitions_assigned(self, assigned: Any) -> None:
                log("assigned", assigned, generation())
                await _guard(inner.on_partitions_assigned(assigned))

            async def on_partitions_lost(self, lost: Any) -> None:
                log("lost", lost, generation())
                await _guard(inner.on_partitions_lost(lost))

        async def _guard(coro: Any) -> None:
            try:
                await coro
            except Exception as exc:
                log("listener_error", [], None, error=f"{type(exc).__name__}: {exc}")
                raise

        return AsyncRecorder()

    def call(method: str, tps: Any) -> None:
        if inner is None:
            return
        try:
            getattr(inner, method)(tps)
        except Exception as exc:
            log("listener_error", [], None, error=f"{type(exc).__name__}: {exc}")
            raise

    class Recorder(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked: Any) -> None:
            log("revoked", revoked, generation())
            call("on_partitions_revoked", revoked)

        def on_partitions_assigned(self, assigned: Any) -> None:
            log("assigned", assigned, generation())
            call("on_partitions_assigned", assigned)

        def on_partitions_lost(self, lost: Any) -> None:
            log("lost", lost, generation())
            call("on_partitions_lost", lost)

    return Recorder()


def member_consumer(cfg: dict[str, Any], log: Callable[..., None], processed: dict[Any, int]) -> Any:
    """The KafkaConsumer of one member: the commit mode's settings, the assignor, a listener."""
    from .consumers import make_consumer
    from .modes import get_mode

    settings = {**get_mode(cfg["mode"]).settings, **(cfg.get("settings") or {}),
                "client_id": f"rebalance-{cfg['group_id']}-{cfg['member']}",
                "partition_assignment_strategy": (assignor_class(cfg.get("assignor") or "range"),)}
    consumer = make_consumer(group_id=cfg["group_id"], bootstrap=cfg["bootstrap"], **settings)
    yours = _load(cfg["listener"])(consumer, processed) if cfg.get("listener") else None
    consumer.subscribe([cfg["topic"]], listener=_recorder(consumer, log, yours))
    consumer.partitions_for_topic(cfg["topic"])  # know the partitions before the first poll() joins
    return consumer


class _Record:
    """A confluent-kafka message seen through kafka-python's record attributes."""

    __slots__ = ("topic", "partition", "offset")

    def __init__(self, msg: Any) -> None:
        self.topic, self.partition, self.offset = msg.topic(), msg.partition(), msg.offset()


def _confluent_consumer(cfg: dict[str, Any], log: Callable[..., None]) -> Any:
    from confluent_kafka import Consumer

    s = cfg.get("settings") or {}
    conf: dict[str, Any] = {
        "bootstrap.servers": cfg["bootstrap"], "group.id": cfg["group_id"],
        "client.id": f"rebalance-{cfg['member']}", "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "group.protocol": cfg.get("group_protocol") or "consumer",
        **(cfg.get("confluent_settings") or {}),
    }
    if conf["group.protocol"] == "classic":
        conf["session.timeout.ms"] = s.get("session_timeout_ms", 6000)
        conf["heartbeat.interval.ms"] = s.get("heartbeat_interval_ms", 300)
        conf["partition.assignment.strategy"] = cfg.get("assignor") or "range"
    consumer = Consumer(conf)

    def on_assign(c: Any, tps: Any) -> None:
        log("assigned", tps, None)

    def on_revoke(c: Any, tps: Any) -> None:
        log("revoked", tps, None)

    def on_lost(c: Any, tps: Any) -> None:
        log("lost", tps, None)

    consumer.subscribe([cfg["topic"]], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    return consumer


def confluent_loop(consumer: Any, process: Callable[[Any], None], running: Callable[[], bool],
                   batch: int = 20) -> None:
    """The ``sync`` mode with confluent-kafka: a sync commit after each batch, then ``close()``."""
    from confluent_kafka import KafkaException

    try:
        while running():
            msgs = [m for m in consumer.consume(num_messages=batch, timeout=0.1) if m.error() is None]
            for msg in msgs:
                process(_Record(msg))
            if msgs:
                try:
                    consumer.commit(asynchronous=False)
                except KafkaException as exc:  # e.g. the partition moved on while we worked
                    print(f"commit failed: {exc}", file=sys.stderr, flush=True)
    finally:
        consumer.close()


def _run(cfg: dict[str, Any]) -> int:
    from .runner import Until, run_loop

    member = str(cfg["member"])
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    ledger_fd, events_fd = (os.open(cfg[f], flags, 0o644) for f in ("ledger", "events"))
    pid = os.getpid()

    def log(event: str, tps: Any, generation: int | None, **extra: Any) -> None:
        _append(events_fd, {"member": member, "pid": pid, "event": event, "partitions": _parts(tps),
                            "generation": generation, "t": time.time(), **extra})

    until = Until(max_seconds=float(cfg.get("max_seconds") or 60))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: until.stop("stop signal"))
    process_s = float(cfg.get("process_ms") or 0) / 1000
    processed: dict[Any, int] = {}  # TopicPartition -> next offset to read

    drain_flag = cfg.get("drain_flag")
    draining = [False]

    def process(record: Any) -> None:
        if process_s and not draining[0]:
            if drain_flag and os.path.exists(drain_flag):
                draining[0] = True  # the run is over: read the rest without simulated work
            else:
                time.sleep(process_s)
        _append(ledger_fd, {"member": member, "pid": pid, "partition": record.partition,
                            "offset": record.offset, "t": time.time()})
        if cfg.get("client") != "confluent":
            from kafka import TopicPartition

            processed[TopicPartition(record.topic, record.partition)] = record.offset + 1
        until.done()

    if cfg.get("client") == "confluent":
        consumer = _confluent_consumer(cfg, log)
        log("started", [], None)
        batch = int((cfg.get("settings") or {}).get("max_poll_records", 20))
        outcome = run_loop(lambda c, p, r: confluent_loop(c, p, r, batch), consumer, process,
                           until.running, reraise=False, close_forgotten=False)
    else:
        from .modes import get_mode

        consumer = member_consumer(cfg, log, processed)
        log("started", [], None)
        outcome = run_loop(cfg.get("loop") or get_mode(cfg["mode"]).loop, consumer, process,
                           until.running, reraise=False, close_forgotten=False)
    log("stopped", [], None, reason=until.reason or "loop returned", error=outcome.error,
        closed_by_loop=outcome.closed_by_loop, processed=until.count)
    if outcome.error is not None:
        print(f"the loop raised {outcome.error}", file=sys.stderr, flush=True)
        return 3
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m helpers.rebalance_worker CONFIG.json``: one group member until SIGTERM."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m helpers.rebalance_worker CONFIG.json", file=sys.stderr)
        return 2
    logging.basicConfig(level=os.environ.get("REBALANCE_LOG", "WARNING"), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return _run(json.loads(Path(args[0]).read_text()))


if __name__ == "__main__":
    sys.exit(main())
