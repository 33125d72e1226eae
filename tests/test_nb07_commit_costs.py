"""Notebook 06 (what commits cost), run once with the small parameters of notebook_params.py."""
from __future__ import annotations

import pytest

from notebook_params import PARAMS

pytestmark = [pytest.mark.notebook]

NB = "06_commit_costs.ipynb"
N = PARAMS[NB]["N_MESSAGES"]


@pytest.fixture(scope="module")
def records(executed):
    return executed(NB)


def test_claims_are_computed_for_both_clients(records):
    claims = records["claims"]
    for client in ("kafka-python", "confluent-kafka"):
        mine = [k for k in claims if k.startswith(f"{client}:")]
        assert len(mine) == 4, mine
    assert all(v is True for v in claims.values()), claims


def test_table_has_every_mode_client_and_style_with_a_unit_floor(records):
    rows = records["table"]
    keys = {(r["client"], r["style"], r["mode"]) for r in rows}
    assert keys == {(c, s, m) for c in ("kafka-python", "confluent-kafka")
                    for s in ("plain", "article")
                    for m in ("none", "auto", "sync", "async", "combined", "sync_per_record")}
    for r in rows:
        assert r["messages"] == N and r["seconds"] > 0 and r["msgs_per_s"] > 0
        if r["mode"] == "none" and r["style"] == "plain":
            assert r["ratio"] == 1.0
        if r["mode"] == "sync_per_record":
            assert r["commits"] == N and r["commits_per_s"] > 0


def test_exercises_pass_with_reference_solutions(records):
    ex = {k: v for k, v in records.items() if k.startswith("exercise:")}
    assert set(ex) == {"exercise:06-min-batches", "exercise:06-slowest-mode",
                       "exercise:06-per-record-commits"}
    assert all(ex.values()), ex
