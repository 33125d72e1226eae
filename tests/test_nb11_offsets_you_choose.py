"""Notebook 11's recorded facts (offsets you choose: next-offset rule, seek, offsets_for_times,
auto_offset_reset, an offset store of your own), and its write-code exercise's stub."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from notebook_params import PARAMS

pytestmark = [pytest.mark.notebook]
NB = "11_offsets_you_choose.ipynb"
P = PARAMS[NB]
ROOT = Path(__file__).resolve().parent.parent


def test_next_offset_rule_and_commits_mid_batch(executed):
    r = executed(NB)
    commits, restart = r["next_offset"]["commits"], r["next_offset"]["restart"]
    last = commits["offset"]["last_processed"]
    assert commits["offset + 1"]["committed"] == last + 1 and restart["offset + 1"][0] == last + 1
    assert commits["offset"]["committed"] == last and restart["offset"][0] == last  # read again
    every = r["commit_every"]
    assert len(every) == P["N_MESSAGES"] // P["COMMIT_EVERY"]
    assert [e["committed_on_broker"] for e in every] == [e["after_offset"] + 1 for e in every]
    assert {e["position"] for e in every} == {P["N_MESSAGES"]}  # the whole batch was fetched
    assert r["metadata"]["consumer"] == r["metadata"]["admin"]
    assert json.loads(r["metadata"]["consumer"])["done_in_batch"] == len(every) * P["COMMIT_EVERY"]
    assert r["too_large"]["raised"] == "OffsetMetadataTooLargeError"


def test_seeks_and_replay_by_time(executed):
    r = executed(NB)
    read = [m["next record read"] for m in r["seeks"]]
    assert read == [5, 17, 0, "nothing (yet)", P["N_MESSAGES"]]
    assert r["seek_committed"] == 5
    assert r["replay"] == {"found": 6, "first_read": 6, "first_ts_after_t0": 6000, "after_last": None}


def test_reset_policies(executed):
    r = executed(NB)
    assert r["none_without_commit"]["raised"] == "NoOffsetForPartitionError"
    assert r["log_range"] == {"first offset": 20, "end offset": P["N_MESSAGES"]}
    after = r["after_deletion"]
    assert after["earliest"]["first record read"] == 20
    assert after["latest"]["first record read"] is None and after["latest"]["position"] == P["N_MESSAGES"]
    assert after["none"]["raised"].startswith("OffsetOutOfRangeError")
    assert {a["committed"] for a in after.values()} == {5}


def test_offset_store_trials_lab_and_grade(executed):
    r = executed(NB)
    rows = r["store_trials"]
    sqlite = [x for x in rows if x["store"] == "offsets in SQLite"]
    kafka = [x for x in rows if x["store"] == "offsets committed to Kafka"]
    assert len(sqlite) == len(kafka) == P["KILLS"]
    assert all(x["db_duplicates"] == 0 and x["db_lost"] == 0 and x["db_rows"] == 200 for x in sqlite)
    assert all(x["ledger_duplicates"] >= 1 for x in sqlite)
    assert all(x["db_lost"] == 0 for x in kafka)
    assert [x["killed_at_record"] for x in sqlite] == [x["killed_at_record"] for x in kafka]
    assert r["lab"]["ok"] and r["lab"]["killed_at_record"] == P["CRASH_AFTER"] and r["lab"]["db_lost"] == 0
    assert r["store_grade"]["passed"] and r["store_grade"]["trials"] == P["GRADE_KILLS"]


@pytest.mark.broker
def test_the_stub_fails_and_the_solution_passes(kafka, tmp_path, monkeypatch):
    from helpers.offset_store import grade_store_loop

    nb = nbformat.read(ROOT / "notebooks" / NB, as_version=4)
    (src,) = [c.source for c in nb.cells if c.source.startswith("%%writefile my_store_loop.py")]
    (tmp_path / "my_store_loop.py").write_text(src.split("\n", 1)[1])
    monkeypatch.chdir(tmp_path)  # the crash lab's child imports the loop from the working directory
    monkeypatch.syspath_prepend(str(tmp_path))
    stub = grade_store_loop("my_store_loop:consume_loop", kills=1, seed=1, progress=False)
    assert not stub.passed and stub.summary()["db_duplicates"] > 0
    assert "same transaction" in " ".join(stub.problems)
    good = grade_store_loop("helpers.solutions.nb11:nb11_store_loop", kills=1, seed=1, progress=False)
    assert good.passed, json.dumps(good.summary())
