"""JupyterLab on a copy of the course, and what a learner does in it, driven with Playwright.

The server runs the course environment's own ``jupyter lab`` (token-less, loopback, a free
port) on a COPY of ``notebooks/`` under ``.course/browser/``: saving there never touches the
repo's stripped notebooks. The kernels import ``helpers`` from this clone (editable install),
so ``hp.ensure_broker()`` finds this clone's broker, whatever folder the notebooks run in.

The browser is the system's Chromium (``COURSE_CHROMIUM``, default Debian's
``/usr/bin/chromium``; ``make browser-setup`` installs it), never a downloaded one.
JupyterLab 4 renders only the cells in view, so results are read from the notebook model
(``window.jupyterapp``, exposed for the tests) or from the saved file, never from the page alone.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbrun import NOTEBOOKS, notebook_paths

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".course" / "browser"
COPY = WORK / "notebooks"
SCREENSHOTS = WORK / "screenshots"
TIMES = WORK / "times.json"
CHROMIUM = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")
#: What works as root on a closed network: no sandbox (root), no GPU, no QUIC, nothing phoning home.
#: What the session measured (conftest prints it at the end and writes it to TIMES).
MEASURED: dict[str, Any] = {"run_all_s": {}, "open_s": {}, "widgets": {}}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def notebook_names() -> list[str]:
    """Every course notebook (a new one is picked up with no test edits): tests/nbrun.py's list."""
    return [p.name for p in notebook_paths()]


def copy_course() -> Path:
    """A fresh copy of notebooks/ (no learner files, no checkpoints) under .course/browser/."""
    if COPY.exists():
        shutil.rmtree(COPY)
    shutil.copytree(NOTEBOOKS, COPY, ignore=shutil.ignore_patterns(
        ".ipynb_checkpoints", "my_*.py", "*.out.ipynb", "__pycache__"))
    return COPY


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LabServer:
    url: str
    root: Path
    proc: subprocess.Popen
    log: Path

    def api(self, path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Shut down every kernel the server runs (one notebook's kernel at a time stays alive)."""
        for k in self.api("/api/kernels"):
            self.api(f"/api/kernels/{k['id']}", method="DELETE")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # jupyter server shuts its kernels down on SIGTERM
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_lab(root: Path, timeout: float = 90.0, state: Path | None = None) -> LabServer:
    """The course environment's JupyterLab on ``root``: token-less, 127.0.0.1, a free port;
    its settings, workspaces and log in ``state`` (fresh; default .course/browser/lab-state)."""
    port = _free_port()
    jupyter = Path(sys.executable).parent / "jupyter"
    state = state or WORK / "lab-state"
    if state.exists():
        shutil.rmtree(state)
    (state / "settings").mkdir(parents=True)
    (state / "workspaces").mkdir(parents=True)
    cmd = [str(jupyter), "lab", "--no-browser", f"--ServerApp.root_dir={root}",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           "--IdentityProvider.token=", "--ServerApp.password=",
           "--ServerApp.disable_check_xsrf=True",  # loopback test server: the REST calls below
           "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: the model, for reading results
           f"--LabApp.user_settings_dir={state / 'settings'}",  # no one's personal settings
           f"--LabApp.workspaces_dir={state / 'workspaces'}",  # no restored layout
           "--LabApp.news_url=None",  # announcements off, as `make lab` has them (page_config)
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = state / "jupyter.log"
    env = dict(os.environ, JUPYTER_PATH=str(Path(sys.prefix) / "share" / "jupyter"))
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)
    server = LabServer(f"http://127.0.0.1:{port}", root, proc, log)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}; see {log}:\n"
                               + log.read_text()[-2000:])
        try:
            server.api("/api/status")
            return server
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"jupyter lab did not answer within {timeout:.0f} s; see {log}") from None
            time.sleep(0.3)


# ------------------------------------------------------------------ the page: what a learner does

#: The open notebook panel, its kernel and its cells, from JupyterLab's own model.
_STATE_JS = """() => {
  const app = window.jupyterapp;
  const w = app && app.shell.currentWidget;
  if (!w || !w.content || !w.content.model || !w.sessionContext) return null;
  const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
  const cells = Array.from(w.content.model.cells);
  const code = cells.filter(c => c.type === 'code');
  let errors = 0;
  for (const c of code)
    for (let i = 0; i < c.outputs.length; i++) if (c.outputs.get(i).type === 'error') errors++;
  return {path: w.context.path, kernel: kernel ? kernel.status : null, cells: cells.length,
          code: code.length, executed: code.filter(c => c.executionCount !== null).length,
          errors, dirty: w.context.model.dirty};
}"""


def state(page: Any) -> dict | None:
    """The current notebook's kernel status and cell counts, read from the model."""
    return page.evaluate(_STATE_JS)


def open_lab(page: Any, server: LabServer, timeout_s: float = 120.0) -> None:
    """Load JupyterLab once (the page is reused for every notebook: a reload costs seconds)."""
    page.goto(f"{server.url}/lab")
    page.wait_for_function("() => !!(window.jupyterapp && window.jupyterapp.shell)",
                           timeout=timeout_s * 1000, polling=200)
    page.locator(".jp-DirListing-itemText").first.wait_for(state="visible", timeout=timeout_s * 1000)


def _current_is(page: Any, name: str, timeout_s: float) -> None:
    page.wait_for_function(
        "(name) => { const app = window.jupyterapp; const w = app && app.shell.currentWidget;"
        " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
        " return !!k && w.context.path === name && k.status === 'idle'; }",
        arg=name, timeout=timeout_s * 1000, polling=200)


