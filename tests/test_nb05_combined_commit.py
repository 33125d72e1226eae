"""Notebook 05's recorded facts: async + sync on a clean stop, unclosed consumers, every mode."""
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


def test_article_commits_on_empty_polls_and_never_closes(executed):
    run = executed(NB)["article_run"]
    assert run["requests repeating the offset before"] > 0
    assert run["members of its group after it returned"] == 1


def test_after_an_exception_only_the_article_commits_past_unprocessed_records(executed):
    article, course = executed(NB)["after_error"]
    assert article["never processed"] > 0 and article["processed again on restart"] == 0
    assert course["never processed"] == 0 and course["processed again on restart"] > 0
    assert course["members after"] == 0


def test_unclosed_consumer_leaves_after_max_poll_interval_not_session_timeout(executed):
    leave = executed(NB)["leave"]
    assert leave["article: a member all along"] and leave["article: idle for s"] > 6
    assert 2.9 <= leave["short: left its group after s"] < 6  # max_poll_interval_ms=3000 < session 6000
    assert leave["article: members right after close()"] == 0


def test_the_reference_combined_loop_passes_the_crash_lab(executed):
    grade = executed(NB)["combined_grade"]
    assert grade["passed"] and grade["lost"] == 0 and grade["trials"] == 3


def test_the_replay_lab_ran_a_combined_trial_in_the_background(executed):
    lab = executed(NB)["widget_trial"]
    assert lab["ok"] is True and lab["runs"] == 1, lab["error"]
    # a SIGKILL skips the final sync commit: combined replays like async, and loses nothing
    assert lab["mode"] == "combined" and lab["lost"] == 0 and lab["duplicates"] >= 1
