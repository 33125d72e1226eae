"""Every notebook, as a learner runs it: opened in JupyterLab in Chromium, Run All with its
default parameters (SOLVE_EXERCISES stays False), saved; the SAVED file is then checked."""
from __future__ import annotations

import jlab
import pytest
from test_browser_widgets import notebooks_with_widgets


def _text(out) -> str:
    text = out.get("text", "")
    return "".join(text) if isinstance(text, list) else text


@pytest.mark.parametrize("name", jlab.notebook_names())
def test_run_all_in_the_browser(name, runs):
    try:
        _check_saved_run(name, runs.get(name))
    except BaseException:
        jlab.screenshot(runs.page, f"run_all_{name}")
        raise
    finally:
        if name not in notebooks_with_widgets():
            runs.close(name)  # the widget tests keep their notebook (and its kernel) open


def _check_saved_run(name, run):
    cells = run.saved.cells
    errors = [(i, out.get("ename"), str(out.get("evalue"))[:300]) for i, c in enumerate(cells)
              if c.cell_type == "code" for out in c.outputs if out.output_type == "error"]
    assert not errors, f"{name}: cells failed in the browser (index, error, message): {errors}"
    not_run = [i for i, c in enumerate(cells) if c.cell_type == "code" and c.execution_count is None]
    assert not not_run, f"{name}: code cells without an execution count after Run All: {not_run}"
    stderr = [(i, _text(out)[:300]) for i, c in enumerate(cells) if c.cell_type == "code"
              for out in c.outputs if out.output_type == "stream" and out.get("name") == "stderr"]
    assert not stderr, f"{name}: learners would see red stderr blocks (cell index, text): {stderr}"
    figures = [i for i, c in enumerate(cells) if c.cell_type == "code"
               and any("image/png" in out.get("data", {}) for out in c.outputs)]
    assert figures, f"{name}: no figure (image/png output) in the saved notebook"

    # the page really shows a figure: scroll to the first one, its <img> is visible and decoded
    cell = jlab.scroll_to_cell(run.page, figures[0])
    img = cell.locator(".jp-OutputArea-output img").first
    img.wait_for(state="visible", timeout=30_000)
    img.scroll_into_view_if_needed()
    run.page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=img.element_handle(),
                               timeout=30_000)
    assert img.bounding_box()["width"] > 50
