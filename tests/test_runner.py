"""The loop contract (helpers.runner) and the mode declarations (helpers.modes), without a broker."""
from __future__ import annotations

import inspect
from typing import Any

import pytest

from helpers import modes, runner


class FakeConsumer:
    """Just enough of a KafkaConsumer for a loop: poll() hands out batches, then nothing."""

    def __init__(self, batches: list[dict[Any, list[Any]]]) -> None:
        self.batches = list(batches)
        self.commits: list[Any] = []
        self._closed = False
        self.close_calls: list[dict[str, Any]] = []

    def poll(self, timeout_ms: int = 0) -> dict[Any, list[Any]]:
        return self.batches.pop(0) if self.batches else {}

    def commit(self, offsets: Any = None) -> None:
        self.commits.append(("sync", offsets))

    def commit_async(self, callback: Any = None) -> None:
        self.commits.append(("async", None))

    def close(self, autocommit: bool = True) -> None:
        self._closed = True
        self.close_calls.append({"autocommit": autocommit})


class Rec:
    def __init__(self, offset: int) -> None:
        self.offset, self.partition, self.topic = offset, 0, "t"


def test_until_stops_on_each_rule_and_says_why():
    u = runner.Until(max_records=3)
    assert u.running()
    u.done(3)
    assert not u.running() and u.reason == "max_records"
    u = runner.Until(drained=lambda: True)
    assert not u.running() and u.reason == "drained"
    u = runner.Until(idle_s=0.0)
    assert u.running()  # idle counts only once records have flowed
    u.done()
    assert not u.running() and u.reason == "idle"
    u = runner.Until(nothing_s=0.0)
    assert not u.running() and u.reason == "nothing to read"
    u = runner.Until()
    u.stop()
    u.stop("later reason is ignored")
    assert not u.running() and u.reason == "stop signal" and u.polls == 1


@pytest.mark.parametrize("name", modes.MODES)
def test_every_built_in_loop_keeps_the_contract_and_closes(name):
    spec = modes.get_mode(name)
    assert spec.loop.__name__ == f"loop_{name}"
    assert list(inspect.signature(spec.loop).parameters)[:3] == ["consumer", "process", "running"]
    batches = [{"tp": [Rec(0), Rec(1)]}, {"tp": [Rec(2)]}]
    consumer, seen = FakeConsumer(batches), []
    until = runner.Until(max_records=3)
    run = runner.run_loop(spec.loop, consumer, lambda r: (seen.append(r.offset), until.done()),
                          until.running)
    assert seen == [0, 1, 2] and run.closed_by_loop and run.error is None
    kinds = [k for k, _ in consumer.commits]
    expected = {"none": [], "auto": [], "sync": ["sync", "sync"], "sync_per_record": ["sync"] * 3,
                "async": ["async", "async"], "combined": ["async", "async", "sync"]}[name]
    assert kinds == expected


def test_run_loop_closes_a_forgotten_consumer_without_committing_and_reports_it():
    def forgetful(consumer, process, running):
        while running():
            for records in consumer.poll(timeout_ms=100).values():
                for r in records:
                    process(r)

    consumer, until = FakeConsumer([{"tp": [Rec(0)]}]), runner.Until(max_records=1)
    run = runner.run_loop(forgetful, consumer, lambda r: until.done(), until.running)
    assert run.closed_by_loop is False and consumer.close_calls == [{"autocommit": False}]
    left_open = FakeConsumer([])
    run = runner.run_loop(forgetful, left_open, lambda r: None, runner.Until(max_records=0).running,
                          close_forgotten=False)
    assert not run.closed_by_loop and left_open.close_calls == []


def test_run_loop_passes_extras_only_to_loops_that_take_them_and_reraises_after_closing():
    got: dict[str, Any] = {}

    def with_callback(consumer, process, running, on_commit=None):
        got["on_commit"] = on_commit
        consumer.close()

    runner.run_loop(with_callback, FakeConsumer([]), print, lambda: False, on_commit=len)
    assert got["on_commit"] is len
    runner.run_loop(modes.loop_sync, FakeConsumer([]), print, lambda: False, on_commit=len)

    def broken(consumer, process, running):
        raise RuntimeError("bug in the loop")

    consumer = FakeConsumer([])
    with pytest.raises(RuntimeError, match="bug in the loop"):
        runner.run_loop(broken, consumer, print, lambda: True)
    assert consumer._closed
    run = runner.run_loop(broken, FakeConsumer([]), print, lambda: True, reraise=False)
    assert run.error == "RuntimeError: bug in the loop"


def test_loops_by_reference_and_clear_errors():
    assert runner.load_loop("helpers.modes:loop_sync") is modes.loop_sync
    assert runner.loop_ref(modes.loop_sync) == "helpers.modes:loop_sync"
    with pytest.raises(ValueError, match="module:function"):
        runner.load_loop("loop_sync")
    with pytest.raises(ValueError, match="cannot import"):
        runner.load_loop("not_a_module_anywhere:f")
    with pytest.raises(ValueError, match="has no function"):
        runner.load_loop("helpers.modes:loop_sometimes")


def test_load_loop_rereads_an_edited_file(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "my_reloaded_loop.py").write_text("def consume_loop(c, p, r):\n    return 1\n")
    assert runner.load_loop("my_reloaded_loop:consume_loop")(0, 0, 0) == 1
    (tmp_path / "my_reloaded_loop.py").write_text("def consume_loop(c, p, r):\n    return 2  # edited\n")
    assert runner.load_loop("my_reloaded_loop:consume_loop")(0, 0, 0) == 2


def test_with_retries_retries_only_stalls_and_raises_the_last():
    calls: list[int] = []

    def flaky(attempt: int) -> str:
        calls.append(attempt)
        if attempt < 2:
            raise runner.Stalled("assigned nothing")
        return "ok"

    assert runner.with_retries(flaky) == ("ok", 2) and calls == [0, 1, 2]
    with pytest.raises(runner.Stalled):
        runner.with_retries(lambda a: (_ for _ in ()).throw(runner.Stalled("x")), attempts=2)
    with pytest.raises(KeyError):
        runner.with_retries(lambda a: {}["missing"])


def test_each_mode_is_declared_once_with_settings_and_a_bound():
    assert modes.MODES == ("none", "auto", "sync", "sync_per_record", "async", "combined")
    assert modes.MODE_SPECS["auto"].settings == {"enable_auto_commit": True}
    assert all(not m.settings["enable_auto_commit"] for n, m in modes.MODE_SPECS.items() if n != "auto")
    k = {"record": 10, "in_batch": 3, "prev_batch_size": 5, "batch_size": 5, "by": "worker",
         "in_last_interval": 4}
    s = {"max_poll_records": 5}
    assert modes.get_mode("sync").bound(k, s, 0) == (3, 3)
    assert modes.get_mode("combined").bound(k, s, 9) == (3, 9)
    with pytest.raises(ValueError, match="unknown commit mode"):
        modes.get_mode("sometimes")
