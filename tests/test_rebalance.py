"""helpers.rebalance (groups of member processes), its worker, figures and lab (notebook 10).

Most tests use hand-made GroupReports (no broker); the ``broker`` ones run real groups.
"""
from __future__ import annotations

import json
import textwrap
from types import SimpleNamespace
from typing import Any

import pytest

# conftest.py selects Agg for this process
from helpers import plots, rebalance_worker, widgets
from helpers import rebalance as rb
from helpers.solutions import nb10

# ---------------------------------------------------------------------------- plans

def test_steps_accept_tuples_and_keep_their_order():
    plan = rb.steps(("m1", "start", 0), ("m2", "start", 0), ("m3", "start", 0.5), ("m2", "stop", 1))
    assert [s.label() for s in plan] == ["m1 joins", "m2 joins", "m3 joins", "m2 leaves (SIGTERM)"]
    assert rb._initial_count(plan) == 2
    restart = rb.steps(("m1", "start", 0), rb.GroupStep("m1", "kill", 0.5, wait=False), ("m1", "start"))
    assert restart[1].wait is False


@pytest.mark.parametrize("plan, message", [
    ([("m1", "stop", 0)], "begins with"),
    ([], "begins with"),
    ([("m1", "start", 0), ("m1", "start", 1)], "started twice"),
    ([("m1", "start", 0), ("m2", "kill", 1)], "not running"),
    ([("m1", "start", 0), ("m1", "explode", 1)], "action"),
    ([("m1", "start", 0), ("m1", "stop", -1)], "after_s"),
    ([("", "start", 0)], "member"),
])
def test_bad_plans_say_what_is_wrong(plan, message):
    with pytest.raises(ValueError, match=message):
        rb.steps(*plan)


def test_run_group_rejects_nonsense_before_touching_the_broker():
    with pytest.raises(ValueError, match="commit mode"):
        rb.run_group("often")
    with pytest.raises(ValueError, match="assignor"):
        rb.run_group("sync", assignor="fair")
    with pytest.raises(ValueError, match="client"):
        rb.run_group("sync", client="java")
    with pytest.raises(ValueError, match="confluent members"):
        rb.run_group("sync", client="confluent", listener="x:y")
    with pytest.raises(ValueError, match="n_messages"):
        rb.run_group("sync", n_messages=0)


def test_worker_knows_the_assignors_kafka_python_ships():
    for name in rebalance_worker.ASSIGNORS:
        assert rebalance_worker.assignor_class(name).name == name
    with pytest.raises(ValueError, match="cooperative-sticky"):
        rebalance_worker.assignor_class("fair")


# ---------------------------------------------------------------------------- a hand-made report

def fake_group(*, coop: bool = False) -> rb.GroupReport:
    """m1 and m2 share partitions 0..2; m3 joins at t=2.0 and gets partition 2 at 2.2 (eager: m1
    and m2 revoke everything at 2.1; coop: only m2 revokes partition 2); m3 is killed at 4.0 and m1
    gets partition 2 at 10.0, re-reading offsets 30..34 that m3 had processed."""
    steps = [
        {"member": m, "action": "start", "label": f"{m} joins", "after_s": 0, "initial": True, "t": 0.0,
         "pid": pid} for m, pid in (("m1", 1), ("m2", 2))
    ] + [
        {"member": "m3", "action": "start", "label": "m3 joins", "after_s": 0.5, "initial": False, "t": 1.5,
         "pid": 3},
        {"member": "m3", "action": "kill", "label": "m3 crashes (SIGKILL)", "after_s": 0.5, "initial": False,
         "t": 4.0, "pid": 3},
    ]
    ev = [("m1", 1, "started", [], None, 0.5), ("m2", 2, "started", [], None, 0.5),
          ("m1", 1, "assigned", [0, 1], 1, 1.0), ("m2", 2, "assigned", [2], 1, 1.0),
          ("m3", 3, "started", [], None, 2.0)]
    if coop:
        ev += [("m2", 2, "revoked", [2], 2, 2.1), ("m3", 3, "assigned", [2], 3, 2.2)]
    else:
        ev += [("m1", 1, "revoked", [0, 1], 1, 2.1), ("m2", 2, "revoked", [2], 1, 2.1),
               ("m1", 1, "assigned", [0], 2, 2.2), ("m2", 2, "assigned", [1], 2, 2.2),
               ("m3", 3, "assigned", [2], 2, 2.2)]
    ev += [("m1", 1, "revoked", [0] if not coop else [0, 1], 3, 10.0),
           ("m1", 1, "assigned", [0, 1, 2], 4, 10.0)]
    events = [{"member": m, "pid": pid, "event": e, "partitions": p, "generation": g, "t": t}
              for m, pid, e, p, g, t in ev]
    ledger = [{"member": m, "pid": pid, "partition": p, "offset": o, "t": 1.0 + 0.05 * o}
              for m, pid, p in (("m1", 1, 0), ("m2", 2, 2)) for o in range(20)]
    ledger += [{"member": "m3", "pid": 3, "partition": 2, "offset": o, "t": 2.3 + 0.05 * (o - 20)}
               for o in range(20, 35)]
    ledger += [{"member": "m1", "pid": 1, "partition": 2, "offset": o, "t": 10.1 + 0.01 * (o - 30)}
               for o in range(30, 40)]
    return rb.GroupReport(
        mode="sync", client="kafka-python", assignor="cooperative-sticky" if coop else "range", topic="t",
        group_id="g", n_messages=60, partitions=3, processed=len(ledger), duplicates=5, lost=20,
        duplicate_ranges={2: [(30, 34)]}, lost_ranges={0: [(20, 39)]}, steps=steps, ready_t=1.0,
        drain_t=10.5, end_t=10.6, seconds=10.7, ledger=ledger, events=events)


