"""Notebook 04's recorded facts (async commit and its callback)."""
import pytest

pytestmark = [pytest.mark.notebook]
NB = "04_async_commit.ipynb"


def test_callback_args_and_timing(executed):
    ok = executed(NB)["async_success"]
    assert ok["result"] == "None" and ok["result_is_True"] is False
    assert ok["callbacks_run_1s_later"] == 0 and ok["callbacks_run_after_poll"] == 1
    assert executed(NB)["async_never_polled"]["callbacks_run"] == 0


def test_failure_reaches_callback_as_exception_once(executed):
    rec = executed(NB)
    assert rec["async_kicked_out"]["callback_result"] == "CommitFailedError"
    assert rec["async_kicked_out"]["async_attempts"] == 1
    down = rec["async_broker_down"]
    if not down["skipped"]:
        assert down["is_exception"] and down["async_attempts"] == 1


def test_callbacks_run_in_reverse_completion_order(executed):
    order = executed(NB)["callback_order"]
    assert order["callback_order"] == list(reversed(order["completion_order"]))
