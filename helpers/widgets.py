"""The course's lab widgets: a click runs a trial, the widget stays live (notebooks 02-05, 09-12).

Every lab's factory RETURNS the lab, holding every control, so a test drives it
headlessly: set values, click, wait::

    lab = replay_lab(mode="sync")
    lab.max_poll_records.value = 20
    lab.crash_point.value = 90
    lab.stop_kind.value = "SIGKILL inside a batch"
    lab.run_button.click()          # the trial runs in a background thread
    report = lab.wait(timeout=60)   # ... until it ends; lab.last_report, lab.last_error
    report.duplicates

A click never blocks the kernel: :class:`LiveRun` (shared by every lab here) disables
the button, runs the work in a thread, shows any error as a message in the widget
(never a traceback lost in the thread) and enables the button again. The work updates
the widget only by setting widget values (a label, a progress bar, the figure's PNG in
an ``Output`` widget's ``outputs``), which ipywidgets 8 sends from any thread.
``background=False`` makes a click run synchronously instead.

In a notebook, show ``lab`` (or ``lab.box``).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LiveRun", "ReplayLab", "replay_lab"]


# ---------------------------------------------------------------------------- the shared mechanism

class LiveRun:
    """Runs a lab's click off the kernel's thread (notebooks 02-05, 09-12).

    :meth:`start` disables ``button`` and runs ``work()`` in a daemon thread (or in the
    caller's, with ``background=False``); whatever ``work`` raises is kept in
    :attr:`error` and shown in ``status``; ``button`` is enabled again at the end.
    One run at a time: a click while one runs is ignored. :meth:`wait` joins the run.
    """

    def __init__(self, button: Any, status: Any, *, background: bool = True,
                 name: str = "lab") -> None:
        self.button, self.status, self.background, self.name = button, status, background, name
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.seconds: float | None = None  # the last run, click to report
        self.runs = 0

    @property
    def busy(self) -> bool:
        """A run is going on."""
        return self.thread is not None and self.thread.is_alive()

    def start(self, work: Callable[[], Any]) -> bool:
        """Run ``work`` (what a click does); False if a run is already going on."""
        if self.busy:
            return False
        self.button.disabled = True
        self.error = None
        if not self.background:
            self._run(work, time.perf_counter())
            return True
        self.thread = threading.Thread(target=self._run, args=(work, time.perf_counter()),
                                       name=self.name, daemon=True)
        self.thread.start()
        return True

    def _run(self, work: Callable[[], Any], t0: float) -> None:
        try:
            work()
        except BaseException as exc:  # kept and shown: a thread has nobody to raise to
            self.error = exc
            first = _first_line(exc)
            self.status.value = f"failed: {type(exc).__name__}: {first}"
        finally:
            self.seconds = time.perf_counter() - t0
            self.runs += 1
            self.button.disabled = False

    def wait(self, timeout: float | None = 60) -> None:
        """Wait for the run to end; ``TimeoutError`` if it is still going after ``timeout`` s."""
        if self.thread is not None:
            self.thread.join(timeout)
            if self.thread.is_alive():
                raise TimeoutError(f"the {self.name} run is still going after {timeout} s")


class _Lab:
    """What every lab shares: display, click, wait."""

    box: Any
    live: LiveRun

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)

    def run(self) -> Any:  # each lab: one run, synchronously, errors shown in the widget
        raise NotImplementedError

    def result(self) -> Any:  # each lab: what its last run produced
        raise NotImplementedError

    def click(self) -> bool:
        """What the button does: start a run (in the background unless built otherwise)."""
        return self.live.start(self.run)

    def wait(self, timeout: float | None = 60) -> Any:
        """Wait for the run a click started (``TimeoutError`` after ``timeout`` s); its result."""
        self.live.wait(timeout)
        return self.result()

    @property
    def seconds(self) -> float | None:
        """The last run's click-to-report time."""
        return self.live.seconds

    @property
    def background(self) -> bool:
        """Whether a click runs in a background thread (set it False to run in the click)."""
        return self.live.background

    @background.setter
    def background(self, value: bool) -> None:
        self.live.background = bool(value)


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message ('' when it has none), for a status line."""
    return (str(exc).strip().splitlines() or [""])[0]


def _show_figure(output: Any, fig: Any) -> None:
    """Put ``fig`` in an ``Output`` widget as a PNG, by setting its ``outputs`` (thread-safe;
    ``with output:`` and ``clear_output()`` depend on which cell runs at the time)."""
    import base64
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    output.outputs = ({"output_type": "display_data", "metadata": {},
                       "data": {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"),
                                "text/plain": f"<Figure {fig.bbox.width:.0f}x{fig.bbox.height:.0f}>"}},)


def _table_html(rows: list[tuple[str, str]]) -> str:
    import html

    body = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                   f"<td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table style='font-size:1.15em'>{body}</table>"


# ------------------------------------------------------------------------ the replay lab (notebooks 02-05)

#: How run 1 stops -> the CrashPlan keywords besides ``after_records``.
STOP_KINDS: dict[str, dict[str, Any]] = {
    "SIGKILL after the record": {},
    "SIGKILL inside a batch": {"mid_batch": True},
    "SIGTERM (graceful stop)": {"graceful": True},
}
#: The replay lab's progress bar: one step per stage of a trial.
STAGES = ("preparing", "run 1 starting", "run 1 consuming", "run 1 stopped", "run 2 starting",
          "run 2 consuming", "counting", "drawing", "done")


class _Warmup:
    """The replay lab's topic (created and seeded once) and its workers' start, prepared in the
    background as soon as the lab is built; every trial uses a fresh group.

    Where ``os.fork`` exists, workers are forked by the crash lab's fork server, started here:
    within 0.05 s per trial of warm workers, for a third of the CPU (``benchmarks/worker_start.py``).
    Elsewhere two warm workers wait; only the :data:`_KEEP_WARM` labs built or clicked last keep
    theirs (re-running a lab's cell builds a new lab); an older lab's next click starts them
    again, and the oldest stop."""

    def __init__(self, n_messages: int, partitions: int, bootstrap: str | None) -> None:
        from .crashlab import trial
        from .crashlab.warm import WarmWorkers

        self.n_messages, self.partitions, self.bootstrap = n_messages, partitions, bootstrap
        self.workers = None if trial.FORK else WarmWorkers(2)
        _keep_warm(self.workers)
        self.topic: str | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._prepare, name="replay-lab-warmup", daemon=True)
        self.thread.start()

    def _prepare(self) -> None:
        try:
            from .broker import ensure_broker
            from .topics import create_topic, seed_messages, unique_name

            bootstrap = self.bootstrap or ensure_broker().bootstrap
            if self.workers is None:
                from .crashlab import forkserver

                forkserver.ready()
            else:
                _fill_if_kept(self.workers)
            topic = create_topic(unique_name("replay-lab"), self.partitions, bootstrap=bootstrap)
            seed_messages(topic, self.n_messages, bootstrap=bootstrap, progress=False)
            self.topic = topic
        except Exception as exc:  # raised to the first click, which shows it
            self.error = exc

    def trial_kwargs(self, timeout: float = 120) -> dict[str, Any]:
        """``topic`` and ``workers`` for :func:`helpers.crashlab.run_trial`, once ready."""
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        if self.topic is None:
            raise TimeoutError(f"the replay lab's topic was not ready after {timeout} s; is the "
                               "broker running (hp.ensure_broker())?")
        _keep_warm(self.workers)  # an older lab clicked again counts as the newest
        _fill_if_kept(self.workers)
        return {"topic": self.topic, "workers": self.workers}


_KEEP_WARM = 3  # replay labs whose workers wait
_WARM: list[Any] = []  # their WarmWorkers, least recently built or clicked first
_WARM_LOCK = threading.Lock()


def _keep_warm(workers: Any) -> None:
    """Count ``workers`` as the newest of the pools kept warm; stop the waiting ones beyond the cap."""
    if workers is None:  # forked workers: no pool
        return
    with _WARM_LOCK:
        if workers in _WARM:
            _WARM.remove(workers)
        _WARM.append(workers)
        while len(_WARM) > _KEEP_WARM:
            _WARM.pop(0).close()


def _fill_if_kept(workers: Any) -> None:
    """Top ``workers`` up, unless a newer lab has taken their place (a closed pool stays closed)."""
    if workers is None:
        return
    with _WARM_LOCK:
        if workers in _WARM:
            workers.fill()


def _close_warm(workers: Any) -> None:
    if workers is None:
        return
    with _WARM_LOCK:
        if workers in _WARM:
            _WARM.remove(workers)
        workers.close()


@dataclass
class ReplayLab(_Lab):
    """The controls of one replay lab (notebooks 02-05); ``box`` is what to display."""

    mode: Any  # Dropdown: commit mode
    interval: Any  # IntSlider: auto_commit_interval_ms (auto mode only)
    max_poll_records: Any  # IntSlider: records per poll()
    crash_point: Any  # IntSlider: stop after this many records
    stop_kind: Any  # Dropdown: how run 1 stops (STOP_KINDS)
    handoff: Any  # Checkbox: process records on another thread (the crash lab's handoff)
    loop: Any  # Text: your loop as "module:function" (empty: the mode's own loop)
    run_button: Any  # Button
    progress: Any  # IntProgress over STAGES
    status: Any  # Label: the current stage, or the error
    report: Any  # HTML: the last trial's numbers
    output: Any  # Output: the replay plot
    box: Any  # VBox with all of the above
    run_trial: Callable[..., Any]
    crash_plan: Callable[..., Any]
    trial_settings: dict[str, Any] = field(default_factory=dict)
    warmup: Any = None  # _Warmup, when the lab runs the real crash lab
    live: Any = None  # LiveRun
    last_report: Any = None
    last_figure: Any = None
    last_error: BaseException | None = None
    runs: int = 0
    report_seconds: float | None = None  # the last click: until the report table showed

    def result(self) -> Any:
        return self.last_report

    def trial_args(self) -> tuple[str, Any, dict[str, Any]]:
        """``(mode, crash plan, keywords)`` for ``run_trial`` from the controls; ``ValueError``
        (saying what to change) for a combination the crash lab refuses."""
        kw = dict(self.trial_settings)
        if self.mode.value == "auto":
            kw["auto_commit_interval_ms"] = int(self.interval.value)
        kw["max_poll_records"] = int(self.max_poll_records.value)
        if self.handoff.value:
            kw["handoff"] = True
        ref = self.loop.value.strip()
        if ref:
            from .runner import loop_ref

            kw["loop"] = loop_ref(ref)  # the crash lab's own message when it cannot be loaded
        stop = STOP_KINDS[self.stop_kind.value]
        if self.handoff.value and stop.get("mid_batch"):
            raise ValueError("with 'hand records to a thread' there is no batch to kill inside: "
                             "records are processed on another thread. Pick 'SIGKILL after the "
                             "record' or untick the hand-off.")
        plan = self.crash_plan(after_records=int(self.crash_point.value), **stop)
        return self.mode.value, plan, kw

    def run(self) -> Any:
        """Run one trial with the current control values, synchronously (a click runs this
        in a background thread); returns the report, or ``None`` after an error (shown)."""
        from .plots import plot_replay

        self.last_error, self.report_seconds = None, None
        t0 = time.perf_counter()
        try:
            self._stage(0, "checking the controls")
            mode, plan, kw = self.trial_args()
            if self.warmup is not None:
                if self.warmup.topic is None:
                    self._stage(0, "preparing: the lab's topic (first run only)")
                kw.update(self.warmup.trial_kwargs())
            kw["progress"] = self._on_progress
            report = self.run_trial(mode, plan, **kw)
            self.report.value = _table_html(_report_rows(report))  # the numbers first ...
            self.last_report, self.report_seconds = report, time.perf_counter() - t0
            self._stage(7, f"report in {self.report_seconds:.1f} s; drawing the replay")
            fig = plot_replay(report)
            _show_figure(self.output, fig)  # ... then the figure
            self.last_figure = fig
            self.runs += 1
            self._stage(8, f"done: report in {self.report_seconds:.1f} s, figure in "
                           f"{time.perf_counter() - t0:.1f} s; change a control and run again")
            return report
        except Exception as exc:  # shown in the widget, never raised into the event loop
            self.last_error = exc
            first = _first_line(exc)
            self.status.value = f"trial failed: {type(exc).__name__}: {first}"
            self.progress.bar_style = "danger"
            return None
        finally:
            if self.warmup is not None and self.warmup.topic is not None:
                _fill_if_kept(self.warmup.workers)  # without os.fork: two fresh workers warm up

    def _on_progress(self, stage: str, run: int, records: int) -> None:
        """``run_trial``'s progress: the bar and a status line."""
        if stage == "starting":
            self._stage(1 if run == 1 else 4,
                        "run 1: starting the consumer (it joins the group)" if run == 1 else
                        "run 2: a fresh consumer restarts in the same group, from its committed offsets")
        elif stage == "consuming":
            self._stage(2 if run == 1 else 5, f"run {run}: {records} records processed")
        elif stage == "killed" and run == 1:
            self._stage(3, f"run 1 killed (SIGKILL) after {records} records")
        elif stage == "stopped" and run == 1:
            graceful = STOP_KINDS[self.stop_kind.value].get("graceful")
            self._stage(3, f"run 1 stopped after {records} records"
                           + (" (SIGTERM: it finished its batch and closed)" if graceful else ""))
        elif stage == "counting":
            self._stage(6, "counting what was processed twice or never")

    def _stage(self, i: int, text: str) -> None:
        self.progress.value = i
        self.progress.bar_style = "success" if i == len(STAGES) - 1 else "info"
        self.status.value = text

    def summary(self) -> dict[str, Any]:
        """The last click, JSON-ready (what a notebook records): ok, the trial's numbers, seconds."""
        rep = self.last_report
        out: dict[str, Any] = {"ok": self.last_error is None and rep is not None, "runs": self.runs,
                               "error": None if self.last_error is None else str(self.last_error),
                               "report_seconds": self.report_seconds, "seconds": self.seconds}
        if rep is not None:
            out.update({k: _get(rep, k) for k in ("mode", "duplicates", "lost", "processed")})
            out["crash"] = _get(rep, "crash")
            out["settings"] = {k: v for k, v in dict(_get(rep, "settings") or {}).items()
                               if k in ("auto_commit_interval_ms", "max_poll_records", "handoff", "loop")}
        return out

    def close(self) -> None:
        """Stop the lab's warm worker processes, if it has any (they also stop when Python exits)."""
        if self.warmup is not None:
            _close_warm(self.warmup.workers)


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


def replay_lab(
    *,
    mode: str = "auto",
    modes: tuple[str, ...] = ("auto", "sync", "sync_per_record", "async", "combined", "none"),
    interval_ms: int = 100,
    interval_range: tuple[int, int, int] = (100, 5000, 100),
    max_poll_records: int = 50,
    crash_after: int = 150,
    stop: str = "SIGKILL after the record",
    handoff: bool = False,
    n_messages: int = 300,
    process_ms: float = 0.0,
    loop: Any = None,
    background: bool = True,
    run_trial: Callable[..., Any] | None = None,
    crash_plan: Callable[..., Any] | None = None,
    **trial_settings: Any,
) -> ReplayLab:
    """Build the replay lab (notebooks 02-05): a crash-lab trial per click, with every
    control the crash lab has; a progress bar while it runs, then the report and the replay plot.

    Controls: commit ``mode``; ``auto_commit_interval_ms`` (auto mode only);
    ``max_poll_records``; the crash point (records run 1 processes before it stops); how
    run 1 stops (SIGKILL after the record, SIGKILL inside a batch, SIGTERM: ``stop``, one of
    :data:`STOP_KINDS`); ``handoff`` (the loop hands records to a thread); your own ``loop``
    as ``"module:function"`` (notebook 06; empty: the mode's own loop). Each click runs
    ``run_trial(mode, CrashPlan(...), n_messages=..., process_ms=..., **trial_settings)``
    (by default :func:`helpers.crashlab.run_trial`) in a background thread
    (``background=False``: in the click). The default lab creates and seeds one topic of
    ``n_messages`` and starts the crash lab's fork server (without ``os.fork``: two warm worker
    processes) as soon as it is built (every trial gets a fresh group on that topic), so a
    click pays for the trial, not for set-up.
    ``process_ms`` (simulated work per record, 0 by default) makes run 1 last long enough
    for auto commits to happen before the crash: notebook 02 passes 2 ms.
    ``run_trial`` and ``crash_plan`` can be replaced (the tests pass stand-ins).
    """
    import ipywidgets as w

    if mode not in modes:
        raise ValueError(f"mode {mode!r} is not one of {modes}")
    lo, hi, step = interval_range
    if not lo <= interval_ms <= hi:
        raise ValueError(f"interval_ms={interval_ms} is outside {lo}..{hi}")
    if isinstance(n_messages, bool) or not isinstance(n_messages, int) or n_messages < 2:
        raise ValueError(f"n_messages must be a whole number >= 2, not {n_messages!r}")
    if not 1 <= crash_after < n_messages:
        raise ValueError(f"crash_after must be between 1 and n_messages-1 ({n_messages - 1})")
    if not 1 <= max_poll_records <= 500:
        raise ValueError(f"max_poll_records must be between 1 and 500, not {max_poll_records!r}")
    if stop not in STOP_KINDS:
        raise ValueError(f"stop {stop!r} is not one of {list(STOP_KINDS)}")
    ref = ""
    if loop is not None:
        from .runner import loop_ref

        ref = loop_ref(loop)
    style = {"description_width": "190px"}
    layout = w.Layout(width="520px")
    mode_w = w.Dropdown(options=list(modes), value=mode, description="commit mode", style=style)
    interval = w.IntSlider(value=interval_ms, min=lo, max=hi, step=step, style=style, layout=layout,
                           description="auto_commit_interval_ms", continuous_update=False)
    poll_records = w.IntSlider(value=max_poll_records, min=1, max=500, step=1, style=style,
                               layout=layout, description="max_poll_records", continuous_update=False)
    crash_point = w.IntSlider(value=crash_after, min=1, max=n_messages - 1, step=1, style=style,
                              layout=layout, description="crash after records",
                              continuous_update=False)
    stop_kind = w.Dropdown(options=list(STOP_KINDS), value=stop, description="how run 1 stops",
                           style=style, layout=layout)
    handoff_w = w.Checkbox(value=handoff, description="hand records to a thread (handoff)",
                           style=style, layout=layout)
    loop_w = w.Text(value=ref, description="your loop (module:function)", style=style,
                    layout=layout, placeholder="empty: the mode's own loop; e.g. my_loop:consume_loop",
                    continuous_update=False)
    button = w.Button(description="run trial", button_style="primary", icon="play",
                      tooltip="run 1 consumes and is stopped; run 2 restarts; the report counts")
    progress = w.IntProgress(value=0, min=0, max=len(STAGES) - 1, description="progress")
    status = w.Label(value="press 'run trial'")
    report = w.HTML(value="")
    output = w.Output()
    box = w.VBox([mode_w, interval, poll_records, crash_point, stop_kind, handoff_w, loop_w,
                  w.HBox([button, progress]), status, report, output])
    settings = {"n_messages": n_messages, "process_ms": process_ms, **trial_settings}
    warmup = None
    if run_trial is None:
        warmup = _Warmup(n_messages, int(trial_settings.get("partitions", 3)),
                         trial_settings.get("bootstrap"))
    lab = ReplayLab(mode_w, interval, poll_records, crash_point, stop_kind, handoff_w, loop_w,
                    button, progress, status, report, output, box,
                    run_trial or _default_run_trial, crash_plan or _default_crash_plan,
                    settings, warmup)
    lab.live = LiveRun(button, status, background=background, name="replay lab")

    def on_mode(change: dict[str, Any]) -> None:
        interval.disabled = change["new"] != "auto"

    def on_loop(change: dict[str, Any]) -> None:
        try:
            lab.trial_args()
            status.value = "ok: press 'run trial'"
        except ValueError as exc:
            status.value = f"cannot run this: {_first_line(exc)}"

    mode_w.observe(on_mode, names="value")
    on_mode({"new": mode})
    loop_w.observe(on_loop, names="value")
    handoff_w.observe(on_loop, names="value")
    stop_kind.observe(on_loop, names="value")
    button.on_click(lambda _b: lab.click())
    return lab


# ------------------------------------------------------------------------ offsets you choose (notebook 11)

@dataclass
class OffsetStoreLab(_Lab):
    """The controls of the offset-store lab (notebook 11); ``box`` is what to display.

    Each click runs one crash trial of the chosen loop (its results in SQLite, its offsets
    either in the same transaction or committed to Kafka), kills run 1 after
    ``crash_point`` records, and shows what the database holds after the restart; in a
    background thread (:class:`LiveRun`): ``lab.wait()`` returns the row.
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
    live: Any = None  # LiveRun
    last_result: Any = None
    last_figure: Any = None
    last_error: BaseException | None = None
    runs: int = 0

    def result(self) -> Any:
        return self.last_result

    def run(self) -> Any:
        """Run one trial with the current control values, synchronously (a click runs this
        in a background thread); returns the row, or ``None`` after an error (shown)."""
        from .plots import plot_store_trials

        self.last_error = None
        t0 = time.perf_counter()
        self.status.value = (f"running: SIGKILL after {self.crash_point.value} records, then a restart "
                             "(a few seconds)")
        try:
            row = self.trial(self.store.value, int(self.crash_point.value), **self.trial_settings)
            fig = plot_store_trials([row], title=f"one trial: {self.store.value}")
            shown = {"killed after record": row.get("killed_at_record"),
                     "processed twice (ledger)": row.get("ledger_duplicates"),
                     "result rows in the database": row.get("db_rows"),
                     "stored twice (database)": row.get("db_duplicates"),
                     "missing from the database": row.get("db_lost"),
                     "offsets in the database": row.get("stored_offsets") or "none",
                     "offsets committed to Kafka": row.get("kafka_committed")}
            self.report.value = _table_html([(k, str(v)) for k, v in shown.items()])
            _show_figure(self.output, fig)
            self.last_result, self.last_figure = row, fig
            self.runs += 1
            self.status.value = f"done in {time.perf_counter() - t0:.1f} s"
            return row
        except Exception as exc:  # shown in the widget, never raised into the event loop
            self.last_error = exc
            self.status.value = f"trial failed: {type(exc).__name__}: {exc}"
            return None


def _default_store_trial(store: str, crash_after: int, **kw: Any) -> Any:
    from .crashlab import CrashPlan
    from .offset_store import STORES, store_trial

    mode, loop = STORES[store]
    return store_trial(loop, CrashPlan(after_records=crash_after), mode=mode, store=store, **kw)


def offset_store_lab(*, crash_after: int = 100, n_messages: int = 200, topic: str | None = None,
                     background: bool = True, trial: Callable[..., Any] | None = None,
                     **trial_settings: Any) -> OffsetStoreLab:
    """Build the offset-store lab (notebook 11): a store picker, a kill point, a run button
    (the trial runs in a background thread unless ``background=False``).

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
    lab.live = LiveRun(button, status, background=background, name="offset-store lab")
    button.on_click(lambda _b: lab.click())
    return lab


# ------------------------------------------------------------------------ lag over time (notebook 09)

@dataclass
class LagLab(_Lab):
    """The controls of the lag lab (notebook 09); ``box`` is what to display.

    Each click produces at ``rate`` msg/s for ``produce_s`` seconds into a fresh topic and
    runs a consumer that spends ``process_ms`` per record, redrawing the group's lag as it
    goes. The consumer reads the ``process_ms`` slider before every record: move it during a
    run and watch the lag turn. A click runs in a background thread (:class:`LiveRun`);
    ``run()`` does one run synchronously.
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
    live: Any = None  # LiveRun
    last_run: Any = None
    last_error: BaseException | None = None
    runs: int = 0

    def result(self) -> Any:
        return self.last_run

    def _draw(self, run: Any) -> None:
        import io

        from .plots import plot_lag

        buf = io.BytesIO()
        plot_lag(run).savefig(buf, format="png", dpi=80)
        self.image.value = buf.getvalue()

    def run(self) -> Any:
        """One run with the current slider values, synchronously; returns the LagRun (or None on error)."""
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

    @property
    def thread(self) -> Any:
        """The background run's thread (None before the first click)."""
        return self.live.thread


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
                 new_topic or _new_lag_topic(partitions), {"max_s": max_s, **settings})
    lab.live = LiveRun(button, status, background=background, name="lag lab")
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
class RebalanceLab(_Lab):
    """The controls of one rebalance lab (notebook 10); ``box`` is what to display.

    A click runs the group in a background thread (:class:`LiveRun`): ``lab.wait()``
    returns its report.
    """

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
    live: Any = None  # LiveRun
    last_report: Any = None
    last_figure: Any = None
    last_error: BaseException | None = None
    runs: int = 0

    def result(self) -> Any:
        return self.last_report

    def plan(self) -> list[tuple[str, str, float]]:
        """The run's steps from the controls: ``(member, action, after_s)``."""
        n = int(self.members.value)
        action = GROUP_EVENTS[self.event.value]
        who = f"m{n + 1}" if action == "start" else f"m{n}"
        return [(f"m{i}", "start", 0.0) for i in range(1, n + 1)] + \
            [(who, action, float(self.after.value))]

    def run(self) -> Any:
        """Run one group with the current control values, synchronously (a click runs this
        in a background thread); returns the report, or ``None`` after an error (shown)."""
        from .plots import plot_group_timeline

        self.last_error = None
        t0 = time.perf_counter()
        try:
            self._stage(0)
            plan = self.plan()
            self._stage(1, f"{int(self.members.value)} members consume; {self.event.value} after "
                           f"{float(self.after.value):g} s; the rest is read (3 to 10 s)")
            report = self.run_group(self.mode.value, plan, assignor=self.assignor.value,
                                    **self.group_settings)
            self._stage(2)
            fig = plot_group_timeline(report)
            self.report.value = _group_html(report)
            _show_figure(self.output, fig)
            self.last_report, self.last_figure = report, fig
            self.runs += 1
            self._stage(3, f"done in {time.perf_counter() - t0:.1f} s")
            return report
        except Exception as exc:  # shown in the widget, never raised into the event loop
            self.last_error = exc
            self.status.value = f"run failed: {type(exc).__name__}: {_first_line(exc)}"
            self.progress.bar_style = "danger"
            return None

    def _stage(self, i: int, text: str | None = None) -> None:
        self.progress.value = i
        self.progress.bar_style = "success" if i == len(REBALANCE_STAGES) - 1 else "info"
        self.status.value = text or REBALANCE_STAGES[i]


def _group_html(report: Any) -> str:
    rows = [("commit mode, assignor", f"{report.mode}, {report.assignor}"),
            ("members", ", ".join(report.members()))]
    for r in report.replays():
        if r["step"] != "start":
            rows.append((f"processed again after '{r['step']}'", str(r["duplicates"])))
    rows += [("processed twice in all", str(report.duplicates)), ("never processed", str(report.lost)),
             ("seconds", f"{report.seconds:.1f}")]
    return _table_html(rows)


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
    background: bool = True,
    run_group: Callable[..., Any] | None = None,
    **group_settings: Any,
) -> RebalanceLab:
    """Build the rebalance lab (notebook 10): how many members, what happens to one of them
    and when, which commit mode and assignor; a run button, the timeline and the replays.

    Each click runs ``run_group(mode, plan, assignor=..., n_messages=..., **group_settings)``
    (by default :func:`helpers.rebalance.run_group`): members ``m1``..``mN`` start
    together; after ``after_s`` seconds a new member joins, the last one leaves (SIGTERM)
    or crashes (SIGKILL: the others wait ``session_timeout_ms``, 6 s). A run takes about
    3 to 10 s, in a background thread unless ``background=False``. ``run_group`` can be
    replaced (the tests pass a stand-in).
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
    lab.live = LiveRun(button, status, background=background, name="rebalance lab")
    button.on_click(lambda _b: lab.click())
    return lab

__all__ += ["GROUP_EVENTS", "RebalanceLab", "rebalance_lab"]


# ---------------------------------------------------------------------------- the failover lab (notebook 12)

#: The failover lab's mode choices -> the commit modes a run kills the coordinator under.
FAILOVER_CHOICES: dict[str, tuple[str, ...]] = {
    "all four modes": ("sync", "async", "combined", "auto"),
    "sync": ("sync",), "async": ("async",), "combined": ("combined",), "auto": ("auto",),
}


@dataclass
class FailoverLab(_Lab):
    """The controls of the failover lab (notebook 12); ``box`` is what to display.

    Each run kills the node coordinating the chosen modes' groups ``kill_after`` seconds
    after every consumer's first acknowledged commit, shows the kill table and the timeline,
    then brings the node back (``recover``) before the button is enabled again. A click runs
    it in a background thread (:class:`LiveRun`), so the kernel stays free; ``wait()`` returns
    its report; ``run()`` runs it synchronously.
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
    live: Any = None  # LiveRun

    def result(self) -> Any:
        return self.last_report

    def wait(self, timeout: float | None = 300) -> Any:
        """Wait for the run a click started (a run takes 30 s or more); its report."""
        return super().wait(timeout)

    def _stage(self, text: str) -> None:
        self.status.value = text

    def run(self) -> Any:
        """One run with the current control values, synchronously; the report (or None on error)."""
        import html

        from .plots import plot_failover

        self.last_error = None
        try:
            modes = FAILOVER_CHOICES[self.mode.value]
            rep = self.trial(list(modes), kill_after_s=float(self.kill_after.value),
                             on_stage=self._stage, **self.settings)
            self.last_report, self.last_recovery = rep, None
            table = rep.table()[["kill_to_first_commit_s", "longest_pause_s", "acked_before",
                                 "found_after", "duplicates", "lost"]].to_html()
            self.report.value = f"<p>node {rep.node} SIGKILLed</p>" + table  # the numbers first ...
            fig = plot_failover(rep)
            _show_figure(self.output, fig)  # ... then the figure (thread-safe, unlike `with output:`)
            self.last_figure = fig
            self.runs += 1
            if self.recover is not None:  # ... then the node comes back, before the next run
                self._stage(f"node {rep.node} comes back and catches up")
                self.last_recovery = self.recover(rep.node)
                self.report.value = (f"<p>node {rep.node} SIGKILLed; then node {rep.node} came back: "
                                     f"{html.escape(str(self.last_recovery))}</p>" + table)
            self._stage("done")
            return rep
        except Exception as exc:  # shown in the widget, never raised into the event loop
            self.last_error = exc
            self._stage(f"run failed: {type(exc).__name__}: {_first_line(exc)}")
            return None


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
    lab.live = LiveRun(button, status, name="failover lab")
    button.on_click(lambda _b: lab.click())
    return lab


__all__ += ["FAILOVER_CHOICES", "FailoverLab", "failover_lab"]
