"""Results a notebook records for its tests (used by every notebook).

Teaching cells stay free of this bookkeeping: a notebook ends with
:func:`show_claims` (a readable table of what it showed on the broker) and one
:func:`record_results` call that hands the measured values to the tests.

``record("lag", 7)`` shows ``lag = 7`` in the notebook and also attaches the value,
as JSON, to that output's metadata under ``course_record`` (metadata is never
rendered, so the learner sees one plain line); the papermill tests read those back
with :func:`read_records` and assert on them.
"""
from __future__ import annotations

import json
from typing import Any

__all__ = ["record", "record_results", "read_records", "show_claims", "RECORD_KEY"]

RECORD_KEY = "course_record"


def _jsonable(value: Any) -> Any:
    """Round-trip through JSON so tests see exactly what was recorded."""
    return json.loads(json.dumps(value, default=str))


def record(name: str, value: Any, *, show: bool = True) -> Any:
    """Record ``value`` under ``name`` for the tests, and show it; returns it (notebook 01)."""
    from IPython.display import display

    data = _jsonable(value)
    text = f"{name} = {json.dumps(data, ensure_ascii=False)}"
    display(
        {"text/plain": text if show else f"(recorded {name})"},
        raw=True,
        metadata={RECORD_KEY: {"name": name, "value": data}},
    )
    return value


def read_records(notebook: Any) -> dict[str, Any]:
    """Every ``record()``ed value in an executed notebook (a path or an nbformat node)."""
    if not hasattr(notebook, "cells"):
        import nbformat

        notebook = nbformat.read(str(notebook), as_version=4)
    found: dict[str, Any] = {}
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            rec = out.get("metadata", {}).get(RECORD_KEY)
            for one in rec if isinstance(rec, list) else [rec] if rec is not None else []:
                found[one["name"]] = one["value"]
    return found


def record_results(**values: Any) -> None:
    """Record several values for the tests at once, in one output line (notebook 01).

    The last cell of every notebook: ``hp.record_results(lag=lag, trial=trial_summary)``.
    """
    from IPython.display import display

    recs = [{"name": name, "value": _jsonable(value)} for name, value in values.items()]
    display({"text/plain": f"(recorded {len(recs)} results for the course's tests: "
                           f"{', '.join(values)})"}, raw=True, metadata={RECORD_KEY: recs})


def show_claims(claims: dict[str, Any]) -> dict[str, bool]:
    """Show "what this notebook showed" as a table, and record it as ``claims`` (notebook 01).

    ``claims`` maps a sentence to the value of the check that shows it on the broker;
    each row reads *shown* or *NOT shown*. Returns the claims as plain booleans.
    """
    import html

    from IPython.display import HTML, display

    verdicts = {str(k): bool(v) for k, v in claims.items()}
    rows = "".join(
        f"<tr><td style='text-align:left'>{html.escape(k)}</td>"
        f"<td style='text-align:left'>{'&#10004; shown' if ok else '&#10008; NOT shown'}</td></tr>"
        for k, ok in verdicts.items())
    display(HTML("<table><thead><tr><th style='text-align:left'>claim</th>"
                 f"<th style='text-align:left'>on the broker</th></tr></thead>{rows}</table>"))
    record("claims", verdicts, show=False)
    return verdicts
