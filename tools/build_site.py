"""Build the static HTML edition of the executed course (``make site``).

    .venv/bin/python -m tools.build_site [--out .course/site] [--executed .course/executed] [NN ...]

Every notebook in ``notebooks/`` is executed as a learner's Run All would run it (its default
parameters, so ``SOLVE_EXERCISES=False``; kernel ``python3``; cwd ``notebooks/``; a per-cell
timeout), then converted to HTML with nbconvert, with an index page (each notebook's title and
its "What you will see" opening), links between pages (``.ipynb`` links point at the ``.html``
pages; every page has index / previous / next), figures embedded in the pages, and each widget
drawn from its saved state with a note to run it in JupyterLab.

An executed copy in ``--executed`` is reused instead of running the notebook again when it is
fresh: the same cells as the notebook today, run with default parameters, without an error, and
newer than the notebook and every file under ``helpers/`` and ``broker/``.
``benchmarks/run_all_times.py --out .course/executed`` leaves such copies behind.
"""
from __future__ import annotations

import argparse
import html
import json
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat

ROOT = Path(__file__).resolve().parent.parent
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# A relative link to a notebook (not http:, not mailto:, not an anchor alone): rewritten to its page.
_NB_HREF = re.compile(r'href="(?![a-z][a-z0-9+.-]*:|#|/)([^"#?]*?)\.ipynb((?:#[^"]*)?)"', re.I)


@dataclass
class Page:
    """One notebook of the site: where it came from and how it was executed."""

    notebook: str
    html: str
    title: str
    executed: str  # "ran" or "reused"
    seconds: float | None  # papermill's duration of the run that produced the outputs
    error: str | None = None
    images: int = 0
    widgets: int = 0


@dataclass
class SiteReport:
    """What :func:`build_site` wrote."""

    out: Path
    pages: list[Page] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[Page]:
        return [p for p in self.pages if p.error]

    def summary(self) -> str:
        files = [f for f in self.out.rglob("*") if f.is_file()]
        mb = sum(f.stat().st_size for f in files) / 1e6
        ran = sum(p.executed == "ran" for p in self.pages)
        return (f"{len(self.pages)} notebooks ({ran} executed, {len(self.pages) - ran} reused), "
                f"{len(files)} files, {mb:.1f} MB, {self.seconds:.0f} s: {self.out / 'index.html'}")


# ---------------------------------------------------------------- execution


def _sources(nb: Any) -> list[tuple[str, str]]:
    """(cell type, source) of every cell but papermill's injected parameters."""
    return [(c.cell_type, c.source) for c in nb.cells
            if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]


def is_fresh(executed: Path, source: Path, depends_on: Iterable[Path] = ()) -> bool:
    """True if ``executed`` is a clean default-parameters run of ``source`` as it is now."""
    if not executed.exists():
        return False
    mtime = executed.stat().st_mtime
    if any(p.stat().st_mtime > mtime for p in [source, *depends_on] if p.exists()):
        return False
    ran = nbformat.read(executed, as_version=4)
    meta = ran.metadata.get("papermill", {})
    if meta.get("exception") or "end_time" not in meta or meta.get("end_time") is None:
        return False
    if meta.get("parameters") not in ({}, {"SOLVE_EXERCISES": False}):
        return False
    return _sources(ran) == _sources(nbformat.read(source, as_version=4))


def execute(source: Path, executed: Path, timeout: int) -> str | None:
    """Run ``source`` as a learner's Run All into ``executed``; the error as text, or None."""
    import papermill as pm

    executed.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(str(source), str(executed), parameters={}, kernel_name="python3",
                            cwd=str(source.parent), execution_timeout=timeout, progress_bar=False,
                            request_save_on_cell_execute=False)
    except Exception as e:  # the page shows the failing cell; the index and the exit code say so
        return f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:200] if str(e).strip() else ''}"
    return None


# ---------------------------------------------------------------- widgets, drawn from their saved state


def _model(ref: Any) -> str | None:
    return ref[len("IPY_MODEL_"):] if isinstance(ref, str) and ref.startswith("IPY_MODEL_") else None


def _output_html(output: Any) -> str:
    """One saved output as HTML (what a widget's Output area held)."""
    data = output.get("data", {})
    if output.get("output_type") == "stream":
        return f"<pre>{html.escape(output.get('text', ''))}</pre>"
    if output.get("output_type") == "error":
        return f"<pre>{html.escape(output.get('ename', ''))}: {html.escape(output.get('evalue', ''))}</pre>"
    if "image/png" in data:
        png = data["image/png"]
        png = "".join(png) if isinstance(png, list) else png
        return f'<img src="data:image/png;base64,{png.strip()}" alt="figure">'
    if "text/html" in data:
        value = data["text/html"]
        return "".join(value) if isinstance(value, list) else value
    if "text/plain" in data:
        value = data["text/plain"]
        return f"<pre>{html.escape(''.join(value) if isinstance(value, list) else value)}</pre>"
    return ""


