"""Every widget the notebooks create, used in the browser as a person would: drag a slider,
pick in a dropdown, click the button; the report and the figure must update. Controls are found
by their descriptions, never by position. Each click's click-to-report time is measured."""
from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import jlab
import pytest
from jlab import MEASURED

WIDGETS_PY = jlab.ROOT / "helpers" / "widgets.py"


def factories() -> list[str]:
    """The widget factories of helpers/widgets.py (``def <name>_lab(``), a new one included."""
    return re.findall(r"^def (\w+_lab)\(", WIDGETS_PY.read_text(), flags=re.M)


@cache
def uses() -> dict[str, list[str]]:
    """factory -> the notebooks whose code calls it."""
    found: dict[str, list[str]] = {f: [] for f in factories()}
    for name in jlab.notebook_names():
        cells = json.loads((jlab.NOTEBOOKS / name).read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        for f in found:
            if re.search(rf"\b{f}\(", code):
                found[f].append(name)
    return found


def notebooks_with_widgets() -> set[str]:
    return {n for names in uses().values() for n in names}


class Widget:
    """One lab's cell in the page; measures click-to-report (and click-to-figure) times."""

    def __init__(self, page: Any, cell: Any, factory: str, notebook: str) -> None:
        self.page, self.cell, self.factory, self.notebook = page, cell, factory, notebook

    def figure_src(self) -> str | None:
        img = self.cell.locator(".widget-output img, img.widget-image").first
        return img.get_attribute("src") if img.count() else None

    def click_and_wait(self, name: str, what: str, report: Callable[[], str | None],
                       done: Callable[[str], bool], timeout_s: float = 120.0) -> str:
        """Click button ``name``; wait until ``report()`` changed and ``done(text)``; then until the
        figure changed. Records click-to-report seconds; returns the report's text."""
        before, figure_before = report(), self.figure_src()
        btn = jlab.button(self.cell, name)
        btn.scroll_into_view_if_needed()
        t0 = time.perf_counter()
        btn.click()
        deadline = t0 + timeout_s
        text = None
        while time.perf_counter() < deadline:
            text = report()
            if text and text != before and done(text):
                break
            time.sleep(0.02)
        else:
            pytest.fail(f"{self.factory} in {self.notebook}: no new report {timeout_s:.0f} s after "
                        f"clicking '{name}' ({what}); the report shows: {text!r}")
        seconds = time.perf_counter() - t0
        while (src := self.figure_src()) == figure_before or src is None:
            assert time.perf_counter() < deadline, f"{self.factory}: the figure did not change after '{name}'"
            time.sleep(0.02)
        figure_s = time.perf_counter() - t0
        img = self.cell.locator(".widget-output img, img.widget-image").first
        img.scroll_into_view_if_needed()
        self.page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=img.element_handle(),
                                    timeout=30_000)
        MEASURED["widgets"].setdefault(f"{self.factory} ({self.notebook[:2]})", []).append(
            {"what": what, "seconds": round(seconds, 2), "figure_seconds": round(figure_s, 2)})
        print(f"{self.factory} in {self.notebook}: {what}: click-to-report {seconds:.2f} s, "
              f"click-to-figure {figure_s:.2f} s")
        return text

    def html_report(self) -> str | None:
        loc = self.cell.locator(".widget-html-content").first
        return loc.inner_text() if loc.count() else None


# ------------------------------------------------------------------ one driver per widget factory

def drive_replay_lab(w: Widget) -> None:
    c = w.cell
    assert jlab.dropdown_options(c, "commit mode"), "no 'commit mode' dropdown"
    jlab.pick(c, "commit mode", "auto")
    interval = jlab.drag_slider(w.page, jlab.slider(c, "auto_commit_interval_ms"), 400)
    if jlab.slider(c, "max_poll_records").count():  # the replay lab has it since the live-widget rework
        jlab.drag_slider(w.page, jlab.slider(c, "max_poll_records"), 20)
    crash = int(jlab.drag_slider(w.page, jlab.slider(c, "crash after records"),
                                 jlab.slider_value(jlab.slider(c, "crash after records")) * 0.6))
    jlab.pick(c, "how run 1 stops", "SIGKILL after the record")
    text = w.click_and_wait("run trial", f"auto, interval {interval:.0f} ms, SIGKILL after {crash}",
                            w.html_report, lambda t: f"after {crash} records" in t)
    assert re.search(r"commit mode\s+auto", text), text

    jlab.pick(c, "commit mode", "sync")
    # the kernel answers the pick: the interval slider is disabled outside auto mode
    jlab.slider(c, "auto_commit_interval_ms").locator(".noUi-target[disabled]").wait_for(timeout=30_000)
    crash2 = int(jlab.drag_slider(w.page, jlab.slider(c, "crash after records"), crash * 1.5))
    assert crash2 != crash
    jlab.pick(c, "how run 1 stops", "SIGTERM (graceful stop)")
    text = w.click_and_wait("run trial", f"sync, SIGTERM after {crash2}", w.html_report,
                            lambda t: "SIGTERM" in t)
    assert re.search(r"commit mode\s+sync", text), text
    stopped = re.search(r"SIGTERM after (\d+) records", text)  # graceful: it finishes its batch first
    assert stopped and int(stopped.group(1)) >= crash2, text


