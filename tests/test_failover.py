"""helpers.failover's pure parts (no broker): tallies of commits, callbacks, events and ledgers."""
from __future__ import annotations

import threading

import pytest

from helpers import failover as fo
from helpers.failover_worker import describe_result, node_of
from helpers.inspection import offsets_partition_for


def commit(wall, outcome="success", node=1, mode="sync", **offsets):
    return {"wall": wall, "outcome": outcome, "node": node, "mode": mode,
            "offsets": {f"t:{p[1:]}": o for p, o in offsets.items()}}


def test_acked_before_takes_the_highest_success_before_the_kill():
    rows = [commit(1.0, p0=5, p1=3), commit(2.0, p0=9), commit(2.5, "error", p0=12),
            commit(3.5, p0=20, p1=8)]
    assert fo.acked_before(rows, 3.0) == {0: 9, 1: 3}
    assert fo.acked_before(rows, 0.5) == {}


def test_first_success_after_skips_errors_earlier_rows_and_the_dead_node():
    rows = [commit(1.0), commit(4.0, "error", node=None), commit(5.0, node=2, p0=1),
            commit(4.5, node=1), commit(6.0, node=3)]
    assert fo.first_success_after(rows, 3.0, dead=1)["wall"] == 5.0
    assert fo.first_success_after(rows, 3.0)["wall"] == 4.5
    assert fo.first_success_after(rows, 7.0) is None


def test_went_backwards_names_partitions_below_or_missing():
    assert fo.went_backwards({0: 10, 1: 7}, {0: 10, 1: 5}) == {}
    assert fo.went_backwards({"0": 9, "1": 7}, {0: 10, 1: 5}) == {0: (9, 10)}
    assert fo.went_backwards({0: 10}, {0: 10, 1: 5}) == {1: (None, 5)}


def test_result_counts_keep_first_appearance_order():
    rows = [{"mode": "async", "result": "KafkaConnectionError", "retriable": True},
            {"mode": "async", "result": "CoordinatorNotAvailableError", "retriable": True},
            {"mode": "async", "result": "KafkaConnectionError", "retriable": True},
            {"mode": "async", "result": "None", "retriable": None}]
    assert fo.result_counts(rows) == [
        {"call": "async", "result": "KafkaConnectionError", "retriable": True, "count": 2},
        {"call": "async", "result": "CoordinatorNotAvailableError", "retriable": True, "count": 1},
        {"call": "async", "result": "None", "retriable": None, "count": 1}]
    assert fo.result_counts([{"result": "None"}], call="callback")[0]["call"] == "callback"


def test_dead_marks_count_reasons_in_the_window():
    events = [{"kind": "dead", "reason": "Node Disconnected", "wall": w} for w in (1, 2, 3)] + \
        [{"kind": "dead", "reason": "NotCoordinatorError", "wall": 2.5}, {"kind": "found", "wall": 2.6}]
    assert fo.dead_marks(events, 1.5, 3.0) == {"Node Disconnected": 2, "NotCoordinatorError": 1}
    assert fo.dead_marks(events) == {"Node Disconnected": 3, "NotCoordinatorError": 1}


def test_longest_pause_counts_gaps_ending_after_the_kill():
    ledger = [{"run": 1, "t": t} for t in (0.0, 0.1, 0.2, 5.2, 5.3)] + [{"run": 2, "t": 20.0}]
    assert fo.longest_pause(ledger, 1.0) == 5.0
    assert fo.longest_pause(ledger, 6.0) == 0.0


def test_pick_groups_puts_every_group_on_one_node():
    leader_of = {p: 1 + p % 3 for p in range(50)}
    node, groups = fo.pick_groups(["sync", "async", "witness"], leader_of)
    assert set(groups) == {"sync", "async", "witness"}
    assert {leader_of[offsets_partition_for(g, 50)] for g in groups.values()} == {node}
    node2, groups2 = fo.pick_groups(["auto"], leader_of, node=2)
    assert node2 == 2 and leader_of[offsets_partition_for(groups2["auto"], 50)] == 2
    with pytest.raises(fo.FailoverError, match="leads no"):
        fo.pick_groups(["x"], leader_of, node=7)


