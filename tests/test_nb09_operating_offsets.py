"""Notebook 09 (operating a group's offsets): what it measured on the broker holds together."""
from __future__ import annotations

import pytest

from notebook_params import PARAMS

pytestmark = [pytest.mark.notebook]

NAME = "09_operating_offsets.ipynb"
P = {"N_PER_PARTITION": 30, "PARTITIONS": 2, "CONSUME_FIRST": 40, "SET_TO": 20, "SHIFT_BY": -5,
     "LAG_RATE": 50, "LAG_PRODUCE_S": 2.0, "LAG_PROCESS_MS": 40, **PARAMS.get(NAME, {})}
HALF = P["N_PER_PARTITION"] // 2
PARTS = range(P["PARTITIONS"])


@pytest.fixture(scope="module")
def rec(executed):
    return executed(NAME)


def ints(d: dict) -> dict[int, int]:
    """Recorded dicts went through JSON: partition keys are strings again."""
    return {int(k): v for k, v in d.items()}


def test_the_group_committed_what_its_member_processed(rec):
    assert sum(ints(rec["committed_at_start"]).values()) == P["CONSUME_FIRST"]
    assert ints(rec["log_end"]) == dict.fromkeys(PARTS, P["N_PER_PARTITION"])
    assert ints(rec["log_start"]) == dict.fromkeys(PARTS, 0) and rec["half"] == HALF


def test_tool_and_admin_api_agree(rec):
    assert rec["tool_vs_admin"] == {"--describe": True, "--describe --members": True,
                                    "--describe --state": True, "--list": True}


def test_refusals_while_the_group_has_a_member(rec):
    (msg,) = rec["refused_reset_errors"]
    assert "can only be reset if the group" in msg and "inactive" in msg and "Stable" in msg
    assert rec["refused_admin"] == {"alter": ["UnknownMemberIdError"],
                                    "delete": ["GroupSubscribedToTopicError"]}


def test_each_reset_step_dry_run_execute_and_twin(rec):
    steps = {s["step"]: s for s in rec["reset_steps"]}
    assert list(steps) == ["--to-datetime", "--to-earliest", "--to-offset", "--shift-by"]
    for s in steps.values():
        assert s["after dry run"] == s["before"], s["step"]          # a dry run changes nothing
        assert {**s["before"], **s["dry run plan"]} == s["after --execute"], s["step"]
        assert s["twin after admin API"] == s["after --execute"], s["step"]
    assert ints(steps["--to-datetime"]["after --execute"]) == dict.fromkeys(PARTS, HALF)
    assert ints(steps["--to-earliest"]["after --execute"]) == dict.fromkeys(PARTS, 0)
    assert set(steps["--to-offset"]["dry run plan"]) == {"0"}
    shifted = ints(steps["--shift-by"]["after --execute"])
    assert shifted == {0: P["SET_TO"] + P["SHIFT_BY"], **{p: 0 for p in PARTS if p}}
    assert len(steps["--shift-by"]["warnings"]) == P["PARTITIONS"] - 1
    assert all("lower than earliest offset" in w for w in steps["--shift-by"]["warnings"])


def test_kafka_python_clamps_a_negative_offset_to_the_end(rec):
    assert rec["negative_reset_offset"] == P["N_PER_PARTITION"]


def test_offsets_gone_retention_and_auto_offset_reset(rec):
    assert rec["retention_minutes"] == 10080 and rec["retention_source"] == "DEFAULT_CONFIG"
    assert set(ints(rec["offsets_after_delete"]).values()) == {-1}
    looks = rec["after_delete"]
    total = P["N_PER_PARTITION"] * P["PARTITIONS"]
    assert looks["earliest"]["existing records read"] == total and not looks["earliest"]["error"]
    assert looks["latest"]["existing records read"] == 0
    assert ints(looks["latest"]["position"]) == dict.fromkeys(PARTS, P["N_PER_PARTITION"])
    assert looks["none"]["error"] is True and looks["none"]["position"] is None


def test_records_written_and_the_formatter_cross_check(rec):
    written = rec["written"]
    for step in ("--to-datetime", "--to-earliest", "--shift-by"):
        assert written[f"tool {step} --execute"] == P["PARTITIONS"]
    assert written["tool --to-offset --execute"] == 1
    assert written["tool --delete-offsets"] == P["PARTITIONS"] and rec["tombstones"] == P["PARTITIONS"]
    assert not any("dry-run" in op or "refused" in op for op in written)
    fmt = rec["formatter"]
    assert fmt["agree"] is True and fmt["mismatches"] == []
    # the member's commit, 2+2+1+2 reset records, and the tombstones
    assert fmt["records"] == P["PARTITIONS"] * 4 + 1 + P["PARTITIONS"]
    assert fmt["tombstones"] == P["PARTITIONS"]


def test_lag_grew_then_returned_to_zero(rec):
    lag = rec["lag"]
    assert lag["stopped_because"] == "caught up"
    assert lag["produced"] == lag["consumed"] == round(P["LAG_RATE"] * P["LAG_PRODUCE_S"])
    assert lag["final_lag"] == 0 and lag["peak_lag"] >= 0.25 * lag["produced"]
    assert lag["caught_up_t"] > lag["produce_end_t"]


def test_tool_runs_stay_modest(rec):
    # 18 runs of Kafka's tools; 19 when the formatter check asked the console consumer again
    # (groups.formatter_vs_decoder: on a busy machine its first fetch can miss --timeout-ms)
    assert 18 <= rec["tool_runs"] <= 19


def test_every_exercise_and_prediction_passes_with_the_reference_solutions(rec):
    exercises = {k: v for k, v in rec.items() if k.startswith("exercise:")}
    assert exercises == {"exercise:to_offset_past_end": True, "exercise:reset_to_datetime": True}
    predictions = {k: v for k, v in rec.items() if k.startswith("prediction:")}
    assert predictions == {"prediction:resets_active_group": True, "prediction:shift_by": True,
                           "prediction:latest_after_delete": True}
    assert rec["claims_count"] == len(rec["claims"]) >= 25
