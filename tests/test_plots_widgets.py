"""helpers.plots and helpers.widgets, headless (no broker): hand-made TrialReport-shaped data."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

# conftest.py selects Agg for this process; never set MPLBACKEND in os.environ here:
# notebook kernels started later in the session would inherit it and draw nothing.
from helpers import plots, widgets
from helpers.crashlab import forkserver, trial


def fake_report(mode: str = "auto", crash_after: int = 30, committed: int = 20,
                n: int = 60, interval_ms: int = 1000) -> dict[str, Any]:
    """One partition: run 1 processes 0..crash_after-1 then dies with `committed`
    stored; run 2 re-reads from `committed`. So committed..crash_after-1 are duplicates."""
    ledger = [{"run": 1, "partition": 0, "offset": o, "t": 0.01 * o} for o in range(crash_after)]
    ledger += [{"run": 2, "partition": 0, "offset": o, "t": 1.0 + 0.01 * o} for o in range(committed, n)]
    commits = [
        {"id": 0, "mode": "auto", "offsets": {"t:0": committed // 2}, "started": 0.05, "completed": 0.06,
         "callback_at": 0.1, "outcome": "success", "error": None, "run": 1},
        {"id": 1, "mode": "auto", "offsets": {"t:0": committed}, "started": 0.2, "completed": 0.21,
         "callback_at": None, "outcome": "success", "error": None, "run": 1},
        {"id": 2, "mode": "auto", "offsets": {"t:0": crash_after}, "started": 0.29, "completed": None,
         "callback_at": None, "outcome": "pending", "error": None, "run": 1},
        {"id": 3, "mode": "auto-sync", "offsets": {"t:0": n}, "started": 1.7, "completed": 1.71,
         "callback_at": None, "outcome": "success", "error": None, "run": 2},
    ]
    dup = crash_after - committed
    return {
        "mode": mode, "crash": {"after_records": crash_after}, "n_messages": n, "topic": "t",
        "group_id": "g", "processed": crash_after + n - committed, "duplicates": dup,
        "duplicate_ranges": {0: [(committed, crash_after - 1)]} if dup else {},
        "lost": 0, "lost_ranges": {}, "committed_before": {0: committed}, "committed_after": {0: n},
        "killed_at": {"record": crash_after, "t": 0.3}, "durations": {"run1_s": 0.3, "run2_s": 0.7,
                                                                     "total_s": 1.0},
        "ledger": ledger, "commits": commits, "interval": interval_ms,
    }


def test_commit_steps_use_only_successful_answers():
    steps = plots.commit_steps(fake_report()["commits"], 0)
    assert steps == [(0.06, 10), (0.21, 20), (1.71, 60)]
    assert plots.commit_steps(fake_report()["commits"], 0, run=2) == [(1.71, 60)]
    # crash-lab rows: "wall" (the trial's clock) wins over the run's own tracer clock
    row = {**fake_report()["commits"][3], "completed": 0.01, "wall": 1.75}
    assert plots.commit_steps([row], 0) == [(1.75, 60)]


def test_plot_replay_draws_runs_commits_crash_and_replayed_range(tmp_path):
    rep = fake_report()
    rep["lost_ranges"] = {"0": [(55, 57)]}
    rep["lost"] = 3
    fig = plots.plot_replay(rep)
    (ax,) = fig.axes
    labels = ax.get_legend_handles_labels()[1]
    for expected in ("run 1 processed", "run 2 processed", "committed offset", "processed twice",
                     "never processed", "crash (record 30)"):
        assert expected in labels
    assert "10 processed twice, 3 lost" in ax.get_title(loc="left")
    (step,) = [ln for ln in ax.get_lines() if ln.get_label() == "committed offset"]
    assert list(step.get_ydata()) == [10, 20, 60, 60]
    fig.savefig(tmp_path / "replay.png")


def test_plot_replay_accepts_an_object_with_to_dict_and_rejects_others():
    obj = SimpleNamespace(to_dict=lambda: fake_report(crash_after=20, committed=20))
    fig = plots.plot_replay(obj)
    assert "0 processed twice" in fig.axes[0].get_title(loc="left")
    with pytest.raises(TypeError):
        plots.plot_replay(42)


def test_plot_sweep_mean_line_and_column_detection():
    import pandas as pd

    df = pd.DataFrame({"auto_commit_interval_ms": [100, 100, 1000, 1000],
                       "duplicates": [1, 3, 10, 30]})
    fig = plots.plot_sweep(df)
    (mean,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "mean"]
    assert list(mean.get_ydata()) == [2.0, 20.0]
    with pytest.raises(KeyError):
        plots.plot_sweep(df, x="nope")


def test_plot_commit_timeline_colours_by_outcome_and_marks_callbacks():
    rows = fake_report()["commits"] + [
        {"id": 4, "mode": "async", "offsets": {}, "started": 1.8, "completed": 1.9, "callback_at": 2.5,
         "outcome": "error", "error": "CommitFailedError: x"}]
    fig = plots.plot_commit_timeline(rows)
    ax = fig.axes[0]
    from matplotlib.colors import to_rgba

    colours = [p.get_facecolor() for p in ax.patches]
    assert len(colours) == 5
    assert colours[0][:3] == to_rgba("tab:green")[:3]
    assert colours[4][:3] == to_rgba("tab:red")[:3]
    assert "callback ran" in ax.get_legend_handles_labels()[1]
    # the pending attempt runs to the end of the time axis (the last event)
    assert ax.patches[2].get_x() + ax.patches[2].get_width() == pytest.approx(2.5)


def test_plot_mode_comparison_bars_per_mode_and_exit():
    table = [{"mode": m, "exit": e, "duplicates": d, "lost": lost}
             for m, e, d, lost in [("auto", "crash", 10, 0), ("auto", "graceful", 0, 0),
                                ("sync", "crash", 2, 0), ("sync", "graceful", 0, 0)]]
    fig = plots.plot_mode_comparison(table)
    dup_ax = fig.axes[0]
    heights = sorted(p.get_height() for p in dup_ax.patches)
    assert heights == [0, 0, 2, 10]


class FakeCrash:
    def __init__(self, **kw: Any) -> None:
        self.kw = kw


def _kw(call: tuple[str, dict, dict]) -> dict:
    """A stand-in's keywords without the progress callback."""
    return {k: v for k, v in call[2].items() if k != "progress"}