def widget_html(model_id: str, state: dict[str, Any], depth: int = 0) -> str:
    """A static drawing of a widget and its children from the notebook's saved widget state."""
    model = state.get(model_id)
    if model is None or depth > 30:
        return ""
    name, s = model.get("model_name", ""), model.get("state", {})
    desc = html.escape(str(s.get("description", "") or ""))
    if name == "OutputModel":
        return "".join(_output_html(o) for o in s.get("outputs", []))
    if name in ("HTMLModel", "HTMLMathModel"):
        return str(s.get("value", ""))
    if name == "LabelModel":
        return f"<span>{html.escape(str(s.get('value', '')))}</span>"
    children = [c for c in (_model(r) for r in s.get("children", [])) if c]
    if children:
        inner = "".join(f"<div>{widget_html(c, state, depth + 1)}</div>" for c in children)
        flex = "row" if name == "HBoxModel" else "column"
        style = f"display:flex;flex-direction:{flex};gap:.5em"
        return f'<div class="site-widget-box" style="{style}">{inner}</div>'
    if name in ("IntProgressModel", "FloatProgressModel"):
        return f'<progress value="{s.get("value", 0)}" max="{s.get("max", 100)}"></progress>'
    if name == "ButtonModel":
        return f'<button disabled>{desc or html.escape(str(s.get("tooltip", "")))}</button>'
    if "value" in s or "index" in s:  # a control: its label and the value it had
        value = s.get("value")
        labels = s.get("_options_labels")
        if value is None and labels and isinstance(s.get("index"), int):
            value = labels[s["index"]]
        return (f'<span class="site-widget-control">{desc + " " if desc else ""}'
                f"<b>{html.escape(str(value))}</b></span>")
    return ""


_PASSIVE = {"OutputModel", "HTMLModel", "HTMLMathModel", "LabelModel", "IntProgressModel",
            "FloatProgressModel", "BoxModel", "HBoxModel", "VBoxModel", "GridBoxModel", "ImageModel"}


def is_interactive(model_id: str, state: dict[str, Any], depth: int = 0) -> bool:
    """True if the widget or a child is a control a person would use (not just a progress bar)."""
    model = state.get(model_id)
    if model is None or depth > 30:
        return False
    if model.get("model_name") not in _PASSIVE:
        return True
    children = (_model(r) for r in model.get("state", {}).get("children", []))
    return any(is_interactive(c, state, depth + 1) for c in children if c)


def _render_widgets(nb: Any, notebook_name: str) -> int:
    """Replace each widget output by its static drawing (a note on controls); returns how many controls."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    count = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if not view:
                continue
            model_id = view.get("model_id", "")
            drawn = widget_html(model_id, state)
            if not is_interactive(model_id, state):  # a progress bar: just as it ended
                output["data"] = {"text/html": drawn or "<p>(no saved state)</p>"}
                continue
            count += 1
            note = ('<p class="site-widget-note"><b>Interactive widget:</b> a picture of it as the notebook '
                    f"left it. To use its controls, open <code>{html.escape(notebook_name)}</code> in "
                    "JupyterLab (<code>make lab</code>) and run this cell.</p>")
            output["data"] = {"text/html": note + (drawn or "<p>(no saved state)</p>")}
    nb.metadata.pop("widgets", None)  # no widget manager from a CDN: the page is self-contained
    return count


# ---------------------------------------------------------------- pages


def notebook_title(nb: Any, fallback: str) -> str:
    """The first level-1 heading of the notebook, without markdown marks."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, flags=re.M)
            if m:
                return re.sub(r"[`*_]", "", m.group(1)).strip()
    return fallback


def opening_markdown(nb: Any) -> str:
    """The notebook's opening (its first markdown cell, without the title line)."""
    first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    return re.sub(r"^#\s+.+\n?", "", first, count=1, flags=re.M).strip()


def rewrite_links(page: str) -> str:
    """Relative ``x.ipynb`` links point at ``x.html`` (anchors kept)."""
    return _NB_HREF.sub(lambda m: f'href="{m.group(1)}.html{m.group(2)}"', page)


def _nav(prev: Page | None, nxt: Page | None) -> str:
    parts = ['<a href="index.html">contents</a>']
    if prev:
        parts.append(f'<a href="{prev.html}">&larr; {html.escape(prev.title)}</a>')
    if nxt:
        parts.append(f'<a href="{nxt.html}">{html.escape(nxt.title)} &rarr;</a>')
    return ('<nav class="site-nav" style="font:14px sans-serif;padding:.6em 1em;background:#f3f3f3;'
            'display:flex;gap:2em">' + "".join(parts) + "</nav>")


