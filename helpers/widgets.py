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


# ------------------------------------------------------------------------ offsets you choose (notebook 11)

@dataclass
class OffsetStoreLab:
    """The controls of the offset-store lab (notebook 11); ``box`` is what to display.

    Each click runs one crash trial of the chosen loop (its results in SQLite, its offsets
    either in the same transaction or committed to Kafka), kills run 1 after
    ``crash_point`` records, and shows what the database holds after the restart.
    """

    store: Any  # Dropdown: where the offsets go
    crash_point: Any  # IntSlider: SIGKILL after this many records
    run_button: Any  # Button
    status: Any  # Label
    report: Any  # HTML: the trial's numbers
    output: Any  # Output: the figure
    box: Any  # VBox with all of the above
    trial: Callable[..., Any]
    trial_settings: dict[str, Any] = field(default_factory=dict)
    last_result: Any = None
    last_figure: Any = None
    last_error: BaseException | None = None
    runs: int = 0

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)

    def run(self) -> Any:
        """Run one trial with the current control values (what the button does)."""
        import html

        from IPython.display import display

        from .plots import plot_store_trials

        self.run_button.disabled = True
        self.last_error = None
        self.status.value = f"running: SIGKILL after {self.crash_point.value} records, then a restart"
        try:
            row = self.trial(self.store.value, int(self.crash_point.value), **self.trial_settings)
            fig = plot_store_trials([row], title=f"one trial: {self.store.value}")
            self.last_result, self.last_figure = row, fig
            self.runs += 1
            shown = {"killed after record": row.get("killed_at_record"),
                     "processed twice (ledger)": row.get("ledger_duplicates"),
                     "result rows in the database": row.get("db_rows"),
                     "stored twice (database)": row.get("db_duplicates"),
                     "missing from the database": row.get("db_lost"),
                     "offsets in the database": row.get("stored_offsets") or "none",
                     "offsets committed to Kafka": row.get("kafka_committed")}
            self.report.value = "<table>" + "".join(
                f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
                for k, v in shown.items()) + "</table>"
            self.output.clear_output(wait=True)
            with self.output:
                display(fig)
            self.status.value = "done"
            return row
        except Exception as exc:  # shown in the widget, never raised into the event loop
            self.last_error = exc
            self.status.value = f"trial failed: {type(exc).__name__}: {exc}"
            return None
        finally:
            self.run_button.disabled = False


def _default_store_trial(store: str, crash_after: int, **kw: Any) -> Any:
    from .crashlab import CrashPlan
    from .offset_store import STORES, store_trial

    mode, loop = STORES[store]
    return store_trial(loop, CrashPlan(after_records=crash_after), mode=mode, store=store, **kw)


def offset_store_lab(*, crash_after: int = 100, n_messages: int = 200, topic: str | None = None,
                     trial: Callable[..., Any] | None = None, **trial_settings: Any) -> OffsetStoreLab:
    """Build the offset-store lab (notebook 11): a store picker, a kill point, a run button.

    Each click runs ``trial(store, crash_after, n_messages=..., topic=..., **trial_settings)``
    (by default one crash-lab trial of :data:`helpers.offset_store.STORES`' loop, tallied
    from its database) and shows the numbers and a figure. ``topic`` (holding exactly
    ``n_messages``) is shared by every click; ``trial`` can be replaced (tests pass a stand-in).
    """
    import ipywidgets as w

    from .offset_store import STORES

    if not 1 <= crash_after < n_messages:
        raise ValueError(f"crash_after must be between 1 and n_messages-1 ({n_messages - 1})")
    style = {"description_width": "150px"}
    store = w.Dropdown(options=list(STORES), value=next(iter(STORES)), description="offsets go to",
                       style=style, layout=w.Layout(width="420px"))
    crash_point = w.IntSlider(value=crash_after, min=1, max=n_messages - 1, step=1, style=style,
                              layout=w.Layout(width="420px"), description="SIGKILL after records",
                              continuous_update=False)
    button = w.Button(description="run trial", button_style="primary", icon="play")
    status = w.Label(value="press 'run trial'")
    report, output = w.HTML(value=""), w.Output()
    box = w.VBox([store, crash_point, w.HBox([button, status]), report, output])
    settings = {"n_messages": n_messages, "topic": topic, **trial_settings}
    lab = OffsetStoreLab(store, crash_point, button, status, report, output, box,
                         trial or _default_store_trial, settings)
    button.on_click(lambda _b: lab.run())
    return lab


# ------------------------------------------------------------------------ lag over time (notebook 09)

