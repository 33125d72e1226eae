"""Ruff (pinned in constraints.txt; config in pyproject.toml) finds nothing, notebooks included."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_reports_nothing_in_helpers_tests_benchmarks_tools_and_notebooks():
    cmd = [sys.executable, "-m", "ruff", "check", "helpers", "tests", "benchmarks", "tools", "notebooks"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, (
        f"`{' '.join(cmd[1:])}` exited {proc.returncode} (fix with `ruff check --fix`, then by hand):\n"
        + proc.stdout + proc.stderr
    )