def test_ownership_follows_the_listener_calls_and_ends_at_the_kill():
    own = fake_group().ownership()
    m3 = [o for o in own if o["member"] == "m3"]
    assert m3 == [{"member": "m3", "pid": 3, "partition": 2, "start": 2.2, "end": 4.0, "how_ended": "kill"}]
    m1 = sorted((o["partition"], o["start"], o["end"]) for o in own if o["member"] == "m1")
    assert (0, 1.0, 2.1) in m1 and (1, 1.0, 2.1) in m1 and (2, 10.0, 10.7) in m1


def test_replays_count_for_the_step_before_them():
    rep = fake_group()
    assert rep.replays() == [{"step": "m3 joins", "duplicates": 0},
                             {"step": "m3 crashes (SIGKILL)", "duplicates": 5},
                             {"step": "start", "duplicates": 0}]
    assert rep.replayed_after("m3 crashes (SIGKILL)") == 5
    assert nb10.nb10_crash_replays(rep) == 5
    with pytest.raises(KeyError):
        rep.replayed_after("m9 joins")


def test_handover_kept_through_generations_and_calls():
    eager, coop = fake_group(), fake_group(coop=True)
    assert eager.step_time(eager.steps[2]) == 2.0  # the new process's "started", not the Popen
    assert eager.handover("m3 crashes (SIGKILL)") == {2: 6.0}
    assert eager.kept_through("m1", "m3 joins") == []
    assert coop.kept_through("m1", "m3 joins") == [0, 1] == nb10.nb10_coop_kept(coop)
    assert coop.kept_through("m2", "m3 joins") == []
    assert eager.generations() == {"m1": [1, 2, 4], "m2": [1, 2], "m3": [2]}
    assert [c["event"] for c in eager.listener_calls("m1", after=2.0)] == ["revoked", "assigned", "revoked",
                                                                          "assigned"]
    with pytest.raises(KeyError):
        eager.handover("m3 joins")


def test_pauses_measure_the_longest_gap_of_members_running_through_the_step():
    rep = fake_group()
    ledger = [{"member": m, "pid": pid, "partition": p, "offset": o, "t": t}
              for m, pid, p in (("m1", 1, 0), ("m2", 2, 1))
              for o, t in enumerate([1.0, 1.95, 2.0, 2.6, 2.61, 5.0])]
    rep.ledger = ledger
    got = rep.pauses("m3 joins")
    assert got == {"m1": {"longest_s": 0.6, "stopped_s": 0.6}, "m2": {"longest_s": 0.6, "stopped_s": 0.6}}
    table = rb.rebalance_pauses({"eager": rep}, "m3 joins")
    assert list(table["member"]) == ["m1", "m2"] and set(table["joined_after_s"]) == {None}


def test_summary_and_to_dict_are_json_ready():
    rep = fake_group()
    json.dumps(rep.summary())
    assert rep.to_dict()["duplicate_ranges"] == {"2": [[30, 34]]}
    assert "duplicates" in rep._repr_html_()


# ---------------------------------------------------------------------------- figures and the lab

def test_plot_group_timeline_draws_members_replays_and_steps():
    fig = plots.plot_group_timeline(fake_group())
    top, bottom = fig.axes
    labels = [t.get_text() for t in bottom.get_legend().get_texts()]
    assert labels == ["m1", "m2", "m3", "processed again (5)"]
    texts = [t.get_text().strip() for t in top.texts]
    assert "m3 joins" in texts and "m3 crashes (SIGKILL)" in texts and "read the rest" in texts
    assert [t.get_text() for t in top.get_yticklabels()] == ["partition 0", "partition 1", "partition 2"]


def test_plot_rebalance_pauses_has_a_bar_per_member_and_setup():
    table = [{"setup": "eager", "member": "m1", "longest_s": 0.05, "joined_after_s": 0.3},
             {"setup": "eager", "member": "m2", "longest_s": 0.04, "joined_after_s": 0.3},
             {"setup": "cooperative", "member": "m1", "longest_s": 0.4, "joined_after_s": 0.8},
             {"setup": "cooperative", "member": "m2", "longest_s": 0.3, "joined_after_s": 0.8}]
    fig = plots.plot_rebalance_pauses(table)
    left, right = fig.axes
    assert len(left.patches) == 4 and len(right.patches) == 2
    assert [t.get_text() for t in left.get_xticklabels()] == ["eager", "cooperative"]


