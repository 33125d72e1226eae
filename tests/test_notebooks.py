"""Every notebook in notebooks/ runs top to bottom on the real broker (papermill).

Notebook-specific assertions live in tests/test_nbNN_*.py and use the
``executed`` fixture, so each notebook executes once per session.
"""
from __future__ import annotations

import os

import pytest

from nbrun import notebook_paths, run_notebook
from notebook_params import PARAMS

pytestmark = [pytest.mark.notebook]


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_notebook_runs_and_its_claims_hold(path, executed):
    records = executed(path.name)
    assert records, f"{path.name} recorded nothing (use helpers.record)"
    claims = records.get("claims")
    assert isinstance(claims, dict) and claims, f"{path.name} must record a non-empty 'claims' dict"
    failed = [claim for claim, ok in claims.items() if ok is not True]
    assert not failed, f"{path.name}: claims not shown on the broker: {failed}"
    assert records["__images__"] > 0, f"{path.name}: no figure rendered as an image"
    exercises = {k: v for k, v in records.items() if k.startswith("exercise:")}
    assert exercises, f"{path.name} has no exercise check (helpers.check_answer)"
    assert all(exercises.values()), f"{path.name}: reference solutions fail their checks: {exercises}"
    predictions = {k: v for k, v in records.items() if k.startswith("prediction:")}
    assert len(predictions) >= 2, f"{path.name}: fewer than two predict-then-run questions"
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        # the one prediction whose theory is the single broker's round trip (tests/test_nb07_commit_costs.py)
        predictions.pop("prediction:per_record_wait", None)
    assert all(predictions.values()), f"{path.name}: reference predictions are wrong: {predictions}"


def test_unknown_parameter_is_rejected(tmp_path):
    path = notebook_paths()[0]
    with pytest.raises(ValueError, match="no parameter"):
        run_notebook(path, tmp_path, {"NOT_A_PARAMETER": 1})


def test_every_notebook_has_small_test_parameters():
    missing = [p.name for p in notebook_paths() if p.name not in PARAMS]
    assert not missing, f"add small test parameters to tests/notebook_params.py for {missing}"
