"""Notebook 05's recorded facts (async + sync in finally, every mode side by side)."""
import pytest

pytestmark = [pytest.mark.notebook]
NB = "05_combined_commit.ipynb"


def _row(rows, mode, exit_kind):
    return next(r for r in rows if r["mode"] == mode and r["exit"] == exit_kind)


def test_combined_graceful_is_clean_and_crash_replays(executed):
    rows = executed(NB)["mode_table"]
    assert _row(rows, "combined", "graceful")["duplicates"] == 0
    assert _row(rows, "combined", "graceful")["lost"] == 0
    assert _row(rows, "combined", "crash")["duplicates"] > 0
    assert len({(r["mode"], r["exit"]) for r in rows}) == 12


def test_unclosed_consumer_lingers_in_its_group(executed):
    m = executed(NB)["membership"]
    assert m["members_after_session_timeout"] == 1 and m["course_members_after_return"] == 0
    assert executed(NB)["membership_after_close"] == 0
