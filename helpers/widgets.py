"""Replay lab widget: crash a consumer, watch what it replays (introduced in notebook 02).

:func:`replay_lab` RETURNS a :class:`ReplayLab` holding every control, so a test
can drive it headlessly::

    lab = replay_lab()
    lab.interval.value = 2000
    lab.crash_point.value = 300
    lab.stop_kind.value = "SIGKILL inside a batch"
    lab.run_button.click()          # runs one crash-lab trial, synchronously
    lab.last_report.duplicates      # what that trial measured

``replay_lab(loop="my_loop:consume_loop")`` runs your own loop (notebook 06) as run 1.

In a notebook, show ``lab.box`` (or leave ``lab`` as the cell's value). The trial
runs inside the click handler: the kernel is busy until it ends, the progress bar
moves through the trial's stages, and the replay plot and the report appear when
the trial ends.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ReplayLab", "replay_lab"]

STAGES = ("starting", "run 1 consumes, then crashes; run 2 drains", "plotting", "done")
#: How run 1 stops -> the CrashPlan keywords besides ``after_records``.
STOP_KINDS: dict[str, dict[str, Any]] = {
    "SIGKILL after the record": {},
    "SIGKILL inside a batch": {"mid_batch": True},
    "SIGTERM (graceful stop)": {"graceful": True},
}


@dataclass
class ReplayLab:
    """The controls of one replay lab (notebook 02); ``box`` is what to display."""

    mode: Any  # Dropdown: commit mode
    interval: Any  # IntSlider: auto_commit_interval_ms (auto mode only)
    crash_point: Any  # IntSlider: stop after this many records
    stop_kind: Any  # Dropdown: how run 1 stops (STOP_KINDS)
    run_button: Any  # Button
    progress: Any  # IntProgress over STAGES
    status: Any  # Label: the current stage, or the error
    report: Any  # HTML: the last trial's numbers
    output: Any  # Output: the replay plot
    box: Any  # VBox with all of the above
    run_trial: Callable[..., Any]
    crash_plan: Callable[..., Any]
    trial_settings: dict[str, Any] = field(default_factory=dict)
    last_report: Any = None
    last_figure: Any = None
    last_error: BaseException | None = None
    runs: int = 0

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)

    def run(self) -> Any:
        """Run one trial with the current control values (what the button does)."""
        from IPython.display import display

        from .plots import plot_replay

        self.run_button.disabled = True
        self.last_error = None
        try:
            self._stage(0)
            kw = dict(self.trial_settings)
            if self.mode.value == "auto":
                kw["auto_commit_interval_ms"] = int(self.interval.value)
            self._stage(1)
            plan = self.crash_plan(after_records=int(self.crash_point.value),
                                   **STOP_KINDS[self.stop_kind.value])
            report = self.run_trial(self.mode.value, plan, **kw)
            self._stage(2)
            fig = plot_replay(report)
            self.last_report, self.last_figure = report, fig
            self.runs += 1
            self.report.value = _report_html(report)
            self.output.clear_output(wait=True)
            with self.output:
                display(fig)
            self._stage(3)
            return report
        except Exception as exc:  # shown in the widget, never raised into the event loop
            self.last_error = exc
            self.status.value = f"trial failed: {type(exc).__name__}: {exc}"
            self.progress.bar_style = "danger"
            return None
        finally:
            self.run_button.disabled = False

    def _stage(self, i: int) -> None:
        self.progress.value = i
        self.progress.bar_style = "success" if i == len(STAGES) - 1 else "info"
        self.status.value = STAGES[i]


def _default_crash_plan(**kwargs: Any) -> Any:
    from .crashlab import CrashPlan

    return CrashPlan(**kwargs)


def _default_run_trial(*args: Any, **kwargs: Any) -> Any:
    from .crashlab import run_trial

    return run_trial(*args, **kwargs)


def _get(report: Any, name: str) -> Any:
    return report.get(name) if isinstance(report, dict) else getattr(report, name)


def _spans(ranges: Any) -> str:
    if not ranges:
        return "none"
    parts = []
    for p, rs in sorted(dict(ranges).items(), key=lambda kv: int(kv[0])):
        spans = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in rs)
        parts.append(f"partition {p}: {spans}")
    return "; ".join(parts)


def _report_rows(report: Any) -> list[tuple[str, str]]:
    """The trial in sentences a room can read from the back."""
    ledger = _get(report, "ledger") or []
    run1 = sum(1 for e in ledger if e["run"] == 1)
    k = _get(report, "killed_at") or {}
    crash = _get(report, "crash") or {}
    if crash.get("graceful"):
        how = f"stopped by SIGTERM after {run1} records: finished its batch and closed"
    elif k:
        where = (f", record {k['in_batch']} of a batch of {k['batch_size']}"
                 if k.get("batch_size") else "")
        how = f"SIGKILLed after {k.get('record')} records{where}"
    else:
        how = f"stopped after {run1} records"
    committed = _get(report, "committed_before") or {}
    shown = ", ".join(f"p{p}: {'none' if v is None else v}" for p, v in sorted(
        committed.items(), key=lambda kv: int(kv[0])))
    dup, lost = _get(report, "duplicates"), _get(report, "lost")
    rows = [
        ("commit mode", str(_get(report, "mode"))),
        ("run 1", how),
        ("committed when run 1 stopped", shown or "nothing"),
        ("processed twice", f"{dup} ({_spans(_get(report, 'duplicate_ranges'))})"),
        ("never processed", f"{lost} ({_spans(_get(report, 'lost_ranges'))})"),
    ]
    if not isinstance(report, dict):
        from .crashlab import grade_trial

        verdict = grade_trial(report)
        rows.append(("verdict", "at-least-once held" if verdict["passed"]
                     else " / ".join(verdict["problems"])))
    return rows


def _report_html(report: Any) -> str:
    import html

    body = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                   f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
                   for k, v in _report_rows(report))
    return f"<table style='font-size:1.15em'>{body}</table>"


def replay_lab(
    *,
    mode: str = "auto",
    modes: tuple[str, ...] = ("auto", "sync", "sync_per_record", "async", "combined", "none"),
    interval_ms: int = 1000,
    interval_range: tuple[int, int, int] = (100, 5000, 100),
    crash_after: int = 300,
    n_messages: int = 600,
    loop: Any = None,
    run_trial: Callable[..., Any] | None = None,
    crash_plan: Callable[..., Any] | None = None,
    **trial_settings: Any,
) -> ReplayLab:
    """Build the replay lab (notebook 02): interval and crash-point sliders, a mode
    picker, a run button, a progress bar, the report and the replay plot.

    Each click runs ``run_trial(mode, CrashPlan(after_records=crash_point), ...)``
    (by default :func:`helpers.crashlab.run_trial`) with ``n_messages`` and the other
    ``trial_settings``; ``auto_commit_interval_ms`` comes from the slider in auto mode.
    ``loop`` (yours, as ``"module:function"``; notebook 06) replaces the mode's loop in run 1.
    ``run_trial`` and ``crash_plan`` can be replaced (the tests pass stand-ins).
    """
    import ipywidgets as w

    if mode not in modes:
        raise ValueError(f"mode {mode!r} is not one of {modes}")
    lo, hi, step = interval_range
    if not lo <= interval_ms <= hi:
        raise ValueError(f"interval_ms={interval_ms} is outside {lo}..{hi}")
    if not 1 <= crash_after < n_messages:
        raise ValueError(f"crash_after must be between 1 and n_messages-1 ({n_messages - 1})")
    style = {"description_width": "170px"}
    layout = w.Layout(width="480px")
    mode_w = w.Dropdown(options=list(modes), value=mode, description="commit mode", style=style)
    interval = w.IntSlider(value=interval_ms, min=lo, max=hi, step=step, style=style, layout=layout,
                           description="auto_commit_interval_ms", continuous_update=False)
    crash_point = w.IntSlider(value=crash_after, min=1, max=n_messages - 1, step=1, style=style,
                              layout=layout, description="crash after records",
                              continuous_update=False)
    stop_kind = w.Dropdown(options=list(STOP_KINDS), value=next(iter(STOP_KINDS)),
                           description="how run 1 stops", style=style)
    button = w.Button(description="run trial", button_style="primary", icon="play")
    progress = w.IntProgress(value=0, min=0, max=len(STAGES) - 1, description="progress")
    status = w.Label(value="press 'run trial'")
    report = w.HTML(value="")
    output = w.Output()
    box = w.VBox([mode_w, interval, crash_point, stop_kind, w.HBox([button, progress, status]),
                  report, output])
    settings = {"n_messages": n_messages, **trial_settings}
    if loop is not None:
        from .runner import loop_ref

        settings["loop"] = loop_ref(loop)
    lab = ReplayLab(mode_w, interval, crash_point, stop_kind, button, progress, status, report,
                    output, box, run_trial or _default_run_trial, crash_plan or _default_crash_plan,
                    settings)

    def on_mode(change: dict[str, Any]) -> None:
        interval.disabled = change["new"] != "auto"

    mode_w.observe(on_mode, names="value")
    on_mode({"new": mode})
    button.on_click(lambda _b: lab.run())
    return lab