@dataclass
class LagLab:
    """The controls of the lag lab (notebook 09); ``box`` is what to display.

    Each click produces at ``rate`` msg/s for ``produce_s`` seconds into a fresh topic and
    runs a consumer that spends ``process_ms`` per record, redrawing the group's lag as it
    goes. The consumer reads the ``process_ms`` slider before every record: move it during a
    run and watch the lag turn. ``run()`` does one run synchronously (what the tests call).
    """

    process_ms: Any  # IntSlider: ms of work per record, read live
    rate: Any  # IntSlider: producer msg/s
    produce_s: Any  # FloatSlider: how long the producer runs
    run_button: Any  # Button
    status: Any  # Label
    image: Any  # Image: the lag plot (PNG), redrawn during the run
    box: Any  # VBox with all of the above
    experiment: Callable[..., Any]
    new_topic: Callable[[], tuple[str, str]]
    settings: dict[str, Any] = field(default_factory=dict)
    background: bool = True
    last_run: Any = None
    last_error: BaseException | None = None
    runs: int = 0
    thread: Any = None

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)

    def _draw(self, run: Any) -> None:
        import io

        from .plots import plot_lag

        buf = io.BytesIO()
        plot_lag(run).savefig(buf, format="png", dpi=80)
        self.image.value = buf.getvalue()

    def run(self) -> Any:
        """One run with the current slider values, synchronously; returns the LagRun (or None on error)."""
        import time

        self.run_button.disabled = True
        self.last_error = None
        last_draw = [0.0]

        def on_sample(run: Any) -> None:
            s = run.samples[-1]
            self.status.value = (f"t = {s['t']:.1f} s: produced {s['log_end']}, committed {s['committed']}, "
                                 f"lag {s['lag']} (processing {s['process_ms']:g} ms/record)")
            if time.monotonic() - last_draw[0] >= 0.5:
                last_draw[0] = time.monotonic()
                self._draw(run)

        try:
            topic, group = self.new_topic()
            self.status.value = f"producing into {topic}..."
            result = self.experiment(topic, group, rate_per_s=float(self.rate.value),
                                     produce_s=float(self.produce_s.value),
                                     process_ms=lambda: float(self.process_ms.value),
                                     on_sample=on_sample, **self.settings)
            self._draw(result)
            self.last_run = result
            self.runs += 1
            self.status.value = (f"{result.stopped_because} after {result.seconds:.1f} s: peak lag "
                                 f"{result.peak_lag}, {result.consumed} of {result.produced} processed")
            return result
        except Exception as exc:  # shown in the widget, never raised into the event loop
            self.last_error = exc
            self.status.value = f"run failed: {type(exc).__name__}: {exc}"
            return None
        finally:
            self.run_button.disabled = False

    def click(self) -> None:
        """What the button does: run in a background thread (the kernel stays free for the
        sliders), or synchronously when the lab was built with ``background=False``."""
        import threading

        if not self.background:
            self.run()
            return
        if self.thread is not None and self.thread.is_alive():
            return  # one run at a time
        self.thread = threading.Thread(target=self.run, name="lag-lab", daemon=True)
        self.thread.start()

    def wait(self, timeout: float | None = None) -> Any:
        """Wait for a background run to end; returns its LagRun."""
        if self.thread is not None:
            self.thread.join(timeout)
        return self.last_run


def _new_lag_topic(partitions: int) -> Callable[[], tuple[str, str]]:
    def make() -> tuple[str, str]:
        from .topics import create_topic, unique_name

        return create_topic(unique_name("lag"), partitions), unique_name("lag-group")

    return make


