"""Notebook 01 (offsets as bookmarks): the numbers it measured on the broker hold together."""
from __future__ import annotations

import pytest

from helpers.inspection import java_string_hashcode, offsets_partition_for
from notebook_params import PARAMS

pytestmark = [pytest.mark.notebook]

NAME = "01_offsets_as_bookmarks.ipynb"
P = {"N_MESSAGES": 60, "PARTITIONS": 3, "CONSUME_FIRST": 25, **PARAMS.get(NAME, {})}


@pytest.fixture(scope="module")
def rec(executed):
    return executed(NAME)


def ints(d: dict) -> dict[int, int]:
    """Recorded dicts went through JSON: partition keys are strings again."""
    return {int(k): v for k, v in d.items()}


def test_seeded_and_consumed_counts(rec):
    assert sum(rec["seeded_per_partition"].values()) == P["N_MESSAGES"]
    assert len(rec["seeded_per_partition"]) <= P["PARTITIONS"]
    assert rec["consumed_first"] == P["CONSUME_FIRST"]


def test_position_and_commit_are_last_processed_plus_one(rec):
    last = ints(rec["last_processed"])
    position = ints(rec["position_before_commit"])
    committed = ints(rec["committed_after_commit"])
    assert set(committed) == set(range(P["PARTITIONS"]))
    assert committed == position
    for p, offset in last.items():
        assert committed[p] == offset + 1
    # the consumed records sit below the bookmarks: sum of bookmarks = records consumed
    assert sum(committed.values()) == P["CONSUME_FIRST"]


def test_lag_is_the_work_left(rec):
    lag = ints(rec["lag_after_commit"])
    assert rec["total_lag_after_commit"] == sum(lag.values()) == P["N_MESSAGES"] - P["CONSUME_FIRST"]
    assert set(ints(rec["lag_after_restart"]).values()) == {0}


def test_restart_resumes_at_the_committed_offsets(rec):
    committed = ints(rec["committed_after_commit"])
    resumed = ints(rec["resume_first_offsets"])
    assert resumed, "the restarted consumer read nothing"
    assert all(resumed[p] == committed[p] for p in resumed)
    assert rec["read_after_restart"] == P["N_MESSAGES"] - P["CONSUME_FIRST"]
    assert rec["duplicates_across_restart"] == 0
    assert rec["close_autocommit_default"] is True


def test_new_groups_earliest_reads_all_latest_reads_none(rec):
    assert rec["earliest_group_read"] == P["N_MESSAGES"]
    assert rec["latest_group_read"] == 0
    assert rec["latest_group_read_new"] == 3


def test_offsets_partition_predicted_equals_observed(rec):
    assert rec["offsets_topic_partitions"] == 50
    assert rec["predicted_offsets_partition"] == offsets_partition_for_hash(rec["group_hashcode"], 50)
    assert rec["observed_offsets_partitions"] == [rec["predicted_offsets_partition"]]


def offsets_partition_for_hash(h: int, n: int) -> int:
    return (0 if h == -(2**31) else abs(h)) % n


def test_article_group_verdict_is_computed(rec):
    art = rec["article_group"]
    assert art["hashCode"] == java_string_hashcode("test_group_1")
    assert art["predicted"] == offsets_partition_for("test_group_1", rec["offsets_topic_partitions"])
    assert art["observed"] == [art["predicted"]]
    assert art["committed_offset"] == [3]
    assert rec["article_says"] == 28
    assert rec["article_partition_is_right"] is (art["observed"] == [28])
    assert rec["article_partition_is_right"] is False  # Kafka's formula gives 30


def test_min_value_group_lands_in_partition_zero(rec):
    mv = rec["min_value_group"]
    assert mv["hashCode"] == -(2**31)
    assert mv["observed"] == [0] == [mv["predicted"]]


def test_python_hash_is_salted(rec):
    assert len(set(rec["python_hash_mod_50_by_seed"].values())) > 1


def test_undecodable_record_does_not_stop_the_loop(rec):
    assert rec["mixed_values"] == ["dict", "Undecodable", "dict"]


def test_every_exercise_check_passes_with_the_reference_solutions(rec):
    exercises = {k: v for k, v in rec.items() if k.startswith("exercise:")}
    assert set(exercises) == {"exercise:ex1_offsets_partition", "exercise:ex2_committed_offset",
                              "exercise:ex3_lag"}
    assert all(exercises.values()), exercises