def test_worker_reports_results_and_node_ids():
    from kafka.errors import CommitFailedError, NotCoordinatorError

    assert node_of("coordinator-3") == 3 and node_of(2) == 2 and node_of(None) is None
    assert describe_result(NotCoordinatorError("g"))["retriable"] is True
    assert describe_result(CommitFailedError("x")) | {"message": ""} == \
        {"result": "CommitFailedError", "retriable": False, "message": ""}
    assert describe_result(None) == {"result": "NoneType", "retriable": None, "message": "None"}


def test_run_failover_rejects_nonsense_before_touching_a_broker():
    with pytest.raises(ValueError, match="unknown commit mode"):
        fo.run_failover(["nope"], bootstrap="127.0.0.1:1", kill_coordinator=lambda g: 1)
    with pytest.raises(ValueError, match="kill_after_s"):
        fo.run_failover(["sync"], bootstrap="127.0.0.1:1", kill_coordinator=lambda g: 1, kill_after_s=-1)


# ---------------------------------------------------------------------------- plot and lab, headless

def fake_report(node=2, kill_t=5.0):
    def mode_rows(first):
        ok, bad = {"outcome": "success", "retriable": None}, {"outcome": "error", "retriable": True}
        commits = [{"run": 1, "mode": "sync", "wall": kill_t - 1, **ok},
                   {"run": 1, "mode": "async", "wall": kill_t + 1, **bad},
                   {"run": 1, "mode": "auto", "wall": kill_t + first, **ok}]
        return {"commits": commits, "ledger": [{"run": 1, "t": kill_t + d / 10} for d in range(-20, 120)],
                "events": [{"kind": "dead", "wall": kill_t + 0.5}], "kill_to_first_commit_s": first,
                "group": "g", "coordinator_before": node, "coordinator_after": 3,
                "longest_commit_call_s": 1.0,
                "longest_pause_s": 9.0, "acked_before": {0: 5}, "found_after": {0: 7}, "went_backwards": {},
                "duplicates": 0, "lost": 0, "failover_results": []}

    return fo.FailoverReport(node, kill_t, 0.0, "t", 100, {"sync": mode_rows(9.5), "async": mode_rows(10.0)},
                             {"went_backwards": {}})


def test_plot_failover_marks_the_kill_each_lane_and_the_outcomes():
    from helpers.plots import plot_failover

    fig = plot_failover(fake_report())
    top = fig.axes[0]
    assert [t.get_text() for t in top.get_yticklabels()] == ["sync", "async"]
    labels = top.get_legend_handles_labels()[1]
    assert {"success", "retriable error", "kafka-python marks the coordinator dead"} <= set(labels)
    assert any("node 2 SIGKILLed" in t.get_text() for t in top.texts)


def test_failover_lab_runs_in_the_background_and_recovers_the_node():
    from helpers import widgets

    calls = []

    def trial(modes, **kw):
        calls.append((modes, kw))
        kw["on_stage"]("running")
        return fake_report()

    lab = widgets.failover_lab(mode="sync", trial=trial, bootstrap="b", kill_coordinator=None,
                               recover=lambda node: {"node": node, "in_sync_s": 0.1})
    lab.kill_after.value = 2.5
    lab.run_button.click()
    rep = lab.wait(10)
    assert rep is not None and lab.last_error is None and lab.runs == 1
    assert calls[0][0] == ["sync"] and calls[0][1]["kill_after_s"] == 2.5 and calls[0][1]["bootstrap"] == "b"
    assert lab.last_recovery == {"node": 2, "in_sync_s": 0.1} and lab.status.value == "done"
    assert "node 2 SIGKILLed" in lab.report.value and "came back" in lab.report.value
    # the figure is in the Output widget's outputs: `with output:` from the lab's thread shows nothing
    assert lab.last_figure is not None and "image/png" in lab.output.outputs[0]["data"]
    lab.mode.value = "all four modes"
    lab.click()
    lab.wait(10)
    assert calls[1][0] == ["sync", "async", "combined", "auto"] and lab.runs == 2
    # the button stays disabled until the node is back, and a click meanwhile starts nothing
    release = threading.Event()
    lab.recover = lambda node: release.wait(10)
    assert lab.click() and lab.run_button.disabled
    assert not lab.click()
    release.set()
    lab.wait(10)
    assert not lab.run_button.disabled and lab.runs == 3 and len(calls) == 3 and lab.seconds is not None