def test_replay_lab_runs_a_trial_on_click_and_updates_report_and_plot():
    calls: list[tuple[str, dict, dict]] = []

    def run_trial(mode: str, crash: FakeCrash, **kw: Any) -> dict:
        calls.append((mode, crash.kw, kw))
        return fake_report(mode, crash_after=crash.kw["after_records"], committed=10,
                           interval_ms=kw.get("auto_commit_interval_ms", 0))

    lab = widgets.replay_lab(run_trial=run_trial, crash_plan=FakeCrash, n_messages=60, crash_after=30,
                             partitions=1)
    lab.interval.value = 2500
    lab.crash_point.value = 25
    lab.max_poll_records.value = 7
    lab.run_button.click()
    assert lab.wait(10)["duplicates"] == 15
    assert [(m, c) for m, c, _ in calls] == [("auto", {"after_records": 25})]
    assert _kw(calls[0]) == {"n_messages": 60, "process_ms": 0.0, "partitions": 1,
                             "auto_commit_interval_ms": 2500, "max_poll_records": 7}
    assert lab.last_error is None and lab.runs == 1 and lab.seconds is not None
    assert "processed twice" in lab.report.value and "15" in lab.report.value
    assert lab.progress.value == lab.progress.max and lab.status.value.startswith("done: report in")
    assert 0 < lab.report_seconds <= lab.seconds
    assert lab.last_figure is not None and not lab.run_button.disabled
    (shown,) = lab.output.outputs  # the figure, as a PNG in the Output widget
    assert shown["data"]["image/png"].startswith("iVBORw0KGgo")  # base64 of the PNG signature
    assert lab.summary()["ok"] is True and lab.summary()["duplicates"] == 15

    lab.mode.value = "sync"
    assert lab.interval.disabled
    lab.run_button.click()
    lab.wait(10)
    assert calls[-1][0] == "sync" and "auto_commit_interval_ms" not in calls[-1][2]


