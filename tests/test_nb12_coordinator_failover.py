"""Notebook 12's recorded facts: commits in four modes while the group coordinator is SIGKILLed."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.notebook]
NB = "12_coordinator_failover.ipynb"
MODES = ("sync", "async", "combined", "auto")


def test_every_mode_lost_nothing_and_no_acknowledged_commit_was_lost(executed):
    fo = executed(NB)["failover"]
    assert set(fo["modes"]) == set(MODES)
    for mode, r in fo["modes"].items():
        assert r["lost"] == 0, mode
        assert r["acked_before"] and r["acked_not_in_log"] == {}, (mode, r["acked_before"])
        for p, acked in r["acked_before"].items():
            assert r["final_committed"][p] >= acked, (mode, p)
        # the stable read (require_stable) never trails; the admin read beside it may, for a moment
        assert r["went_backwards"] == {} and set(r["acked_before"]) <= set(r["found_after"]), (mode, r)
        assert isinstance(r["found_after_admin"], dict) and isinstance(r["admin_read_behind"], dict), mode
    witness = fo["witness"]
    assert witness["acked_not_in_log"] == {} and witness["found_after"] == witness["acked_before"]
    assert executed(NB)["lost_commits"] is False and executed(NB)["read_back_older"] == {}


def test_the_coordinator_moved_and_commits_came_back_after_a_while(executed):
    rec = executed(NB)
    fo = rec["failover"]
    for mode, r in fo["modes"].items():
        assert r["coordinator_before"] == fo["node"] and r["coordinator_after"] != fo["node"], mode
        assert r["first_commit_node"] == r["coordinator_after"], mode
        # the failover waits for the controller to fence the dead node: seconds, not milliseconds
        waited = r["kill_to_first_commit_s"]
        assert waited > 0.5 * rec["session_timeout_s"], (mode, waited)
    assert rec["recovery"]["in_sync_s"] >= 0 and rec["recovery"]["restart_s"] > 0


def test_what_each_commit_call_got(executed):
    rec = executed(NB)
    rows = rec["errors"]

    def results(mode, call):
        return {r["result"]: r["retriable"] for r in rows if r["mode"] == mode and r["call"] == call}

    # sync: commit() never raised; it blocked through the failover and returned None
    assert results("sync", "sync") == {"None": None} and rec["sync_raised"] is False
    assert rec["failover"]["modes"]["sync"]["longest_commit_call_s"] > 0.5 * rec["session_timeout_s"]
    assert sum(rec["failover"]["modes"]["sync"]["dead_marks"].values()) > 1
    # async, combined: callbacks got retriable exceptions (commits every batch hit the dead node), then None
    failures = {}
    for mode in ("async", "combined"):
        got = results(mode, "callback")
        assert got.pop("NoneType") is None, mode
        assert all(got.values()), (mode, got)
        failures.update(got)
    assert failures and set(failures) <= {
        "KafkaConnectionError", "NodeNotReadyError", "CoordinatorNotAvailableError", "NotCoordinatorError",
        "CoordinatorLoadInProgressError", "RequestTimedOutError"}, failures
    # auto: kafka-python's own commits, if any failed, failed retriably; then one succeeded
    auto = results("auto", "auto")
    assert auto.pop("None") is None and all(auto.values()), auto
