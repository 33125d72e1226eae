"""Crash-lab workers forked from one warm process: the imports are paid once (notebook 02).

A new ``python -m helpers.crashlab.worker`` pays an interpreter start and the kafka-python
import on every run: about 0.3 CPU s, most of what a short run costs (``benchmarks/worker_start.py``
measures it against a fork). :func:`start` asks a *fork server* instead: one process,
``python -m helpers.crashlab.forkserver``, that imported everything a run needs and forks one
child per run. The child is a worker like any other (its own pid, its own ledger lines; a
SIGKILL kills only it); it imports the loop under test after the fork, so an edited
``my_loop.py`` is read fresh.

The server is a child of the process that uses it (a notebook's kernel, the tests), started on
first use with that process's worker environment (:func:`~helpers.crashlab.warm.worker_env`),
and started again when that environment changes. It reports each child's exit status on its
stdout, and exits when its parent closes its stdin (or dies), once its children have ended.
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import TextIO

__all__ = ["ForkedWorker", "ready", "start"]

_ROOT = Path(__file__).resolve().parent.parent.parent


class ForkedWorker:
    """One forked worker, used like a ``subprocess.Popen``: ``poll``, ``wait``, ``kill``, ``returncode``."""

    stdin = None

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._ended = threading.Event()

    def _end(self, returncode: int) -> None:
        self.returncode = returncode
        self._ended.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"forked worker {self.pid}", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _Server:
    """The client side: the server process, and a thread that reads what it reports."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server; what it says
        self.proc = subprocess.Popen([sys.executable, "-m", "helpers.crashlab.forkserver"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     cwd=_ROOT, env=env, text=True, bufsize=1)
        self.children: dict[int, ForkedWorker] = {}
        self.forks = 0  # pids reported so far; the newest child is ``newest``
        self.newest: ForkedWorker | None = None
        self.ready = threading.Condition()
        threading.Thread(target=self._read, name="crashlab-forkserver", daemon=True).start()

    def _read(self) -> None:
        """The server reports ``pid N`` right after each fork, and ``exit N CODE`` once it reaped it."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            kind, pid, *code = line.split()
            with self.ready:
                if kind == "pid":
                    child = ForkedWorker(int(pid))
                    self.children[child.pid] = child
                    self.forks, self.newest = self.forks + 1, child
                    self.ready.notify_all()
                elif kind == "exit" and int(pid) in self.children:
                    self.children.pop(int(pid))._end(int(code[0]))
        with self.ready:  # the server is gone: what it did not report ended unknown
            for child in self.children.values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
                child._end(-signal.SIGKILL)
            self.children.clear()
            self.ready.notify_all()

    def fork(self, config_path: Path, timeout: float = 30.0) -> ForkedWorker:
        assert self.proc.stdin is not None
        with self.ready:
            before = self.forks
            self.proc.stdin.write(f"{config_path}\n")
            self.proc.stdin.flush()
            if not self.ready.wait_for(lambda: self.forks > before or self.proc.poll() is not None,
                                       timeout):
                raise RuntimeError(f"the crash lab's fork server (pid {self.proc.pid}) did not fork within "
                                   f"{timeout:g} s")
            if self.forks == before or self.newest is None:
                self.stderr.seek(0)
                said = self.stderr.read().decode(errors="replace").strip().splitlines()[-15:]
                raise RuntimeError(f"the crash lab's fork server exited with code {self.proc.returncode}; "
                                   "it said:\n" + "\n".join(said))
            return self.newest

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        self.stderr.close()  # the server keeps its own copy of the file while it runs


_LOCK = threading.Lock()
_SERVER: list[_Server] = []


def _current(env: dict[str, str]) -> _Server:
    """The server for ``env``, started if need be (the caller holds ``_LOCK``)."""
    if _SERVER and (_SERVER[0].env != env or _SERVER[0].proc.poll() is not None):
        _SERVER.pop().close()  # its running children still report to it
    if not _SERVER:
        _SERVER.append(_Server(env))
    return _SERVER[0]


def ready() -> int:
    """Start the server now unless it runs (a replay lab does, before its first click); its pid."""
    from .warm import worker_env

    with _LOCK:
        return _current(worker_env()).proc.pid


def start(config_path: Path) -> ForkedWorker:
    """A worker forked for ``config_path`` (a run's config, naming its stdout and stderr files)."""
    from .warm import worker_env

    env = worker_env()
    with _LOCK:
        return _current(env).fork(config_path)


# ---- the server process ---------------------------------------------------------------------


def _child(config_path: str, out: TextIO) -> None:
    """In the forked child: the worker's run, then exit without returning to the server's loop."""
    code = 1
    try:
        out.close()  # the report pipe is the server's
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        cfg = json.loads(Path(config_path).read_text())
        for fd, name in ((1, "stdout"), (2, "stderr")):
            target = os.open(cfg[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        from .worker import main

        code = main([config_path])
        # what a normal interpreter exit does: wait for non-daemon threads, run exit handlers
        # (a producer's flush registers one)
        threading._shutdown()  # type: ignore[attr-defined]
        import atexit

        atexit._run_exitfuncs()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the child must never return into the server
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _serve() -> int:
    from .worker import _import_all

    _import_all()
    out = os.fdopen(os.dup(1), "w", buffering=1)  # reports; fd 1 itself becomes each child's stdout
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent's Ctrl-C is for the parent
    running: set[int] = set()
    pending, listening = b"", True
    while listening or running:
        if listening and select.select([0], [], [], 0.02)[0]:
            chunk = os.read(0, 65536)
            listening = bool(chunk)  # b"": the parent closed stdin, or died
            pending += chunk
        elif not listening:
            select.select([], [], [], 0.02)
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                pid = os.fork()
                if pid == 0:
                    _child(line.strip().decode(), out)
                running.add(pid)
                out.write(f"pid {pid}\n")
        while running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            running.discard(pid)
            out.write(f"exit {pid} {os.waitstatus_to_exitcode(status)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(_serve())
