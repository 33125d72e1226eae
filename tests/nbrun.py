"""Run one course notebook with papermill, the way the tests and `make` do."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import papermill as pm

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def notebook_paths() -> list[Path]:
    """Every course notebook, in order (a new one is picked up with no test edits)."""
    return sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def declared_parameters(path: Path) -> dict[str, Any]:
    return dict(pm.inspect_notebook(str(path)))


def run_notebook(path: Path, out_dir: Path, parameters: dict[str, Any] | None = None,
                 cell_timeout: int = 300) -> nbformat.NotebookNode:
    """Execute ``path`` into ``out_dir``; unknown parameter names are rejected."""
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - set(declared_parameters(path)))
    if unknown:
        raise ValueError(
            f"{path.name} has no parameter(s) {unknown}; its parameters cell declares "
            f"{sorted(declared_parameters(path))}"
        )
    out = Path(out_dir) / path.name.replace(".ipynb", ".out.ipynb")
    return pm.execute_notebook(
        str(path), str(out), parameters=parameters, kernel_name="python3",
        cwd=str(path.parent), execution_timeout=cell_timeout, progress_bar=False,
        request_save_on_cell_execute=False,
    )