def test_replay_lab_click_returns_at_once_and_runs_the_trial_in_a_thread():
    import threading

    release, entered = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def slow_trial(mode: str, crash: FakeCrash, **kw: Any) -> dict:
        seen["thread"] = threading.current_thread()
        kw["progress"]("starting", 1, 0)
        kw["progress"]("consuming", 1, 12)
        entered.set()
        assert release.wait(10)
        kw["progress"]("killed", 1, 30)
        kw["progress"]("counting", 2, 0)
        return fake_report(mode)

    lab = widgets.replay_lab(run_trial=slow_trial, crash_plan=FakeCrash, n_messages=60, crash_after=30)
    lab.run_button.click()                    # returns while the trial is still going
    assert entered.wait(10)
    assert seen["thread"] is not threading.current_thread()
    assert lab.run_button.disabled and lab.live.busy and lab.last_report is None
    assert lab.status.value == "run 1: 12 records processed" and lab.progress.value == 2
    assert lab.click() is False               # a second click while it runs is ignored
    with pytest.raises(TimeoutError, match="still going"):
        lab.wait(0.05)
    release.set()
    assert lab.wait(10)["mode"] == "auto"
    assert not lab.run_button.disabled and lab.runs == 1 and lab.live.runs == 1


def test_replay_lab_shows_a_failed_trial_instead_of_raising():
    def boom(mode: str, crash: Any, **kw: Any) -> None:
        raise RuntimeError("broker went away")

    lab = widgets.replay_lab(run_trial=boom, crash_plan=FakeCrash)
    lab.run_button.click()
    assert lab.wait(10) is None
    assert isinstance(lab.last_error, RuntimeError)
    assert "broker went away" in lab.status.value and lab.progress.bar_style == "danger"
    assert not lab.run_button.disabled
    assert lab.summary()["ok"] is False and "broker went away" in lab.summary()["error"]


def test_live_run_shows_what_escapes_the_work_and_frees_the_button():
    import ipywidgets as w

    button, status = w.Button(description="run"), w.Label()
    live = widgets.LiveRun(button, status)

    def bug() -> None:
        raise KeyError("a bug in the lab itself")

    assert live.start(bug)
    live.wait(10)
    assert isinstance(live.error, KeyError) and "a bug in the lab itself" in status.value
    assert status.value.startswith("failed: KeyError") and not button.disabled


def test_replay_lab_refuses_nonsense_with_a_message_in_the_widget():
    calls: list[Any] = []
    lab = widgets.replay_lab(run_trial=lambda *a, **k: calls.append(a), crash_plan=FakeCrash,
                             n_messages=60, crash_after=30)
    lab.loop.value = "no colon here"          # the crash lab's own message, at once
    assert "a loop is a function or 'module:function'" in lab.status.value
    lab.run_button.click()
    assert lab.wait(10) is None and calls == []
    assert "a loop is a function or 'module:function'" in lab.status.value
    lab.loop.value = "no_such_module_here:consume_loop"
    assert "cannot import 'no_such_module_here'" in lab.status.value
    lab.loop.value = ""
    assert lab.status.value.startswith("ok")
    lab.handoff.value = True
    lab.stop_kind.value = "SIGKILL inside a batch"
    assert "no batch to kill inside" in lab.status.value
    lab.run_button.click()
    assert lab.wait(10) is None and calls == [] and not lab.run_button.disabled


