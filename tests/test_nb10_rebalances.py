"""Notebook 10's recorded facts: rebalances in real member processes, listeners, assignors, KIP-848."""
import pytest

pytestmark = [pytest.mark.notebook]
NB = "10_rebalances.ipynb"


def test_graceful_rebalances_replay_nothing_and_crashes_do(executed):
    rows = executed(NB)["replays"]
    modes = {r["mode"] for r in rows}
    assert modes and len(rows) == 3 * len(modes)
    for r in rows:
        assert r["lost"] == 0
        if r["event"] == "a crash (SIGKILL)":
            assert r["duplicates"] > 0, r
        else:
            assert r["duplicates"] == 0, r


def test_sigterm_hands_over_at_once_and_sigkill_after_the_session_timeout(executed):
    leave, crash = executed(NB)["handover"]
    assert leave["step"] == "m2 leaves (SIGTERM)" and leave["s until another member got them"] < 3
    assert crash["step"] == "m3 crashes (SIGKILL)" and 4.8 <= crash["s until another member got them"] <= 12
    timeline = executed(NB)["timeline"]
    assert timeline["lost"] == 0 and timeline["replays"]["m3 joins"] == 0


def test_what_works_inside_a_kafka_python_listener(executed):
    inside = executed(NB)["listener_inside"]
    assert inside["consumer.commit()"]["raised"].startswith("KafkaError")
    assert "RuntimeError" in inside["consumer.commit()"]["raised"]
    assert inside["consumer.poll()"]["raised"].startswith("KafkaError")
    assert inside["consumer.commit()"]["committed"] == {}
    assert inside["consumer.commit_async()"]["raised"] is None
    landed = inside["consumer.commit_async()"]
    assert landed["committed"] and landed["committed"] == landed["position"]  # what it held at revoke
    assert executed(NB)["awaited_commit"]


def test_cooperative_takes_two_rounds_or_more_and_kafka_python_stops_polling_meanwhile(executed):
    rec = executed(NB)
    assert rec["coop_rounds"] >= 2 and rec["prediction:coop_same_round"] is True
    waiting = rec["coop_waiting"]
    assert waiting["a owns"] and waiting["records waiting in it"] > 0
    assert [v for k, v in waiting.items() if k.startswith("records in")] == [0]
    assert len(waiting["slow_member owns"]) == 1 and waiting["slow_member owns"] != waiting["a owns"]
    setups = {r["setup"] for r in rec["pauses"]}
    assert setups == {"eager (range)", "cooperative-sticky", "KIP-848 (confluent-kafka)"}, rec["pauses"]
    assert all(r["longest_s"] >= 0 for r in rec["pauses"])


def test_two_cooperative_members_polled_in_turn_from_one_thread_keep_rebalancing(executed):
    turns = executed(NB)["coop_turns"]
    assert len(turns) >= 5, turns                       # 5 s of turns of about 0.6 s
    assert len({max(t["one: generation"], t["two: generation"]) for t in turns}) >= 4, turns
    # whichever member joined first gave up a partition, and rejoins at every turn
    assert all("<rebalancing>" in (t["one: state"], t["two: state"]) for t in turns[-3:]), turns


def test_kip848_is_served_by_the_broker_but_not_by_kafka_python(executed):
    rec = executed(NB)
    kip = rec["kip848"]
    assert kip["kafka-python: a group_protocol setting"] is False
    assert kip["kafka-python: has a ConsumerGroupHeartbeat request"] is False
    assert "Unrecognized configs" in kip["kafka-python: KafkaConsumer(group_protocol='consumer')"]
    assert "consumer" in kip["broker: group.coordinator.rebalance.protocols"]
    assert rec["group_types"] == {"eager (range)": "classic", "cooperative-sticky": "classic",
                                  "KIP-848 (confluent-kafka)": "consumer"}


def test_max_poll_interval_and_static_membership(executed):
    slow = executed(NB)["slow"]
    assert slow["group empty"] is True and slow["commit after that"].startswith("CommitFailedError")
    assert ["lost", [0]] in slow["listener calls"] and slow["read again"] is True
    static = executed(NB)["static"]
    assert static["m1 listener calls after the kill"] == []
    assert static["m2 before the kill: (generation, partitions)"] == \
        static["m2 after the restart: (generation, partitions)"]


def test_reference_listener_passes_and_the_lab_ran(executed):
    grade = executed(NB)["listener_grade"]
    assert grade["passed"] and grade["duplicates"] == 0 and grade["lost"] == 0
    assert executed(NB)["lab"]["lost"] == 0
