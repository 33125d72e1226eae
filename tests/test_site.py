"""`make site` (tools/build_site.py): two small fixture notebooks, executed for real, no broker."""
from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tools.build_site import build_site, is_fresh, rewrite_links

FIRST = [
    new_markdown_cell("# 01 · First steps\n\n**What you will see**: a figure, and a widget.\n\n"
                      "Then read [the second notebook](02_second.ipynb#part-2)."),
    new_code_cell("SOLVE_EXERCISES = False", metadata={"tags": ["parameters"]}),
    new_code_cell("import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()"),
    new_code_cell("import ipywidgets as w\nout = w.Output()\nwith out:\n    print('written inside the lab')\n"
                  "w.VBox([w.IntSlider(value=7, description='interval'), w.HTML('<b>the report</b>'), out])"),
    new_code_cell("from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc='trials'):\n    pass"),
]
SECOND = [
    new_markdown_cell("# 02 · Second\n\nIt opens with this sentence.\n\n## part 2\n\n"
                      "Back to [one](01_first.ipynb)."),
    new_code_cell("SOLVE_EXERCISES = False", metadata={"tags": ["parameters"]}),
    new_code_cell("print(6 * 7)"),
]


def _write(folder: Path, name: str, cells: list) -> Path:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / name
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    (root / "notebooks").mkdir()
    sources = [_write(root / "notebooks", "01_first.ipynb", FIRST),
               _write(root / "notebooks", "02_second.ipynb", SECOND)]
    report = build_site(sources, root / "site", root / "executed", timeout=120, log=lambda *_: None)
    return root, sources, report


def _relative_links(page: str) -> list[str]:
    return [h for h in re.findall(r'(?:href|src)="([^"]+)"', page)
            if not re.match(r"[a-z][a-z0-9+.-]*:|#|/", h, flags=re.I)]


def test_every_notebook_ran_and_became_a_page(site):
    root, sources, report = site
    assert [p.executed for p in report.pages] == ["ran", "ran"]
    assert not report.failed, report.failed
    assert "42" in (root / "site" / "02_second.html").read_text()
    manifest = json.loads((root / "site" / "site.json").read_text())
    assert [p["html"] for p in manifest["pages"]] == ["01_first.html", "02_second.html"]


def test_index_lists_each_title_and_opening_with_a_link(site):
    root, _, _ = site
    index = (root / "site" / "index.html").read_text()
    assert '<a href="01_first.html">01 · First steps</a>' in index
    assert '<a href="02_second.html">02 · Second</a>' in index
    assert "What you will see" in index and "It opens with this sentence." in index
    assert "02_second.html#part-2" in index  # the opening's own link, rewritten too


def test_links_between_pages_resolve_and_none_points_at_a_notebook(site):
    root, _, _ = site
    for name in ("index.html", "01_first.html", "02_second.html"):
        page = (root / "site" / name).read_text()
        links = _relative_links(page)
        assert links, name
        assert not [h for h in links if ".ipynb" in h], name
        missing = [h for h in links if not (root / "site" / h.split("#")[0]).is_file()]
        assert not missing, f"{name}: {missing}"
    first = (root / "site" / "01_first.html").read_text()
    assert 'href="02_second.html#part-2"' in first
    assert 'id="part-2"' in (root / "site" / "02_second.html").read_text()


def test_figures_are_embedded_pngs(site):
    root, _, report = site
    page = (root / "site" / "01_first.html").read_text()
    pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert pngs and report.pages[0].images == len(pngs)
    assert base64.b64decode(pngs[0])[:8] == b"\x89PNG\r\n\x1a\n"


def test_widgets_are_drawn_from_their_state_with_a_note(site):
    root, _, report = site
    page = (root / "site" / "01_first.html").read_text()
    assert report.pages[0].widgets == 1  # the lab; the progress bar is drawn, with no note
    assert page.count("Interactive widget") == 1 and "01_first.ipynb" in page
    assert re.search(r'<progress max="3(\.0)?" value="3(\.0)?">', page) and "trials" in page
    assert "written inside the lab" in page  # the Output widget's content
    assert "<b>the report</b>" in page and "interval" in page and "<b>7</b>" in page
    assert "widget-view+json" not in page and "unpkg.com" not in page


def test_a_fresh_executed_copy_is_reused_and_a_changed_notebook_is_not(site, tmp_path):
    root, sources, _ = site
    again = build_site(sources[1:], tmp_path / "site", root / "executed", log=lambda *_: None)
    assert [p.executed for p in again.pages] == ["reused"]
    changed = tmp_path / sources[1].name
    shutil.copy(sources[1], changed)
    nb = nbformat.read(changed, as_version=4)
    nb.cells[2].source = "print(6 * 9)"
    nbformat.write(nb, changed)
    assert is_fresh(root / "executed" / sources[1].name, sources[1])
    assert not is_fresh(root / "executed" / sources[1].name, changed)
    helper = tmp_path / "helper.py"
    helper.write_text("# newer than the executed copy\n")
    assert not is_fresh(root / "executed" / sources[1].name, sources[1], [helper])


def test_rewrite_links_leaves_absolute_and_anchor_links_alone():
    page = ('<a href="03_x.ipynb">a</a><a href="https://h/y.ipynb">b</a><a href="#z">c</a>'
            '<a href="sub/04_y.ipynb#s">d</a>')
    assert rewrite_links(page) == ('<a href="03_x.html">a</a><a href="https://h/y.ipynb">b</a>'
                                   '<a href="#z">c</a><a href="sub/04_y.html#s">d</a>')
