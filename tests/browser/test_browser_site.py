"""The static edition (`make site`, tools/build_site.py) in Chromium: the index opens, a link
leads to a notebook's page, and a figure on it loads.

The site is built from the notebooks JupyterLab just ran and saved in this session (Run All,
default parameters, checked by test_run_all_in_the_browser), so no notebook runs twice; the
rest is the site builder's own code (nbconvert pages, index, links, navigation)."""
from __future__ import annotations

import sys

import jlab
import nbformat
import pytest


def _ran_clean(path) -> bool:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    return bool(code) and all(c.execution_count is not None for c in code) and not any(
        o.output_type == "error" for c in code for o in c.outputs)


def test_static_edition_index_link_and_figure(runs, monkeypatch):
    if str(jlab.ROOT) not in sys.path:
        monkeypatch.syspath_prepend(str(jlab.ROOT))  # tools/ is the repo's folder, not an installed package
    build_site = pytest.importorskip("tools.build_site", reason="no static edition (tools/build_site.py)")

    ran = [jlab.COPY / n for n in runs.done if _ran_clean(jlab.COPY / n)]
    if not ran:  # this test on its own: run the first notebook in the browser first
        runs.get(jlab.notebook_names()[0])
        ran = [p for p in [jlab.COPY / jlab.notebook_names()[0]] if _ran_clean(p)]
    assert ran, "no notebook ran cleanly in the browser: nothing to build the static edition from"
    # The copies JupyterLab saved are the executed notebooks: reuse them, run nothing again.
    monkeypatch.setattr(build_site, "is_fresh", lambda executed, source, depends_on=(): executed in ran)
    out = jlab.WORK / "site"
    report = build_site.build_site(sorted(ran), out, jlab.COPY, log=lambda *a: None)
    assert not report.failed, [(p.notebook, p.error) for p in report.failed]

    page = runs.context.new_page()
    try:
        page.goto((out / "index.html").as_uri())
        target = sorted(ran)[0].stem + ".html"
        link = page.locator(f"a[href='{target}']").first
        link.wait_for(state="visible")
        link.click()
        page.wait_for_url(f"**/{target}")
        img = page.locator("img[src^='data:image/png']").first
        img.scroll_into_view_if_needed()
        img.wait_for(state="visible")
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=img.element_handle())
        assert img.bounding_box()["width"] > 50
    except Exception:
        jlab.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(jlab.SCREENSHOTS / "static_edition.png"), full_page=True)
        raise
    finally:
        page.close()
