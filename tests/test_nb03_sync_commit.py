"""Notebook 03's recorded facts (synchronous commit), and its write-code stub."""
from __future__ import annotations

import json
import sys

import pytest

from checks import broker_down_ran, session_broker_kept
from nbrun import NOTEBOOKS
from notebook_params import PARAMS

pytestmark = [pytest.mark.notebook]
NB = "03_sync_commit.ipynb"
N_RECORDS = PARAMS[NB]["N_RECORDS"]


def test_one_io_thread_and_commit_failed_error_when_kicked_out(executed):
    kicked = executed(NB)["kicked"]
    assert len(kicked["new_threads"]) == 1 and kicked["new_threads"][0].startswith("kafka-io-")
    assert kicked["left_group"]["state"] != "<stable>"
    assert kicked["raised"] == "CommitFailedError" and kicked["retriable"] is False
    assert kicked["seconds"] < 1.0
    assert executed(NB)["prediction:kicked"] is True  # the reference prediction is what theory says


def test_per_record_commits_once_per_record_and_blocks_longer(executed):
    cost = executed(NB)["cost"]
    per_record, per_batch = cost["sync_per_record"], cost["sync"]
    assert per_record["processed"] == per_record["commits"] == N_RECORDS
    assert 0 < per_batch["commits"] < N_RECORDS and cost["none"]["commits"] == 0
    assert per_record["seconds_inside_commit"] > per_batch["seconds_inside_commit"]
    assert executed(NB)["prediction:per_record_commits"] is True


def test_commit_is_on_the_broker_when_it_returns(executed):
    visible = executed(NB)["visible"]
    assert visible["committed_on_broker_right_after"] == visible["position"] == visible["after_close"]


def check_broker_down(down: dict, shared: bool) -> None:
    """Section 4b stopped the broker and showed its facts; only a shared broker skips it, saying why."""
    if not broker_down_ran(down, shared):
        return
    assert down["raised"] in ("KafkaTimeoutError", "KafkaConnectionError") and down["retriable"] is True
    assert down["seconds"] <= down["request_timeout_s"] + 1.0
    assert down["committed_after_our_retry"] == down["position"]


def test_broker_down_gives_up_within_request_timeout_and_a_retry_lands(executed, kafka):
    check_broker_down(executed(NB)["broker_down"], kafka.shared)
    session_broker_kept(kafka)
    if kafka.shared:
        pytest.skip("a shared broker (KAFKA_BOOTSTRAP_SERVERS): notebook 03 skipped section 4b, as it must")


def test_crash_replays_the_unfinished_batch_or_one_record(executed):
    trials = executed(NB)["crash_trials"]
    sync, per_record = trials["sync"], trials["sync_per_record"]
    assert sync["lost"] == per_record["lost"] == 0
    assert sync["duplicates"] == sync["killed_at"]["in_batch"]
    assert per_record["duplicates"] == 1
    assert executed(NB)["prediction:per_record_replay"] is True


def test_reference_sync_loop_passes_the_crash_lab(executed):
    grade = executed(NB)["grade"]
    assert grade["loop"].endswith(":nb03_sync_loop")
    assert grade["passed"] is True and grade["trials"] == 3 and grade["lost"] == 0 and not grade["problems"]


def _writefile_cell(name: str) -> str:
    cells = json.loads((NOTEBOOKS / NB).read_text())["cells"]
    (src,) = ["".join(c["source"]) for c in cells if "".join(c["source"]).startswith(f"%%writefile {name}")]
    return src.split("\n", 1)[1]


@pytest.mark.broker
def test_the_stub_learners_start_from_fails_the_grade_and_says_why(kafka, tmp_path, monkeypatch):
    """The %%writefile stub runs, but commits before processing: the crash lab must fail it, naming losses."""
    import helpers as hp

    (tmp_path / "stub_nb03_sync_loop.py").write_text(_writefile_cell("my_sync_loop.py"))
    monkeypatch.chdir(tmp_path)  # the crash lab's worker imports loops from the current folder
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        grade = hp.grade_loop("stub_nb03_sync_loop:consume_loop", mode="sync", kills=2, n_messages=300,
                              seed=3, progress=False)
    finally:
        sys.modules.pop("stub_nb03_sync_loop", None)
    assert not grade.passed
    assert any("never processed" in p for p in grade.problems), grade.problems


def test_the_replay_lab_ran_a_sync_trial_in_the_background(executed):
    lab = executed(NB)["widget_trial"]
    assert lab["ok"] is True and lab["runs"] == 1, lab["error"]
    assert lab["mode"] == "sync" and lab["lost"] == 0
    # SIGKILLed after its crash point: at most the unfinished batch comes again
    assert 0 <= lab["duplicates"] <= lab["settings"]["max_poll_records"]
