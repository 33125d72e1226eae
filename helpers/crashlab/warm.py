"""Warm crash-lab workers: child processes started before a trial needs them (notebook 02).

Starting a worker costs an interpreter start and the kafka-python import (about 0.3 to
0.8 s on a loaded 2-core machine), twice per trial. :class:`WarmWorkers` keeps a few
``python -m helpers.crashlab.worker --wait`` processes that have done both and wait on
stdin for their config; :func:`helpers.crashlab.run_trial` takes one per run when given
``workers=``, and forks one (:mod:`.forkserver`) or starts a cold one when none fits. Where
``os.fork`` is missing, the replay lab (notebook 02) keeps a pool, so a click does not pay for
process starts; elsewhere forked workers start almost as quickly, for a third of the CPU. A warm
worker imports the learner's loop module only after its go signal, so an edited ``my_loop.py``
is read fresh.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from typing import Any

__all__ = ["WarmWorkers", "start", "worker_command", "worker_env"]

_ROOT = Path(__file__).resolve().parent.parent.parent


def worker_env() -> dict[str, str]:
    """The worker's environment: ours, with the notebook's folder first on PYTHONPATH
    (the learner's loop module sits there)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (os.getcwd(), os.environ.get("PYTHONPATH", "")) if p)}


def worker_command(*args: str) -> list[str]:
    """``python -m helpers.crashlab.worker ARGS`` with this interpreter."""
    return [sys.executable, "-m", "helpers.crashlab.worker", *args]


def _stop_all(procs: list[Any]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()
    procs.clear()


class WarmWorkers:
    """Up to ``size`` warm workers (notebook 02); :meth:`take` one, :meth:`fill` to top up.

    A worker started under another environment (say the notebook changed folder) is not
    handed out: it is stopped and :meth:`take` returns ``None`` (the trial starts a cold
    one). :meth:`close` (also run when the pool is garbage-collected or Python exits)
    stops those still waiting; a waiting worker also exits when its parent dies
    (its stdin closes).
    """

    def __init__(self, size: int = 2) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a whole number >= 1, not {size!r}")
        self.size = size
        self._procs: list[Any] = []
        self._env: dict[str, str] = {}
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _stop_all, self._procs)

    def fill(self) -> int:
        """Start workers until ``size`` are waiting; returns how many were started."""
        env = worker_env()
        started = 0
        with self._lock:
            if not self._finalizer.alive:  # closed before: stop these at exit too
                self._finalizer = weakref.finalize(self, _stop_all, self._procs)
            if env != self._env:
                _stop_all(self._procs)
                self._env = env
            self._procs[:] = [p for p in self._procs if p.poll() is None]
            while len(self._procs) < self.size:
                self._procs.append(subprocess.Popen(
                    worker_command("--wait"), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, cwd=_ROOT, env=env))
                started += 1
        return started

    def take(self) -> Any | None:
        """A waiting worker (a ``Popen`` with ``stdin`` open), or ``None``."""
        env = worker_env()
        with self._lock:
            if env != self._env:
                _stop_all(self._procs)
                return None
            while self._procs:
                proc = self._procs.pop(0)
                if proc.poll() is None:
                    return proc
                proc.wait()
        return None

    def waiting(self) -> int:
        """How many workers wait now."""
        with self._lock:
            return sum(1 for p in self._procs if p.poll() is None)

    def close(self) -> None:
        """Stop every waiting worker."""
        with self._lock:
            self._finalizer()


def start(proc: Any, config_path: Path) -> bool:
    """Give a warm worker its config (its go signal); False if it died meanwhile."""
    try:
        proc.stdin.write(f"{config_path}\n".encode())
        proc.stdin.close()
        return True
    except (BrokenPipeError, OSError, ValueError):
        proc.kill()
        proc.wait()
        return False