def lag_lab(
    *,
    process_ms: int = 30,
    rate_per_s: int = 50,
    produce_s: float = 4.0,
    max_s: float = 40.0,
    partitions: int = 2,
    background: bool = True,
    experiment: Callable[..., Any] | None = None,
    new_topic: Callable[[], tuple[str, str]] | None = None,
    **settings: Any,
) -> LagLab:
    """Build the lag lab (notebook 09): sliders for the consumer's processing time per record,
    the producer's rate and how long it produces; a run button; the lag plot, redrawn live.

    Each run is bounded: the producer stops after ``produce_s`` and the run after ``max_s``
    seconds at most (``helpers.groups.run_lag_experiment``; ``experiment`` and ``new_topic``
    can be replaced, the tests pass stand-ins). With ``background=True`` a click runs it in
    a thread, so the sliders stay live during the run.
    """
    import ipywidgets as w

    if not 0 <= process_ms <= 200:
        raise ValueError(f"process_ms must be between 0 and 200, not {process_ms!r}")
    if not 1 <= rate_per_s <= 500:
        raise ValueError(f"rate_per_s must be between 1 and 500, not {rate_per_s!r}")
    if not 0.5 <= produce_s <= 30:
        raise ValueError(f"produce_s must be between 0.5 and 30 s, not {produce_s!r}")
    if experiment is None:
        from .groups import run_lag_experiment

        experiment = run_lag_experiment
    style = {"description_width": "190px"}
    layout = w.Layout(width="520px")
    proc = w.IntSlider(value=process_ms, min=0, max=200, step=5, description="processing ms / record",
                       style=style, layout=layout)
    rate = w.IntSlider(value=rate_per_s, min=1, max=500, step=1, description="producer msg/s",
                       style=style, layout=layout, continuous_update=False)
    secs = w.FloatSlider(value=produce_s, min=0.5, max=30, step=0.5, description="producer runs (s)",
                         style=style, layout=layout, continuous_update=False)
    button = w.Button(description="run", button_style="primary", icon="play")
    status = w.Label(value="press 'run'; move 'processing ms / record' while it runs")
    image = w.Image(format="png")
    box = w.VBox([proc, rate, secs, w.HBox([button, status]), image])
    lab = LagLab(proc, rate, secs, button, status, image, box, experiment,
                 new_topic or _new_lag_topic(partitions), {"max_s": max_s, **settings}, background)
    button.on_click(lambda _b: lab.click())
    return lab


__all__ += ["LagLab", "lag_lab"]


# ---------------------------------------------------------------------------- the rebalance lab (notebook 10)

#: What happens to the group in the rebalance lab -> (which member, action).
GROUP_EVENTS: dict[str, str] = {
    "a member joins": "start",
    "a member leaves (SIGTERM)": "stop",
    "a member crashes (SIGKILL)": "kill",
}
REBALANCE_STAGES = ("starting", "members consume; the event happens; the rest is read", "plotting", "done")


@dataclass
class RebalanceLab:
    """The controls of one rebalance lab (notebook 10); ``box`` is what to display."""

    members: Any  # IntSlider: members that start together
    event: Any  # Dropdown: GROUP_EVENTS
    after: Any  # FloatSlider: seconds after the group is ready
    mode: Any  # Dropdown: commit mode
    assignor: Any  # Dropdown: partition assignor
    run_button: Any  # Button
    progress: Any  # IntProgress over REBALANCE_STAGES
    status: Any  # Label: the current stage, or the error
    report: Any  # HTML: what the run replayed
    output: Any  # Output: the timeline plot
    box: Any  # VBox with all of the above
    run_group: Callable[..., Any]
    group_settings: dict[str, Any] = field(default_factory=dict)
    last_report: Any = None
    last_figure: Any = None
    last_error: BaseException | None = None
    runs: int = 0

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)

    def plan(self) -> list[tuple[str, str, float]]:
        """The run's steps from the controls: ``(member, action, after_s)``."""
        n = int(self.members.value)
        action = GROUP_EVENTS[self.event.value]
        who = f"m{n + 1}" if action == "start" else f"m{n}"
        return [(f"m{i}", "start", 0.0) for i in range(1, n + 1)] + \
            [(who, action, float(self.after.value))]

    def run(self) -> Any:
        """Run one group with the current control values (what the button does)."""
        from IPython.display import display

        from .plots import plot_group_timeline

        self.run_button.disabled = True
        self.last_error = None
        try:
            self._stage(0)
            self._stage(1)
            report = self.run_group(self.mode.value, self.plan(), assignor=self.assignor.value,
                                    **self.group_settings)
            self._stage(2)
            fig = plot_group_timeline(report)
            self.last_report, self.last_figure = report, fig
            self.runs += 1
            self.report.value = _group_html(report)
            self.output.clear_output(wait=True)
            with self.output:
                display(fig)
            self._stage(3)
            return report
        except Exception as exc:  # shown in the widget, never raised into the event loop
            self.last_error = exc
            self.status.value = f"run failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            self.progress.bar_style = "danger"
            return None
        finally:
            self.run_button.disabled = False

    def _stage(self, i: int) -> None:
        self.progress.value = i
        self.progress.bar_style = "success" if i == len(REBALANCE_STAGES) - 1 else "info"
        self.status.value = REBALANCE_STAGES[i]