def test_replay_lab_rejects_bad_settings():
    with pytest.raises(ValueError):
        widgets.replay_lab(mode="sometimes")
    with pytest.raises(ValueError):
        widgets.replay_lab(crash_after=600, n_messages=600)
    with pytest.raises(ValueError, match="max_poll_records"):
        widgets.replay_lab(max_poll_records=0, run_trial=lambda *a, **k: None)
    with pytest.raises(ValueError, match="stop"):
        widgets.replay_lab(stop="SIGHUP", run_trial=lambda *a, **k: None)


def test_replay_lab_passes_every_control_and_runs_a_learners_loop():
    calls: list[tuple[str, dict, dict]] = []

    def run_trial(mode: str, crash: FakeCrash, **kw: Any) -> dict:
        calls.append((mode, crash.kw, kw))
        report = fake_report(mode, crash_after=crash.kw["after_records"], committed=10)
        report["crash"] = crash.kw
        if crash.kw.get("graceful"):
            report["killed_at"] = None
        return report

    lab = widgets.replay_lab(run_trial=run_trial, crash_plan=FakeCrash, n_messages=60, crash_after=30,
                             loop="helpers.solutions.broken:no_close", background=False)
    lab.stop_kind.value = "SIGKILL inside a batch"
    lab.run_button.click()                    # background=False: runs in the click
    lab.stop_kind.value = "SIGTERM (graceful stop)"
    lab.handoff.value = True
    lab.run_button.click()
    assert [c[1] for c in calls] == [{"after_records": 30, "mid_batch": True},
                                    {"after_records": 30, "graceful": True}]
    assert all(c[2]["loop"] == "helpers.solutions.broken:no_close" for c in calls)
    assert "handoff" not in calls[0][2] and calls[1][2]["handoff"] is True
    assert "stopped by SIGTERM" in lab.report.value and "{" not in lab.report.value
    with pytest.raises(ValueError, match="%%writefile"):
        def consume_loop(consumer, process, running):
            pass
        consume_loop.__module__ = "__main__"
        widgets.replay_lab(loop=consume_loop, run_trial=run_trial)


def test_every_control_has_a_description_a_browser_test_can_select_by():
    lab = widgets.replay_lab(run_trial=lambda *a, **k: None, crash_plan=FakeCrash)
    controls = [lab.mode, lab.interval, lab.max_poll_records, lab.crash_point, lab.stop_kind,
                lab.handoff, lab.loop, lab.run_button]
    descriptions = [c.description for c in controls]
    assert all(descriptions) and len(set(descriptions)) == len(descriptions)


@pytest.mark.broker
def test_replay_lab_runs_the_crash_lab_with_forked_workers(kafka):
    lab = widgets.replay_lab(mode="sync", n_messages=120, crash_after=45, max_poll_records=20,
                             process_ms=0.0, bootstrap=kafka.bootstrap)
    try:
        lab.stop_kind.value = "SIGKILL inside a batch"
        lab.run_button.click()
        report = lab.wait(90)
        assert lab.last_error is None, lab.last_error
        assert report.mode == "sync" and report.lost == 0
        # killed inside a batch of 20 after record 45 or later: sync replays the unfinished batch
        k = report.killed_at
        assert k["record"] >= 45 and report.duplicates == k["in_batch"] > 0
        assert report.committed_before == {p: v for p, v in report.committed_before.items()}
        assert report.topic == lab.warmup.topic
        # where os.fork exists the lab keeps no warm workers: the fork server it started forked both runs
        assert trial.FORK and lab.warmup.workers is None and widgets._WARM == []
        assert forkserver._SERVER and forkserver._SERVER[0].proc.poll() is None
        first_group = report.group_id
        lab.mode.value = "auto"                  # a second click: same topic, a fresh group
        lab.stop_kind.value = "SIGTERM (graceful stop)"
        lab.run_button.click()
        again = lab.wait(90)
        assert lab.last_error is None, lab.last_error
        assert again.topic == report.topic and again.group_id != first_group
        assert again.duplicates == 0 and again.lost == 0  # close() commits in auto mode
        assert lab.summary()["ok"] and lab.progress.value == lab.progress.max
    finally:
        lab.close()


