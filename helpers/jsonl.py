"""JSON-lines files that survive SIGKILL: the crash lab's and the rebalance lab's ledgers (notebook 02).

Each row is one ``os.write`` to a file opened with ``O_APPEND``, so a process killed at any
moment leaves whole lines behind; the reader skips a line that is not JSON anyway.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["append_row", "read_rows"]


def append_row(fd: int, row: dict[str, Any]) -> None:
    """Append ``row`` as one JSON line with a single ``write()`` (notebook 02)."""
    os.write(fd, (json.dumps(row, separators=(",", ":"), default=str) + "\n").encode())


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every JSON line of ``path`` (none if it does not exist) (notebook 02)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            with contextlib.suppress(ValueError):  # a line cut by the kill (one write each, but)
                rows.append(json.loads(line))
    return rows
