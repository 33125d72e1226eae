"""Reference solutions for notebook 10 (rebalances). Try the exercise first."""
from __future__ import annotations

import sys
from typing import Any

from kafka import AsyncConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata


class nb10_CommitOnRevoke(AsyncConsumerRebalanceListener):
    """Commit what was processed of the partitions being taken away, and wait for the answer.

    An *async* listener: kafka-python 3.0.12 calls listeners on its I/O thread, where
    ``consumer.commit()`` raises ``RuntimeError`` (it would wait for that same thread).
    ``await consumer.commit_async(offsets)`` sends the commit and waits for the broker
    without blocking the thread.
    """

    def __init__(self, consumer: Any, processed: dict[Any, int]) -> None:
        self.consumer = consumer
        self.processed = processed  # TopicPartition -> next offset to read (last processed + 1)

    async def on_partitions_revoked(self, revoked: Any) -> None:
        offsets = {tp: OffsetAndMetadata(self.processed[tp], "", -1)
                   for tp in revoked if tp in self.processed}
        if not offsets:
            return
        try:
            await self.consumer.commit_async(offsets)
        except KafkaError as exc:  # the records are read again by the next owner: at-least-once holds
            print(f"commit on revoke failed: {exc}", file=sys.stderr)
        for tp in offsets:  # if a partition comes back later, its old offset must not be committed again
            self.processed.pop(tp, None)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        pass

    async def on_partitions_lost(self, lost: Any) -> None:
        for tp in lost:  # no longer ours: a commit would fail, the new owner starts at the last commit
            self.processed.pop(tp, None)


def nb10_commit_on_revoke() -> str:
    """The reference listener, as the ``"module:Class"`` the group's members import."""
    return f"{__name__}:nb10_CommitOnRevoke"


def nb10_predict_crash_wait() -> str:
    """A SIGKILLed member never says goodbye: the broker waits for its session to expire."""
    return "about session_timeout_ms"


def nb10_predict_join_replays() -> int:
    """The sync loop commits after each batch, and a rebalance runs inside poll(), between batches."""
    return 0


def nb10_predict_sync_commit_works() -> bool:
    """kafka-python 3.0.12 calls listeners on its I/O thread; commit() would wait for that thread."""
    return False


def nb10_predict_coop_same_round() -> bool:
    """Cooperative: round 1 takes the moving partitions away, a later round (the second, or a
    third when a member answers late) gives them to the newcomer."""
    return False


def nb10_predict_static_calls() -> int:
    """A static member back within session_timeout_ms takes its old place: no rebalance at all."""
    return 0


def nb10_crash_replays(report: Any) -> int:
    """Ledger lines after the kill whose record had been processed before."""
    step = next(s for s in report.steps if s["action"] == "kill")
    t_kill = report.step_time(step)
    seen: set[tuple[int, int]] = set()
    again = 0
    for e in sorted(report.ledger, key=lambda e: e["t"]):
        key = (e["partition"], e["offset"])
        if key in seen and e["t"] >= t_kill:
            again += 1
        seen.add(key)
    return again


def nb10_coop_kept(report: Any) -> list[int]:
    """m1's partitions just before m3 joined, minus those revoked until m3 got its partitions."""
    join = next(s for s in report.steps if s["label"] == "m3 joins")
    t_join = report.step_time(join)
    m3_first = min(e["t"] for e in report.events if e["member"] == "m3" and e["event"] == "assigned"
                   and e["partitions"])
    owned: set[int] = set()
    revoked: set[int] = set()
    for e in sorted(report.events, key=lambda e: e["t"]):
        if e["member"] != "m1":
            continue
        if e["t"] < t_join:
            if e["event"] == "assigned":
                owned |= set(e["partitions"])
            elif e["event"] in ("revoked", "lost"):
                owned -= set(e["partitions"])
        elif e["t"] <= m3_first and e["event"] in ("revoked", "lost"):
            revoked |= set(e["partitions"])
    return sorted(owned - revoked)