def test_failover_lab_shows_a_failed_run_and_rejects_nonsense():
    from helpers import widgets

    def boom(modes, **kw):
        raise fo.FailoverError("the cluster has 2 live broker(s)")

    lab = widgets.failover_lab(trial=boom)
    lab.run()
    assert isinstance(lab.last_error, fo.FailoverError) and "2 live broker" in lab.status.value
    assert not lab.run_button.disabled
    with pytest.raises(ValueError, match="mode"):
        widgets.failover_lab(mode="nope", trial=boom)
    with pytest.raises(ValueError, match="kill_after_s"):
        widgets.failover_lab(kill_after_s=9, trial=boom)


def test_new_coordinator_is_the_first_discovery_of_another_node():
    events = [{"kind": "found", "wall": 1.0, "node": 1}, {"kind": "dead", "wall": 2.0},
              {"kind": "found", "wall": 3.0, "node": 1}, {"kind": "found", "wall": 4.0, "node": 2}]
    assert fo._found_after(events, 1.5, dead=1) == 2.5
    assert fo._found_after(events, 1.5, dead=3) == 1.5
    assert fo._found_after(events, 5.0, dead=1) is None


def test_callback_failures_counts_exceptions_in_the_failover_window():
    rep = fake_report(kill_t=5.0)
    rep.modes["async"]["callbacks"] = [
        {"run": 1, "wall": 4.9, "retriable": True},     # before the kill
        {"run": 1, "wall": 6.0, "retriable": True},
        {"run": 1, "wall": 15.5, "retriable": False},   # first success at 15.0, +1 s
        {"run": 1, "wall": 15.1, "retriable": None},    # a success: not counted
        {"run": 1, "wall": 16.5, "retriable": True},    # too late
        {"run": 2, "wall": 7.0, "retriable": True}]     # run 2
    assert rep.callback_failures("async") == 2


def test_not_in_log_names_acknowledged_commits_missing_from_the_log():
    log = {(0, 20), (0, 40), (1, 0)}
    assert fo.not_in_log({"0": 40, "1": 0}, log) == {}
    assert fo.not_in_log({0: 60, 1: 0}, log) == {0: 60}


def test_read_after_reads_committed_offsets_two_ways(kafka):
    """The failover reader's stable read (a read_committed consumer's committed(), which sends
    require_stable) and the admin client's read agree on a quiet group, for every partition."""
    from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

    from helpers.topics import create_topic, unique_name

    topic, group = create_topic(unique_name("reader"), 2), unique_name("reader-group")
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(7, "", -1),
                         TopicPartition(topic, 1): OffsetAndMetadata(3, "", -1)})
    finally:
        consumer.close(autocommit=False)
    out: dict = {}
    fo._read_after(kafka.bootstrap, {"g": group}, topic, out, 30.0)
    assert out["g"]["offsets"] == {0: 7, 1: 3} and out["g"]["offsets_admin"] == {0: 7, 1: 3}, out
    got: dict = {}
    fo._read_once("127.0.0.1:1", group, topic, got, "stable")  # nothing listens there
    assert "offsets" not in got and got["error"], got
