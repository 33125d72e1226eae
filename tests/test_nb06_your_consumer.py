"""Notebook 06's recorded facts: the hand-written consumer, the service and SIGTERM, the grades."""
import pytest

pytestmark = [pytest.mark.notebook]
NB = "06_your_consumer.ipynb"


def test_a_value_that_is_not_json_arrives_as_undecodable(executed):
    bad = executed(NB)["bad_record"]
    assert bad["value"] and bad["value"].startswith("Undecodable(")
    p0 = next(r for r in executed(NB)["by_hand"] if r["partition"] == bad["partition"])
    assert p0["committed"] == bad["offset"] + 1


def test_the_hand_written_loop_commits_what_it_processed(executed):
    for row in executed(NB)["by_hand"]:
        assert row["committed"] == row["last processed + 1"]


def test_the_service_stops_cleanly_on_sigterm(executed):
    service = executed(NB)["service"]
    assert service["exit_code"] == 0
    assert service["processed"] > 0
    assert service["committed_equals_processed"]
    assert service["members_after"] == 0


def test_a_restart_after_sigterm_reads_nothing_again(executed):
    restart = executed(NB)["restart"]
    assert restart["exit code"] == 0 and restart["members after"] == 0
    assert restart["processed again"] == 0 and restart["never processed"] == 0


def test_the_crash_lab_passes_the_service_loop(executed):
    grade = executed(NB)["grade"]
    assert grade["passed"] and grade["lost"] == 0 and grade["trials"] >= 3
    assert grade["loop"] == "my_service:consume_loop"


def test_the_crash_lab_fails_the_broken_loops_for_their_reasons(executed):
    broken = executed(NB)["broken"]
    before = broken["commit_before_processing"]
    assert not before["passed"] and before["lost"] > 0
    assert any("never processed" in p and "commit after processing" in p for p in before["problems"])
    assert before["fails_on"] == ["SIGKILL"]
    no_close = broken["no_close"]
    assert not no_close["passed"] and no_close["lost"] == 0
    assert False in no_close["left_group"]
    assert any("still a member" in p and "close()" in p for p in no_close["problems"])
    assert no_close["fails_on"] == ["SIGTERM"]


def test_hp_consume_runs_the_learners_loop(executed):
    via = executed(NB)["via_helper"]
    assert via["processed"] > 0 and via["your loop closed the consumer"]


def test_the_reference_batching_loop_replays_at_most_ten(executed):
    grade = executed(NB)["batching_grade"]
    assert grade["passed"] and grade["max_duplicates"] <= 10


def test_a_deserializer_that_raises_stops_poll_on_the_bad_record(executed):
    bad = executed(NB)["bad_record"]
    assert "JSONDecodeError" in bad["strict_error"] and bad["strict_position"] == bad["offset"]
