"""Results a notebook records for its tests (used by every notebook).

``record("lag", 7)`` shows ``lag = 7`` in the notebook and also attaches the value,
as JSON, to that output's metadata under ``course_record`` (metadata is never
rendered, so the learner sees one plain line); the papermill tests read those back
with :func:`read_records` and assert on them.
"""
from __future__ import annotations

import json
from typing import Any

__all__ = ["record", "read_records", "check_answer", "RECORD_KEY"]

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
            if rec is not None:
                found[rec["name"]] = rec["value"]
    return found


def check_answer(name: str, got: Any, expected: Any, hint: str = "") -> bool:
    """An exercise check the learner runs: prints a verdict, never raises (notebook 01)."""
    ok = _jsonable(got) == _jsonable(expected)
    if got is None:
        print(f"[{name}] not answered yet: fill in the cell above and run this one again.")
    elif ok:
        print(f"[{name}] correct.")
    else:
        print(f"[{name}] not yet: got {got!r}." + (f" Hint: {hint}" if hint else ""))
    record(f"exercise:{name}", ok, show=False)
    return ok