def _to_html(nb: Any, title: str) -> str:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return body


def _markdown(text: str) -> str:
    import mistune

    return str(mistune.html(text))


def _index(pages: list[Page], openings: dict[str, str], course_title: str) -> str:
    rows = []
    for p in pages:
        status = (f'<p style="color:#b00"><b>This notebook failed to run:</b> {html.escape(p.error)}</p>'
                  if p.error else "")
        took = f"Run All took {p.seconds:.0f} s when this edition was built" if p.seconds is not None else ""
        rows.append(f'<section class="site-entry"><h2><a href="{p.html}">{html.escape(p.title)}</a></h2>'
                    f'<p class="site-meta" style="color:#666">{p.notebook} &middot; {took}</p>{status}'
                    f"{rewrite_links(_markdown(openings[p.notebook]))}</section>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(course_title)}</title>"
            "<style>body{font:16px/1.5 sans-serif;max-width:52em;margin:2em auto;padding:0 1em}"
            "code{background:#f3f3f3;padding:0 .2em}section{border-top:1px solid #ddd;margin-top:1.5em}"
            "</style></head><body>"
            f"<h1>{html.escape(course_title)}</h1>"
            "<p>The course as a learner's Run All left it: every notebook executed on a real Kafka broker "
            "with its default parameters, outputs and figures included. To run the cells yourself, "
            "<code>make lab</code>.</p>" + "".join(rows) + "</body></html>\n")


def build_site(notebooks: Iterable[Path], out: Path, executed_dir: Path, *, timeout: int = 600,
               depends_on: Iterable[Path] = (), course_title: str = "Kafka consumer offsets, hands-on",
               log: Any = print) -> SiteReport:
    """Execute (or reuse) each notebook, convert it to HTML under ``out``, write the index."""
    t0 = time.perf_counter()
    depends = list(depends_on)
    report = SiteReport(out=out)
    out.mkdir(parents=True, exist_ok=True)
    nbs, openings = [], {}
    for source in notebooks:
        executed = executed_dir / source.name
        if is_fresh(executed, source, depends):
            how, error = "reused", None
        else:
            log(f"running {source.name} ...")
            how, error = "ran", execute(source, executed, timeout)
        nb = nbformat.read(executed if executed.exists() else source, as_version=4)
        nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
        seconds = nb.metadata.get("papermill", {}).get("duration")
        page = Page(notebook=source.name, html=source.stem + ".html", title=notebook_title(nb, source.stem),
                    executed=how, seconds=float(seconds) if seconds is not None else None, error=error)
        page.widgets = _render_widgets(nb, source.name)
        openings[source.name] = opening_markdown(nb)
        report.pages.append(page)
        nbs.append(nb)
        log(f"{source.name}: {how}" + (f", {page.seconds:.0f} s" if page.seconds else "")
            + (f", FAILED: {error}" if error else ""))
    for i, (page, nb) in enumerate(zip(report.pages, nbs, strict=True)):
        nav = _nav(report.pages[i - 1] if i else None, report.pages[i + 1] if i + 1 < len(nbs) else None)
        body = rewrite_links(_to_html(nb, page.title))
        opened = re.search(r"<body[^>]*>", body)
        at = opened.end() if opened else 0
        body = body[:at] + nav + body[at:]
        body = body.replace("</body>", nav + "</body>", 1)
        page.images = body.count('src="data:image/png;base64,')
        (out / page.html).write_text(body, encoding="utf-8")
    (out / "index.html").write_text(_index(report.pages, openings, course_title), encoding="utf-8")
    report.seconds = time.perf_counter() - t0
    manifest = {"seconds": report.seconds, "pages": [asdict(p) for p in report.pages]}
    (out / "site.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / ".course" / "site")
    p.add_argument("--executed", type=Path, default=ROOT / ".course" / "executed",
                   help="executed copies: reused when fresh, written otherwise")
    p.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    p.add_argument("only", nargs="*", help="notebook numbers, e.g. 01 02 (default: all)")
    args = p.parse_args(argv)
    notebooks = [q for q in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
                 if not args.only or q.name[:2] in args.only]
    depends = [f for d in ("helpers", "broker") for f in (ROOT / d).rglob("*") if f.is_file()
               and "__pycache__" not in f.parts]
    if any(not is_fresh(args.executed / q.name, q, depends) for q in notebooks):
        import helpers as hp

        try:
            hp.ensure_broker()  # start it once, before the first notebook needs it
        except hp.BrokerError as e:
            print(f"error: notebooks must run again, and the broker is not available:\n{e}", file=sys.stderr)
            return 1
    report = build_site(notebooks, args.out, args.executed, timeout=args.timeout, depends_on=depends)
    print(report.summary())
    for page in report.failed:
        print(f"FAILED {page.notebook}: {page.error}", file=sys.stderr)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
