"""Notebook 03's recorded facts (synchronous commit)."""
import pytest

pytestmark = [pytest.mark.notebook]
NB = "03_sync_commit.ipynb"


def test_commit_failed_error_when_kicked_out(executed):
    kicked = executed(NB)["kicked"]
    assert kicked["raised"] == "CommitFailedError"


def test_broker_down_raises_and_costs_are_ordered(executed):
    rec = executed(NB)
    if not rec["broker_down"]["skipped"]:
        assert rec["broker_down"]["raised"] is not None
    cost = rec["cost"]
    assert cost["sync_per_record"]["commits"] == cost["sync_per_record"]["processed"]
    assert rec["crash_trials"]["sync_per_record"]["duplicates"] <= 1
