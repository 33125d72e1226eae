"""Replay lab widget: crash a consumer, watch what it replays (introduced in notebook 02).

:func:`replay_lab` RETURNS a :class:`ReplayLab` holding every control, so a test
can drive it headlessly::

    lab = replay_lab()
    lab.interval.value = 2000
    lab.crash_point.value = 300
    lab.run_button.click()          # runs one crash-lab trial, synchronously
    lab.last_report.duplicates      # what that trial measured

In a notebook, show ``lab.box`` (or leave ``lab`` as the cell's value). The trial
runs inside the click handler: the kernel is busy until it ends, the progress bar
moves through the trial's stages, and the replay plot and the report appear when
the trial ends.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["ReplayLab", "replay_lab"]

STAGES = ("starting", "run 1 consumes, then crashes; run 2 drains", "plotting", "done")


@dataclass
class ReplayLab:
    """The controls of one replay lab (notebook 02); ``box`` is what to display."""

    mode: Any  # Dropdown: commit mode
    interval: Any  # IntSlider: auto_commit_interval_ms (auto mode only)
    crash_point: Any  # IntSlider: SIGKILL after this many records
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
            report = self.run_trial(self.mode.value, self.crash_plan(after_records=int(self.crash_point.value)), **kw)
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


def _report_html(report: Any) -> str:
    import html

    rows = [
        ("mode", _get(report, "mode")),
        ("crash", _get(report, "crash")),
        ("killed at", _get(report, "killed_at")),
        ("messages", _get(report, "n_messages")),
        ("records processed (both runs)", _get(report, "processed")),
        ("processed twice", _get(report, "duplicates")),
        ("never processed", _get(report, "lost")),
        ("committed when run 1 died", _get(report, "committed_before")),
        ("replayed ranges", _get(report, "duplicate_ranges")),
    ]
    body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                   f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def replay_lab(
    *,
    mode: str = "auto",
    modes: tuple[str, ...] = ("auto", "sync", "sync_per_record", "async", "combined", "none"),
    interval_ms: int = 1000,
    interval_range: tuple[int, int, int] = (100, 5000, 100),
    crash_after: int = 300,
    n_messages: int = 600,
    run_trial: Callable[..., Any] | None = None,
    crash_plan: Callable[..., Any] | None = None,
    **trial_settings: Any,
) -> ReplayLab:
    """Build the replay lab (notebook 02): interval and crash-point sliders, a mode
    picker, a run button, a progress bar, the report and the replay plot.

    Each click runs ``run_trial(mode, CrashPlan(after_records=crash_point), ...)``
    (by default :func:`helpers.crashlab.run_trial`) with ``n_messages`` and the other
    ``trial_settings``; ``auto_commit_interval_ms`` comes from the slider in auto mode.
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
    button = w.Button(description="run trial", button_style="primary", icon="play")
    progress = w.IntProgress(value=0, min=0, max=len(STAGES) - 1, description="progress")
    status = w.Label(value="press 'run trial'")
    report = w.HTML(value="")
    output = w.Output()
    box = w.VBox([mode_w, interval, crash_point, w.HBox([button, progress, status]), report, output])
    lab = ReplayLab(mode_w, interval, crash_point, button, progress, status, report, output, box,
                    run_trial or _default_run_trial, crash_plan or _default_crash_plan,
                    {"n_messages": n_messages, **trial_settings})

    def on_mode(change: dict[str, Any]) -> None:
        interval.disabled = change["new"] != "auto"

    mode_w.observe(on_mode, names="value")
    on_mode({"new": mode})
    button.on_click(lambda _b: lab.run())
    return lab