def _group_html(report: Any) -> str:
    import html

    rows = [("commit mode, assignor", f"{report.mode}, {report.assignor}"),
            ("members", ", ".join(report.members()))]
    for r in report.replays():
        if r["step"] != "start":
            rows.append((f"processed again after '{r['step']}'", str(r["duplicates"])))
    rows += [("processed twice in all", str(report.duplicates)), ("never processed", str(report.lost)),
             ("seconds", f"{report.seconds:.1f}")]
    body = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                   f"<td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table style='font-size:1.15em'>{body}</table>"


def _default_run_group(*args: Any, **kwargs: Any) -> Any:
    from .rebalance import run_group

    return run_group(*args, **kwargs)


def rebalance_lab(
    *,
    members: int = 2,
    event: str = "a member leaves (SIGTERM)",
    after_s: float = 0.5,
    mode: str = "sync",
    modes: tuple[str, ...] = ("sync", "async", "auto", "combined", "none"),
    assignor: str = "range",
    assignors: tuple[str, ...] = ("range", "roundrobin", "cooperative-sticky"),
    n_messages: int = 3000,
    run_group: Callable[..., Any] | None = None,
    **group_settings: Any,
) -> RebalanceLab:
    """Build the rebalance lab (notebook 10): how many members, what happens to one of them
    and when, which commit mode and assignor; a run button, the timeline and the replays.

    Each click runs ``run_group(mode, plan, assignor=..., n_messages=..., **group_settings)``
    (by default :func:`helpers.rebalance.run_group`): members ``m1``..``mN`` start
    together; after ``after_s`` seconds a new member joins, the last one leaves (SIGTERM)
    or crashes (SIGKILL: the others wait ``session_timeout_ms``, 6 s). A run takes about
    3 to 10 s. ``run_group`` can be replaced (the tests pass a stand-in).
    """
    import ipywidgets as w

    if event not in GROUP_EVENTS:
        raise ValueError(f"event {event!r} is not one of {list(GROUP_EVENTS)}")
    if mode not in modes:
        raise ValueError(f"mode {mode!r} is not one of {modes}")
    if assignor not in assignors:
        raise ValueError(f"assignor {assignor!r} is not one of {assignors}")
    if members not in (2, 3):
        raise ValueError(f"members must be 2 or 3, not {members!r}")
    style = {"description_width": "170px"}
    layout = w.Layout(width="480px")
    members_w = w.IntSlider(value=members, min=2, max=3, description="members at the start",
                            style=style, layout=layout)
    event_w = w.Dropdown(options=list(GROUP_EVENTS), value=event, description="then", style=style)
    after_w = w.FloatSlider(value=after_s, min=0.2, max=3.0, step=0.1, description="seconds later",
                            style=style, layout=layout, continuous_update=False)
    mode_w = w.Dropdown(options=list(modes), value=mode, description="commit mode", style=style)
    assignor_w = w.Dropdown(options=list(assignors), value=assignor, description="assignor", style=style)
    button = w.Button(description="run group", button_style="primary", icon="play")
    progress = w.IntProgress(value=0, min=0, max=len(REBALANCE_STAGES) - 1, description="progress")
    status = w.Label(value="press 'run group'")
    report = w.HTML(value="")
    output = w.Output()
    box = w.VBox([members_w, event_w, after_w, mode_w, assignor_w,
                  w.HBox([button, progress, status]), report, output])
    lab = RebalanceLab(members_w, event_w, after_w, mode_w, assignor_w, button, progress, status,
                       report, output, box, run_group or _default_run_group,
                       {"n_messages": n_messages, "timeout_s": 30.0, **group_settings})
    button.on_click(lambda _b: lab.run())
    return lab

__all__ += ["GROUP_EVENTS", "RebalanceLab", "rebalance_lab"]


# ---------------------------------------------------------------------------- the failover lab (notebook 12)

#: The failover lab's mode choices -> the commit modes a run kills the coordinator under.
FAILOVER_CHOICES: dict[str, tuple[str, ...]] = {
    "all four modes": ("sync", "async", "combined", "auto"),
    "sync": ("sync",), "async": ("async",), "combined": ("combined",), "auto": ("auto",),
}


