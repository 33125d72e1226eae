"""Notebook 02's recorded facts (auto commit), from one papermill run on the broker."""
import pytest

pytestmark = [pytest.mark.notebook]
NB = "02_auto_commit.ipynb"


def test_auto_commit_happens_only_inside_poll(executed):
    idle = executed(NB)["idle_consumer"]
    assert idle["attempts_while_not_polling"] == 0 and idle["committed_on_broker"] is None
    assert idle["committed_after_next_poll"] == idle["returned_by_poll"]
    assert [a[0] for a in idle["attempts_after_next_poll"]] == ["auto"]


def test_close_commits_only_in_auto_mode(executed):
    close = executed(NB)["close_experiments"]
    assert close["auto, close()"]["attempts"] == ["auto-sync"]
    assert close["auto, close()"]["committed_on_broker"] == close["auto, close()"]["position_at_close"]
    assert close["manual, close()"]["committed_on_broker"] is None


def test_sweep_duplicates_grow_with_interval_and_handoff_loses(executed):
    rec = executed(NB)
    means = {int(k): v for k, v in rec["sweep_mean_duplicates"].items()}
    ks = sorted(means)
    assert means[ks[-1]] > means[ks[0]]
    assert rec["sweep_lost"] == 0
    assert rec["handoff_trial"]["lost"] > 0
    assert rec["widget_trial"]["ok"] is True