def test_rebalance_lab_runs_headlessly_with_a_stand_in():
    calls: list[Any] = []

    def fake_run_group(mode, plan, **kw):
        calls.append((mode, plan, kw))
        return fake_group()

    lab = widgets.rebalance_lab(members=3, event="a member joins", after_s=1.0, mode="auto",
                                run_group=fake_run_group, process_ms=1.0)
    assert lab.plan() == [("m1", "start", 0.0), ("m2", "start", 0.0), ("m3", "start", 0.0),
                          ("m4", "start", 1.0)]
    lab.event.value = "a member crashes (SIGKILL)"
    lab.members.value = 2
    lab.run_button.click()
    lab.wait(30)  # a click runs in a background thread
    assert lab.last_error is None and lab.runs == 1
    mode, plan, kw = calls[0]
    assert mode == "auto" and plan[-1] == ("m2", "kill", 1.0)
    assert kw["assignor"] == "range" and kw["process_ms"] == 1.0 and kw["n_messages"] == 3000
    assert "processed again after &#x27;m3 crashes (SIGKILL)&#x27;" in lab.report.value
    assert lab.progress.value == len(widgets.REBALANCE_STAGES) - 1


def test_rebalance_lab_shows_errors_and_rejects_bad_settings():
    def broken(*a, **k):
        raise TimeoutError("the group did not finish")

    lab = widgets.rebalance_lab(run_group=broken)
    lab.run_button.click()
    lab.wait(30)
    assert not lab.run_button.disabled
    assert isinstance(lab.last_error, TimeoutError) and "did not finish" in lab.status.value
    for kw in ({"event": "a member sings"}, {"mode": "often"}, {"assignor": "fair"}, {"members": 5}):
        with pytest.raises(ValueError):
            widgets.rebalance_lab(**kw)


# ---------------------------------------------------------------------------- the solution listener

def test_solution_listener_commits_processed_offsets_of_revoked_partitions_once():
    import asyncio

    from kafka import TopicPartition

    committed: list[dict] = []

    class FakeFuture:
        def __await__(self):
            yield from ()
            return None

    consumer = SimpleNamespace(commit_async=lambda offsets: committed.append(offsets) or FakeFuture())
    a, b = TopicPartition("t", 0), TopicPartition("t", 1)
    processed = {a: 12, b: 7}
    listener = nb10.nb10_CommitOnRevoke(consumer, processed)
    asyncio.run(listener.on_partitions_revoked({a}))
    asyncio.run(listener.on_partitions_revoked(set()))
    assert [{tp.partition: om.offset for tp, om in c.items()} for c in committed] == [{0: 12}]
    assert processed == {b: 7}  # a partition that comes back must not commit its old offset
    asyncio.run(listener.on_partitions_lost({b}))
    assert processed == {} and len(committed) == 1
    assert nb10.nb10_commit_on_revoke() == "helpers.solutions.nb10:nb10_CommitOnRevoke"


# ---------------------------------------------------------------------------- on the broker

@pytest.mark.broker
def test_a_graceful_leave_hands_over_at_once_and_replays_nothing(kafka):
    rep = rb.run_group("sync", [("m1", "start", 0), ("m2", "start", 0), ("m2", "stop", 0.3)],
                       n_messages=600, partitions=2, process_ms=1.0, bootstrap=kafka.bootstrap)
    assert (rep.duplicates, rep.lost, rep.processed) == (0, 0, 600)
    assert {e["member"] for e in rep.ledger} == {"m1", "m2"}
    assert len({s["pid"] for s in rep.steps}) == 2
    waits = rep.handover("m2 leaves (SIGTERM)")
    assert waits and all(w is not None and w < 3 for w in waits.values())
    m2 = [e["event"] for e in rep.events if e["member"] == "m2"]
    assert m2[0] == "started" and "assigned" in m2 and m2[-2:] == ["revoked", "stopped"]  # close() revokes


@pytest.mark.broker
def test_grade_listener_fails_a_listener_that_does_nothing(kafka, tmp_path, monkeypatch):
    (tmp_path / "lazy_listener.py").write_text(textwrap.dedent("""
        from kafka import ConsumerRebalanceListener

        class Lazy(ConsumerRebalanceListener):
            def __init__(self, consumer, processed):
                pass

            def on_partitions_revoked(self, revoked):
                pass

            def on_partitions_assigned(self, assigned):
                pass
    """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    grade = rb.grade_listener("lazy_listener:Lazy", bootstrap=kafka.bootstrap)
    assert not grade["passed"] and grade["duplicates"] > 0 and grade["lost"] == 0
    assert any("processed again" in p for p in grade["problems"])
