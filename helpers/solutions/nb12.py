"""Reference solutions for notebook 12 (when the coordinator dies). Try the exercises first."""
from __future__ import annotations

from typing import Any


def nb12_predict_failover() -> str:
    """A SIGKILLed node says no goodbye: the controller fences it only when its heartbeats have
    been missing for ``broker.session.timeout.ms`` (9 s); then the ``__consumer_offsets``
    partitions it led get new leaders, which load the groups and answer commits."""
    return "about broker.session.timeout.ms"


def nb12_predict_sync_raises() -> bool:
    """``commit()`` retries retriable errors (the coordinator lost, not loaded yet) until it
    succeeds or ``request_timeout_ms`` (30 s) passes: a 9 s failover only makes it block."""
    return False


def nb12_predict_lost_commit() -> bool:
    """An offset commit is acknowledged only once the in-sync replicas of its
    ``__consumer_offsets`` partition have it (min ISR 2), and a new leader is chosen only
    from those replicas (no unclean election): an acknowledged commit survives the leader."""
    return False


def nb12_failed_callbacks(report: Any) -> int:
    """Async callbacks of run 1 that received an exception from the kill to the first success."""
    r = report.modes["async"]
    kill = report.kill_t
    first = kill + r["kill_to_first_commit_s"]
    return sum(1 for c in r["callbacks"] if c["run"] == 1 and c["retriable"] is not None
               and kill <= c["wall"] <= first + 1.0)


def nb12_where_now(report: Any, bootstrap: str) -> tuple[int, int]:
    """The sync group's ``__consumer_offsets`` partition (notebook 01's formula) and its
    leader now, asked of the cluster."""
    from helpers.failover import placement
    from helpers.topics import admin_client

    with admin_client(bootstrap) as admin:
        where = placement(admin, report.modes["sync"]["group"])
    return where["offsets_partition"], where["leader"]