def open_notebook(page: Any, name: str, timeout_s: float = 120.0) -> None:
    """Double-click ``name`` in the file browser, as a learner does; wait until its kernel is idle."""
    item = page.locator(".jp-DirListing-itemText").get_by_text(name, exact=True)
    item.scroll_into_view_if_needed()
    item.dblclick()
    _current_is(page, name, timeout_s)


def activate(page: Any, name: str, timeout_s: float = 30.0) -> None:
    """Bring the open notebook ``name`` to the front by clicking its tab."""
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab").filter(has_text=name).first.click()
    _current_is(page, name, timeout_s)


def close_notebook(page: Any, name: str) -> None:
    """Shut the notebook's kernel down and close its tab (saved already: no dialog)."""
    page.evaluate("""async (name) => {
        const app = window.jupyterapp;
        for (const w of Array.from(app.shell.widgets('main'))) {
          if (!w.context || w.context.path !== name) continue;
          if (w.sessionContext) await w.sessionContext.shutdown();
          w.context.model.dirty = false;
          w.close();
        }
      }""", name)


def run_all(page: Any, timeout_s: float) -> dict:
    """Run > Run All Cells, as a learner does; wait until the kernel is idle and every code cell
    has an execution count (or a cell failed: JupyterLab then stops the run). Returns the state."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.wait_for_function(
        f"() => {{ const s = ({_STATE_JS})(); return !!s && s.kernel === 'idle' &&"
        " (s.executed === s.code || s.errors > 0); }", timeout=timeout_s * 1000, polling=250)
    # a failed cell ends the run: give the kernel a moment to settle what it aborted
    return state(page) or {}


def save(page: Any, timeout_s: float = 60.0) -> None:
    """Save the notebook with Ctrl+S, as a learner does; wait until the file is written."""
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").first.click(
        position={"x": 5, "y": 5})  # focus the notebook, not an editor or a widget
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    page.wait_for_function(f"() => {{ const s = ({_STATE_JS})(); return !!s && !s.dirty; }}",
                           timeout=timeout_s * 1000, polling=200)


def scroll_to_cell(page: Any, index: int) -> Any:
    """Scroll cell ``index`` into view (JupyterLab renders the cells in view); its Locator."""
    page.evaluate("async (i) => { const nb = window.jupyterapp.shell.currentWidget.content;"
                  " nb.activeCellIndex = i; await nb.scrollToItem(i, 'start');"
                  " nb.widgets[i].node.setAttribute('data-browser-test-cell', String(i)); }", index)
    cell = page.locator(f".jp-NotebookPanel:not(.lm-mod-hidden) [data-browser-test-cell='{index}']")
    cell.scroll_into_view_if_needed()
    return cell


def cell_index(page: Any, needle: str) -> int:
    """Index of the first code cell whose source contains ``needle`` (-1 if none)."""
    return int(page.evaluate(
        "(needle) => Array.from(window.jupyterapp.shell.currentWidget.content.model.cells)"
        ".findIndex(c => c.type === 'code' && c.sharedModel.getSource().includes(needle))", needle))


# ------------------------------------------------------------------ ipywidgets, as a person uses them

def _described(cell: Any, kind: str, description: str) -> Any:
    """The ipywidgets control of class ``widget-<kind>`` whose description is ``description``."""
    # a `has=` locator is matched inside each candidate: build it from the page, not from the cell
    label = cell.page.locator("label.widget-label").filter(has_text=re.compile(f"^{re.escape(description)}$"))
    return cell.locator(f".widget-{kind}").filter(has=label).first


def slider(cell: Any, description: str) -> Any:
    return _described(cell, "slider", description)


def slider_value(control: Any) -> float:
    return float(control.locator(".noUi-handle").first.get_attribute("aria-valuenow"))


def drag_slider(page: Any, control: Any, value: float) -> float:
    """Drag the slider's handle with the mouse to about ``value``; returns the value it settled on."""
    handle = control.locator(".noUi-handle").first
    control.scroll_into_view_if_needed()
    lo, hi = float(handle.get_attribute("aria-valuemin")), float(handle.get_attribute("aria-valuemax"))
    track = control.locator(".noUi-target").first.bounding_box()
    box = handle.bounding_box()
    x = track["x"] + (min(max(value, lo), hi) - lo) / (hi - lo) * track["width"]
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(x, box["y"] + box["height"] / 2, steps=12)
    page.mouse.up()
    return slider_value(control)


def pick(cell: Any, description: str, option: str) -> None:
    """Pick ``option`` in the dropdown described ``description``."""
    _described(cell, "dropdown", description).locator("select").select_option(label=option)


def dropdown_options(cell: Any, description: str) -> list[str]:
    options = _described(cell, "dropdown", description).locator("option").all()
    return [o.get_attribute("value") or "" for o in options]


def button(cell: Any, name: str) -> Any:
    text = re.compile(f"^\\s*{re.escape(name)}\\s*$")
    return cell.locator("button.jupyter-button").filter(has_text=text).first


def screenshot(page: Any, label: str) -> Path | None:
    """A full-page screenshot under .course/browser/screenshots/ (for a failing test)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (re.sub(r"[^\w.-]+", "_", label) + ".png")
    try:
        page.screenshot(path=str(path), full_page=True)
        return path
    except Exception:  # a screenshot must never hide the failure itself
        return None
