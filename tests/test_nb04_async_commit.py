"""Notebook 04's recorded facts (async commit and its callback), and its write-code stub."""
from __future__ import annotations

import json
import sys

import pytest

from checks import broker_down_ran, session_broker_kept
from nbrun import NOTEBOOKS

pytestmark = [pytest.mark.notebook]
NB = "04_async_commit.ipynb"


def test_callback_args_and_when_it_runs(executed):
    ok = executed(NB)["async_success"]
    assert ok["types"] == ["dict", "TopicPartition", "OffsetAndMetadata"]
    assert ok["result"] == "None"
    assert ok["broker_answered"] is True
    assert ok["callbacks_run_0.5s_later"] == 0 and ok["callbacks_run_after_poll"] == 1
    never = executed(NB)["async_never_polled"]
    assert never["callbacks_run"] == 0 and never["committed_on_broker"] == never["position"]
    assert executed(NB)["prediction:success_result"] is True


def test_the_loops_last_callback_never_runs(executed):
    loop = executed(NB)["async_loop"]
    commits, callbacks = loop["commits"], loop["callbacks"]
    assert len(commits) >= 2 and len(callbacks) < len(commits)
    assert all(commits[-1] not in c["offsets"].values() for c in callbacks)
    assert all(c["result"] == "None" for c in callbacks)


def test_callbacks_run_in_reverse_completion_order(executed):
    order = executed(NB)["callback_order"]
    assert order["completion_order"] == [1, 2, 3, 4]
    assert order["callback_order"] == [4, 3, 2, 1]
    assert executed(NB)["prediction:callback_order"] is True


def test_failures_reach_the_callback_once_and_are_not_retried(executed, kafka):
    rec = executed(NB)
    kicked = rec["async_kicked_out"]
    assert kicked["left_group"]["state"] != "<stable>"
    assert kicked["callback_result"] == "CommitFailedError" and kicked["async_attempts"] == 1
    check_broker_down(rec["async_broker_down"], kafka.shared)
    session_broker_kept(kafka)


def check_broker_down(down: dict, shared: bool) -> None:
    """Section 5a stopped the broker and showed its facts; only a shared broker skips it, saying why."""
    if not broker_down_ran(down, shared):
        return
    assert down["commit_async_returned_after_s"] < 0.5
    assert down["is_exception"] and down["retriable"] and down["async_attempts"] == 1
    assert down["committed_on_broker"] is None


def test_crash_replays_and_loses_nothing(executed):
    crash = executed(NB)["crash_trial"]
    assert crash["duplicates"] > 0 and crash["lost"] == 0


def test_reference_async_loop_passes_and_commits(executed):
    grade = executed(NB)["grade"]
    assert grade["loop"].endswith(":nb04_async_loop")
    assert grade["passed"] is True and grade["trials"] == 2 and grade["lost"] == 0
    assert grade["async_commits"] > 0
    assert executed(NB)["exercise:on_commit"] is True


def _writefile_cell(name: str) -> str:
    cells = json.loads((NOTEBOOKS / NB).read_text())["cells"]
    (src,) = ["".join(c["source"]) for c in cells if "".join(c["source"]).startswith(f"%%writefile {name}")]
    return src.split("\n", 1)[1]


@pytest.mark.broker
def test_the_stub_learners_start_from_fails_both_checks(kafka, tmp_path, monkeypatch, capsys):
    """The %%writefile stub commits before processing (the crash lab fails it, naming losses), and its
    callback reports successes as well as failures."""
    import helpers as hp

    (tmp_path / "stub_nb04_async_loop.py").write_text(_writefile_cell("my_async_loop.py"))
    monkeypatch.chdir(tmp_path)  # the crash lab's worker imports loops from the current folder
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        grade = hp.grade_loop("stub_nb04_async_loop:consume_loop", mode="async", kills=2, graceful=False,
                              n_messages=300, seed=4, progress=False)
        import stub_nb04_async_loop as stub

        capsys.readouterr()
        stub.on_commit({}, None)
        assert capsys.readouterr().err.strip(), "the stub's callback should (wrongly) report a success"
    finally:
        sys.modules.pop("stub_nb04_async_loop", None)
    assert not grade.passed
    assert any("never processed" in p for p in grade.problems), grade.problems


def test_the_replay_lab_ran_an_async_trial_in_the_background(executed):
    lab = executed(NB)["widget_trial"]
    assert lab["ok"] is True and lab["runs"] == 1, lab["error"]
    # SIGKILLed after a record: at least that record's batch comes again, nothing is lost
    assert lab["mode"] == "async" and lab["lost"] == 0 and lab["duplicates"] >= 1
