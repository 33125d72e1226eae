"""Click-to-report time of the course's lab widgets, per widget and mode (prints a table).

    .venv/bin/python benchmarks/widget_click.py [--repeat N] [--pause S] [--labs replay,store,rebalance,lag]
                                                [--modes auto,sync,...] [--old-defaults]

Each lab is built headlessly, as a notebook cell builds it; then, N times, the benchmark
clicks its run button and waits until the report and the figure are in the widget (for a
lab whose click still runs synchronously, the click itself). The replay lab shows its
report table before it draws the figure: that time is printed too ("report table alone").
``--pause`` seconds pass between clicks, as a person reads the report (the replay lab's
warm workers start while they do). The first click after a lab is built is shown apart: it also waits for the
lab's topic and warm workers. Median, min and max per row; the load average beside them
(the machine is shared: figures move with the load).

A lab from before the labs rendered their figure themselves gets the PNG render added
(headless, ``display(fig)`` does not render it; JupyterLab's kernel does).

``--old-defaults`` runs the replay lab with the trial it had before the warm workers
(600 messages, crash after 300, interval 1000 ms, max_poll_records 500, no processing
time), to compare like with like. Run it against another checkout with
``PYTHONPATH=<checkout> .venv/bin/python benchmarks/widget_click.py``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import helpers as hp
from helpers import widgets

MODES = ("auto", "sync", "sync_per_record", "async", "combined", "none")
OLD_DEFAULTS = {"n_messages": 600, "crash_after": 300, "interval_ms": 1000, "process_ms": 0.0,
                "max_poll_records": 500}


REPORT_TIMES: list[float] = []  # the replay lab's click-to-report-table times, besides


def click(lab: Any) -> float:
    """Seconds from the click to the report and figure in the widget."""
    t0 = time.perf_counter()
    lab.run_button.click()
    if hasattr(lab, "wait"):
        lab.wait(180)
        if getattr(lab, "report_seconds", None) is not None:
            REPORT_TIMES.append(lab.report_seconds)
    elif getattr(lab, "last_figure", None) is not None:
        # A lab from before LiveRun displayed its figure with display(fig) in an Output widget:
        # headless, that prints the Figure's repr, while in JupyterLab the kernel renders the
        # PNG (bbox_inches="tight", as the course's inline formatter does). Count that render,
        # as today's labs count theirs, so both figures are what a browser waits for.
        import io

        lab.last_figure.savefig(io.BytesIO(), format="png", bbox_inches="tight")
    seconds = time.perf_counter() - t0
    if lab.last_error is not None:
        raise RuntimeError(f"the lab failed: {lab.last_error}")
    return seconds


def measure(name: str, make: Callable[[], Any], repeat: int, pause: float) -> None:
    lab = make()
    load = os.getloadavg()[0]
    first = click(lab)
    times = []
    REPORT_TIMES.clear()
    for _ in range(repeat):
        time.sleep(pause)
        times.append(click(lab))
    if hasattr(lab, "close"):
        lab.close()
    table = (f"; report table alone {statistics.median(REPORT_TIMES):5.2f} s"
             if len(REPORT_TIMES) == repeat else "")
    print(f"{name:34s} median {statistics.median(times):5.2f} s  (min {min(times):5.2f}, "
          f"max {max(times):5.2f}, n={repeat}; first click {first:5.2f} s{table})  load {load:4.1f}",
          flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5, help="clicks measured per row (default 5)")
    p.add_argument("--pause", type=float, default=3.0, help="seconds between clicks (default 3)")
    p.add_argument("--labs", default="replay", help="comma-separated: replay,store,rebalance,lag")
    p.add_argument("--modes", default=",".join(MODES), help="the replay lab's modes")
    p.add_argument("--old-defaults", action="store_true", help="the replay lab's former default trial")
    args = p.parse_args()
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    bootstrap = hp.ensure_broker().bootstrap
    print(f"helpers from {os.path.dirname(hp.__file__)}; {args.repeat} clicks per row, "
          f"{args.pause:g} s apart", flush=True)
    labs = args.labs.split(",")
    if "replay" in labs:
        extra = OLD_DEFAULTS if args.old_defaults else {}
        for mode in args.modes.split(","):
            measure(f"replay lab, {mode}{' (old defaults)' if extra else ''}",
                    lambda mode=mode: widgets.replay_lab(mode=mode, **extra), args.repeat, args.pause)
    if "store" in labs:
        from helpers.offset_store import STORES
        from helpers.topics import create_topic, seed_messages, unique_name

        topic = create_topic(unique_name("bench-store"), 3)
        seed_messages(topic, 200)
        for store in STORES:
            def make(store: str = store) -> Any:
                lab = widgets.offset_store_lab(crash_after=90, n_messages=200, topic=topic,
                                               max_poll_records=20)
                lab.store.value = store
                return lab

            measure(f"offset-store lab, {store}", make, args.repeat, args.pause)
    if "rebalance" in labs:
        for event in widgets.GROUP_EVENTS:
            measure(f"rebalance lab, {event}",
                    lambda event=event: widgets.rebalance_lab(event=event, n_messages=3000,
                                                              process_ms=2.0, session_timeout_ms=6000,
                                                              heartbeat_interval_ms=300),
                    args.repeat, args.pause)
    if "lag" in labs:
        measure("lag lab (defaults: produces 4 s)",
                lambda: widgets.lag_lab(bootstrap=bootstrap), args.repeat, args.pause)
    return 0


if __name__ == "__main__":
    sys.exit(main())