@pytest.mark.broker
def test_without_fork_only_the_replay_labs_built_or_clicked_last_keep_workers_waiting(kafka, monkeypatch):
    monkeypatch.setattr(trial, "FORK", False)   # as on a system without os.fork
    keep = widgets._KEEP_WARM
    warmups = [widgets._Warmup(20, 1, kafka.bootstrap) for _ in range(keep + 1)]
    try:
        for w in warmups:
            w.thread.join(60)
            assert w.error is None and w.topic, w.error
        # the oldest lost its place while the others were built, and did not start workers later
        assert [w.workers.waiting() for w in warmups] == [0] + [2] * keep
        warmups[0].trial_kwargs()  # clicked again: warm again, and the next oldest stops
        assert [w.workers.waiting() for w in warmups] == [2, 0] + [2] * (keep - 1)
        assert len(widgets._WARM) == keep
    finally:
        for w in warmups:
            widgets._close_warm(w.workers)
    assert all(w.workers not in widgets._WARM for w in warmups)


@pytest.mark.broker
def test_in_a_kernel_a_click_leaves_the_kernel_free_and_the_widget_updates_from_the_thread(kafka):
    """What JupyterLab sees, without a browser: a real ipykernel runs the lab; the cell that
    clicks returns at once, the next cell runs while the trial does, and the widget's
    status and report reach the frontend as comm messages sent from the trial's thread."""
    import time
    from pathlib import Path

    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(Path(widgets.__file__).parent.parent))
    try:
        def run(code: str, timeout: float = 120) -> tuple[float, list[dict]]:
            t0 = time.perf_counter()
            msg_id = kc.execute(code)
            reply = kc.get_shell_msg(timeout=timeout)
            while reply["parent_header"].get("msg_id") != msg_id:  # earlier requests' replies
                reply = kc.get_shell_msg(timeout=timeout)
            assert reply["content"]["status"] == "ok", reply["content"]
            return time.perf_counter() - t0, []

        # 5 ms per record: each run lasts several of run_trial's 0.1 s progress ticks
        run(f"import helpers as hp\nlab = hp.replay_lab(mode='sync', n_messages=120, crash_after=45, "
            f"process_ms=5.0, bootstrap={kafka.bootstrap!r})\nlab.warmup.trial_kwargs()\n"
            "widget_ids = {lab.status.model_id: 'status', lab.report.model_id: 'report', "
            "lab.run_button.model_id: 'button'}")
        while kc.iopub_channel.msg_ready():
            kc.get_iopub_msg(timeout=1)
        click_s, _ = run("lab.run_button.click()")
        free_s, _ = run("1 + 1")                      # the kernel answers while the trial runs
        done_s, _ = run("lab.wait(120)\nassert lab.last_error is None, lab.last_error")
        updates: list[tuple[str, dict]] = []
        while kc.iopub_channel.msg_ready():
            msg = kc.get_iopub_msg(timeout=1)
            if msg["msg_type"] == "comm_msg" and msg["content"]["data"].get("method") == "update":
                updates.append((msg["content"]["comm_id"], msg["content"]["data"]["state"]))
        statuses = [s["value"] for _c, s in updates if "value" in s and isinstance(s["value"], str)]
        assert any("records processed" in v for v in statuses), statuses
        assert any(v.startswith("done: report in") for v in statuses), statuses
        assert any("processed twice" in v for v in statuses)  # the report's HTML
        assert any("image/png" in o.get("data", {}) for _c, s in updates for o in s.get("outputs", []))
        assert any(s.get("disabled") is True for _c, s in updates)
        assert any(s.get("disabled") is False for _c, s in updates)
        assert click_s < 2 and free_s < 2 and done_s > 0
    finally:
        kc.execute("lab.close()")
        kc.stop_channels()
        km.shutdown_kernel(now=True)