@dataclass
class FailoverLab:
    """The controls of the failover lab (notebook 12); ``box`` is what to display.

    Each run kills the node coordinating the chosen modes' groups ``kill_after`` seconds
    after every consumer's first acknowledged commit, then brings the node back
    (``recover``), and shows the timeline and the kill table. ``click()`` runs it in a
    background thread, so the kernel stays free; ``wait()`` waits for it; ``run()`` runs
    it synchronously.
    """

    mode: Any  # Dropdown: FAILOVER_CHOICES
    kill_after: Any  # FloatSlider: seconds after the first acknowledged commits
    run_button: Any  # Button
    status: Any  # Label: the current stage, or the error
    report: Any  # HTML: the kill table
    output: Any  # Output: the timeline
    box: Any  # VBox with all of the above
    trial: Callable[..., Any]
    recover: Callable[[int], Any] | None
    settings: dict[str, Any] = field(default_factory=dict)
    last_report: Any = None
    last_recovery: Any = None
    last_figure: Any = None
    last_error: BaseException | None = None
    runs: int = 0
    thread: Any = None

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)

    def _stage(self, text: str) -> None:
        self.status.value = text

    def run(self) -> Any:
        """One run with the current control values, synchronously; the report (or None on error)."""
        import html

        from IPython.display import display

        from .plots import plot_failover

        self.run_button.disabled = True
        self.last_error = None
        try:
            modes = FAILOVER_CHOICES[self.mode.value]
            rep = self.trial(list(modes), kill_after_s=float(self.kill_after.value),
                             on_stage=self._stage, **self.settings)
            self.last_report = rep
            if self.recover is not None:
                self._stage(f"node {rep.node} comes back and catches up")
                self.last_recovery = self.recover(rep.node)
            fig = plot_failover(rep)
            self.last_figure = fig
            self.runs += 1
            back = "" if self.last_recovery is None else \
                f"; then node {rep.node} came back: {html.escape(str(self.last_recovery))}"
            self.report.value = (f"<p>node {rep.node} SIGKILLed{back}</p>"
                                 + rep.table()[["kill_to_first_commit_s", "longest_pause_s", "acked_before",
                                                "found_after", "duplicates", "lost"]].to_html())
            self.output.clear_output(wait=True)
            with self.output:
                display(fig)
            self._stage("done")
            return rep
        except Exception as exc:  # shown in the widget, never raised into the event loop
            self.last_error = exc
            self._stage(f"run failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            return None
        finally:
            self.run_button.disabled = False

    def click(self) -> None:
        """What the button does: one run in a background thread (one at a time)."""
        import threading

        if self.thread is not None and self.thread.is_alive():
            return
        self.thread = threading.Thread(target=self.run, name="failover-lab", daemon=True)
        self.thread.start()

    def wait(self, timeout: float | None = None) -> Any:
        """Wait for a background run to end; returns its report."""
        if self.thread is not None:
            self.thread.join(timeout)
        return self.last_report


def failover_lab(
    *,
    mode: str = "all four modes",
    kill_after_s: float = 1.0,
    trial: Callable[..., Any] | None = None,
    recover: Callable[[int], Any] | None = None,
    **settings: Any,
) -> FailoverLab:
    """Build the failover lab (notebook 12): which commit mode(s), when to kill the coordinator,
    a run button; the timeline of commit attempts and the kill table.

    Each run calls ``trial(modes, kill_after_s=..., on_stage=..., **settings)`` (by default
    :func:`helpers.failover.run_failover`; ``settings`` must give ``bootstrap`` and
    ``kill_coordinator``), then ``recover(node)`` (e.g. restart the node and wait until it
    is in sync). ``trial`` and ``recover`` can be replaced (the tests pass stand-ins).
    """
    import ipywidgets as w

    if mode not in FAILOVER_CHOICES:
        raise ValueError(f"mode {mode!r} is not one of {list(FAILOVER_CHOICES)}")
    if not 0 <= kill_after_s <= 5:
        raise ValueError(f"kill_after_s must be between 0 and 5 seconds, not {kill_after_s!r}")
    if trial is None:
        from .failover import run_failover

        trial = run_failover
    style = {"description_width": "170px"}
    mode_w = w.Dropdown(options=list(FAILOVER_CHOICES), value=mode, description="commit mode", style=style)
    kill_w = w.FloatSlider(value=kill_after_s, min=0.0, max=5.0, step=0.25, style=style,
                           layout=w.Layout(width="480px"), continuous_update=False,
                           description="kill after (s)")
    button = w.Button(description="kill the coordinator", button_style="danger", icon="bolt")
    status = w.Label(value="press the button: the run takes 30 s or more (the failover alone is ~10 s)")
    report, output = w.HTML(value=""), w.Output()
    box = w.VBox([mode_w, kill_w, w.HBox([button, status]), report, output])
    lab = FailoverLab(mode_w, kill_w, button, status, report, output, box, trial, recover, dict(settings))
    button.on_click(lambda _b: lab.click())
    return lab


__all__ += ["FAILOVER_CHOICES", "FailoverLab", "failover_lab"]