def drive_offset_store_lab(w: Widget) -> None:
    c = w.cell
    stores = jlab.dropdown_options(c, "offsets go to")
    assert len(stores) >= 2, stores
    jlab.pick(c, "offsets go to", stores[0])
    kill = int(jlab.drag_slider(w.page, jlab.slider(c, "SIGKILL after records"),
                                jlab.slider_value(jlab.slider(c, "SIGKILL after records")) * 0.5))
    text = w.click_and_wait("run trial", f"{stores[0]}, SIGKILL after {kill}", w.html_report,
                            lambda t: re.search(rf"killed after record\s+{kill}\b", t) is not None)
    assert "missing from the database" in text, text


def drive_rebalance_lab(w: Widget) -> None:
    c = w.cell
    jlab.pick(c, "then", "a member leaves (SIGTERM)")
    jlab.pick(c, "commit mode", "auto")
    jlab.pick(c, "assignor", "roundrobin")
    after = jlab.drag_slider(w.page, jlab.slider(c, "seconds later"), 1.0)
    text = w.click_and_wait("run group", f"auto, roundrobin, a member leaves after {after:.1f} s",
                            w.html_report, lambda t: "auto, roundrobin" in t)
    assert "never processed" in text, text


def drive_lag_lab(w: Widget) -> None:
    c = w.cell

    def status() -> str | None:
        loc = c.locator(".widget-hbox .widget-label").last
        return loc.inner_text() if loc.count() else None

    secs = jlab.drag_slider(w.page, jlab.slider(c, "producer runs (s)"), 1.5)
    rate = jlab.drag_slider(w.page, jlab.slider(c, "producer msg/s"), 60)
    text = w.click_and_wait("run", f"{rate:.0f} msg/s for {secs:.1f} s", status, lambda t: "peak lag" in t)
    assert re.search(r"\d+ of \d+ processed", text), text


def drive_failover_lab(w: Widget) -> None:
    c = w.cell
    jlab.pick(c, "commit mode", "sync")
    after = jlab.drag_slider(w.page, jlab.slider(c, "kill after (s)"), 1.0)
    # the kill, the failover (about broker.session.timeout.ms) and the reading back come first
    text = w.click_and_wait("kill the coordinator", f"sync, kill after {after:.1f} s", w.html_report,
                            lambda t: "SIGKILLed" in t, timeout_s=300)
    assert "kill_to_first_commit_s" in text and "lost" in text, text
    # then the node is restarted and catches up; the page stays open until it has
    deadline = time.perf_counter() + 300
    while "came back" not in (w.html_report() or ""):
        assert time.perf_counter() < deadline, f"failover_lab: no node came back: {w.html_report()!r}"
        time.sleep(0.5)


DRIVERS: dict[str, Callable[[Widget], None]] = {
    "replay_lab": drive_replay_lab,
    "offset_store_lab": drive_offset_store_lab,
    "rebalance_lab": drive_rebalance_lab,
    "lag_lab": drive_lag_lab,
    "failover_lab": drive_failover_lab,
}


def test_every_widget_factory_has_a_browser_driver():
    missing = [f for f in factories() if f not in DRIVERS]
    assert not missing, f"helpers/widgets.py has widgets with no browser test: {missing} (add a driver here)"
    unused = [f for f, names in uses().items() if not names]
    assert not unused, f"widgets no notebook creates: {unused}"


@pytest.mark.timeout(900)  # notebook 12's lab kills and restarts a cluster node
@pytest.mark.parametrize("factory,notebook", [(f, n) for f, names in uses().items() for n in names],
                         ids=lambda v: v if not v.endswith(".ipynb") else v[:2])
def test_widget_in_the_browser(factory, notebook, runs):
    if factory not in DRIVERS:
        pytest.fail(f"no browser driver for {factory}")
    try:
        run = runs.get(notebook)
        index = jlab.cell_index(run.page, f"{factory}(")
        assert index >= 0, f"{notebook}: no cell calls {factory}("
        cell = jlab.scroll_to_cell(run.page, index)
        cell.locator("button.jupyter-button").first.wait_for(state="visible", timeout=30_000)
        DRIVERS[factory](Widget(run.page, cell, factory, notebook))
    except BaseException:
        jlab.screenshot(runs.page, f"widget_{factory}_{notebook}")
        raise
    finally:  # the notebook's page stays open until its last widget was tested
        _LEFT[notebook] = _LEFT.get(notebook, sum(notebook in names for names in uses().values())) - 1
        if _LEFT[notebook] <= 0:
            runs.close(notebook)


_LEFT: dict[str, int] = {}
