"""Notebook 01 (offsets as bookmarks): the numbers it measured on the broker hold together."""
from __future__ import annotations

import pytest

from helpers.inspection import java_string_hashcode, name_with_hashcode, offsets_partition_for
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


def python2_str_hash(s: bytes, bits: int = 64) -> int:
    """CPython 2.7's string_hash (randomization off), written independently of the notebook's."""
    if not s:
        return 0
    x = s[0] << 7
    for c in s:
        x = ((1000003 * x) ^ c) & ((1 << bits) - 1)
    x = (x ^ len(s)) & ((1 << bits) - 1)
    if x >> (bits - 1):
        x -= 1 << bits
    return -2 if x == -1 else x


def test_seeded_and_consumed_counts(rec):
    assert sum(rec["seeded_per_partition"].values()) == P["N_MESSAGES"]
    assert len(rec["seeded_per_partition"]) <= P["PARTITIONS"]
    assert rec["consumed_first"] == P["CONSUME_FIRST"]


def test_nothing_is_committed_before_commit(rec):
    assert rec["committed_partitions_before"] == 0
    assert sum(ints(rec["position_before_commit"]).values()) == P["CONSUME_FIRST"]


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
    assert rec["last_commit_records"] == rec["fetched_committed"]
    # read after the restarted consumer caught up and committed: every partition at its log end
    assert sum(ints(rec["fetched_committed"]).values()) == P["N_MESSAGES"]


def test_the_bookmarks_partition_has_a_replica_per_broker_up_to_three(rec):
    """1 on the single broker (offsets.topic.replication.factor=1), 3 on `make test-cluster`'s cluster."""
    assert rec["brokers"] >= 1
    assert len(rec["offsets_partition_replicas"]) == min(3, rec["brokers"])


def offsets_partition_for_hash(h: int, n: int) -> int:
    return (0 if h == -(2**31) else abs(h)) % n


def test_article_group_verdict_is_computed(rec):
    art = rec["article_group"]
    # the live group: test_group_1 itself on a private broker, the learner's own on a shared one
    assert art["group"] == rec["learner_prefix"] + "test_group_1"
    assert art["hashCode"] == java_string_hashcode(art["group"])
    assert art["predicted"] == offsets_partition_for(art["group"], rec["offsets_topic_partitions"])
    assert art["observed"] == [art["predicted"]]
    assert rec["article_partition"] == [offsets_partition_for("test_group_1", 50)] == [30]
    if not rec["learner_prefix"]:  # the article's own group, observed on the broker
        assert art["observed"] == [30]
    assert art["committed_offset"] == [3]
    assert rec["article_says"] == 28
    assert rec["article_partition_is_right"] is False


def test_the_articles_28_is_python2s_hash(rec):
    cands = rec["article_28_candidates"]
    assert cands["Kafka: Utils.abs(hashCode) % 50"] == 30
    assert cands["Python 2.7 hash() % 50, 64-bit long"] == python2_str_hash(b"test_group_1") % 50 == 28
    assert rec["formulas_giving_28"] == ["Python 2.7 hash() % 50, 64-bit long"]
    assert rec["python2_real"] in (None, 28)  # a real Python 2.7, where the machine has one
    # Python 3's salted hash gives 28 only for the seeds listed, and varies with the seed
    by_seed = {int(k): v for k, v in rec["python3_hash_mod_50_by_seed"].items()}
    assert len(by_seed) == 50 and len(set(by_seed.values())) > 10
    assert rec["python3_seeds_giving_28"] == [s for s, v in by_seed.items() if v == 28]
    assert len(rec["python3_seeds_giving_28"]) < 5


def test_min_value_group_lands_in_partition_zero(rec):
    mv = rec["min_value_group"]
    assert mv["group"] == name_with_hashcode(rec["learner_prefix"] + "polygenelubricants", -(2**31))
    if not rec["learner_prefix"]:
        assert mv["group"] == "polygenelubricants"
    assert mv["hashCode"] == -(2**31)
    assert mv["observed"] == [0] == [mv["predicted"]]


def test_lambda_deserializer_is_deprecated_not_rejected(rec):
    lam = rec["lambda_deserializer"]
    assert lam["created"] is True
    assert lam["wrapped_as"] == "DeserializeWrapper"
    assert [c for c, _ in lam["warnings"]] == ["DeprecationWarning"]
    assert "does not implement kafka.serializer.Deserializer" in lam["warnings"][0][1]


def test_undecodable_record_does_not_stop_the_loop(rec):
    assert rec["mixed_values"] == ["dict", "Undecodable", "dict"]


def test_every_prediction_and_exercise_check_passes_with_the_reference_solutions(rec):
    predictions = {k: v for k, v in rec.items() if k.startswith("prediction:")}
    assert set(predictions) == {"prediction:committed_partitions_before", "prediction:resume_reads",
                                "prediction:latest_reads"}
    assert all(v is True for v in predictions.values()), predictions
    exercises = {k: v for k, v in rec.items() if k.startswith("exercise:")}
    assert set(exercises) == {"exercise:ex1_offsets_partition", "exercise:ex2_committed_offset",
                              "exercise:ex3_lag"}
    assert all(v is True for v in exercises.values()), exercises
