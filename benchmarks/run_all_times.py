"""Run-All time of every notebook with its default parameters, as a learner's Run All (prints a table).

    .venv/bin/python benchmarks/run_all_times.py [--solve] [--out DIR] [NN ...]

Each notebook runs top to bottom with papermill, its own default parameters, in a fresh
kernel, against the course broker; ``--solve`` sets SOLVE_EXERCISES (every exercise checked
with its reference solution, as the tests do). Wall time per notebook and the total; a
failing notebook is reported and the others still run. Figures depend on the machine's
load: the load average is printed beside them. ``--out DIR`` keeps the executed copies there
(``make site`` reuses them from ``.course/executed`` while they are fresh).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import papermill as pm

import helpers as hp

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--solve", action="store_true", help="SOLVE_EXERCISES=True")
    p.add_argument("--out", type=Path, help="keep the executed notebooks in this folder")
    p.add_argument("only", nargs="*", help="notebook numbers, e.g. 01 06 (default: all)")
    args = p.parse_args()
    hp.ensure_broker()
    paths = [q for q in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
             if not args.only or q.name[:2] in args.only]
    rows, out = [], args.out or Path(tempfile.mkdtemp(prefix="run-all-"))
    out.mkdir(parents=True, exist_ok=True)
    for path in paths:
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(path), str(out / path.name), kernel_name="python3",
                                parameters={"SOLVE_EXERCISES": True} if args.solve else {},
                                cwd=str(path.parent), execution_timeout=600, progress_bar=False)
            status = "ok"
        except Exception as e:  # report it, go on with the next notebook
            status = f"FAILED: {type(e).__name__}: {str(e).splitlines()[0][:80]}"
        rows.append((path.name, time.perf_counter() - t0, load, status))
        print(f"{path.name:32s} {rows[-1][1]:6.1f} s  (load {load:.1f})  {status}", flush=True)
    total = sum(r[1] for r in rows)
    print(f"{'total':32s} {total:6.1f} s for {len(rows)} notebooks")
    return 0 if all(r[3] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
