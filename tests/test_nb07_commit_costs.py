"""Notebook 07 (what commits cost), run once with the small parameters of notebook_params.py."""
from __future__ import annotations

import os

import pytest

from notebook_params import PARAMS

pytestmark = [pytest.mark.notebook]

NB = "07_commit_costs.ipynb"
N = PARAMS[NB]["N_MESSAGES"]
CLIENTS = ("kafka-python", "confluent-kafka")
MODES = ("none", "auto", "sync", "sync_per_record", "async", "combined")


@pytest.fixture(scope="module")
def records(executed):
    return executed(NB)


def test_claims_hold_for_both_clients_and_for_the_callbacks(records):
    claims = records["claims"]
    for client in CLIENTS:
        mine = [k for k in claims if k.startswith(f"{client}: sync")]
        assert len(mine) == 3, mine
        assert any(k.startswith(f"{client}: time inside sync commit calls") for k in claims)
    assert sum("callback" in k or "on_commit" in k for k in claims) == 7
    assert all(v is True for v in claims.values()), claims


def test_callbacks_run_where_the_source_says(records):
    cb = records["callbacks"]
    assert cb["once_answered"] == []  # kafka-python: the answer alone runs nothing
    assert cb["after_commit"] == ["first"]
    assert cb["after_commit_async"] == ["first", "second"]
    assert cb["after_poll"] == ["first", "second", "third"]
    assert cb["after_close"] == ["first", "second", "third"]  # close() never ran "fourth"
    assert cb["ck_after_consume"] == [5]  # confluent-kafka: inside consume() ...
    assert cb["ck_after_close"] == [5, 10]  # ... and inside close()


def test_table_has_every_mode_client_and_style_with_a_unit_floor(records):
    rows = records["table"]
    keys = {(r["client"], r["style"], r["mode"]) for r in rows}
    assert keys == {(c, s, m) for c in CLIENTS for s in ("plain", "article") for m in MODES}
    for r in rows:
        assert r["messages"] == N and r["seconds"] > 0 and r["msgs_per_s"] > 0
        assert r["ratio_min"] <= r["ratio"] <= r["ratio_max"]
        if r["mode"] == "none" and r["style"] == "plain":
            assert r["ratio"] == 1.0
        if r["mode"] == "sync_per_record":
            assert r["commits"] == N and r["commits_per_s"] > 0
    assert records["params"]["n_messages"] == N and records["params"]["repeats"] == PARAMS[NB]["REPEATS"]


def test_round_trips_were_measured_for_both_clients(records):
    assert set(records["round_trips_ms"]) == set(CLIENTS)
    assert all(v > 0 for v in records["round_trips_ms"].values())


def test_exercises_pass_with_reference_solutions_and_predictions_were_checked(records):
    ex = {k: v for k, v in records.items() if k.startswith("exercise:")}
    assert set(ex) == {"exercise:min_batches", "exercise:slowest_mode",
                       "exercise:ck_per_record_commits", "exercise:article_ms_per_commit"}
    assert all(ex.values()), ex
    assert {"prediction:callback_ran", "prediction:per_record_wait"} <= set(records)
    assert records["prediction:callback_ran"] is True  # the theory's answer is what the broker did
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):  # the course's single broker: about 1 ms per commit
        assert records["prediction:per_record_wait"] is True
    # On make test-cluster's three nodes a commit also waits for a follower's copy (min.insync.replicas=2):
    # 12 ms median at load average ~35, band "D" instead of the theory's "C"; the check says why.
