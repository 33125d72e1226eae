"""The crash lab's child process: one run of a trial, the loop under test inside (notebook 02).

``python -m helpers.crashlab.worker CONFIG.json`` builds the consumer from the claimed
mode's settings (:func:`helpers.consumers.make_consumer`), and runs the loop (a built-in
mode's, or yours, by ``"module:function"``) through :func:`helpers.runner.run_loop`.
What the loop calls ``process(record)`` does the simulated work and then appends one
line to the ledger (an ``O_APPEND`` write per record, so it survives SIGKILL); after the
planned record the worker SIGKILLs itself. SIGTERM (and SIGINT) make ``running()``
return ``False``: a graceful stop. Every commit attempt goes to a file too, through a
:class:`~helpers.tracing.CommitTracer` sink.

``python -m helpers.crashlab.worker --wait`` is a *warm* worker
(:mod:`helpers.crashlab.warm`): it imports kafka-python and the course's modules first,
then waits for one line on stdin, the path of its CONFIG.json, and runs it, its stdout
and stderr going to the files the config names. The interpreter's start and the imports
are then over before a trial needs the process.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..jsonl import append_row as _append

__all__ = ["main"]


def _killer(crash: dict[str, Any], n_messages: int, stop: Callable[[], None],
            state: dict[str, int]) -> Callable[[int], None]:
    """What happens after the n-th processed record of run 1: SIGKILL, SIGTERM-like stop, or nothing."""
    after = crash.get("after_records")
    mid_batch, graceful = bool(crash.get("mid_batch")), bool(crash.get("graceful"))
    if graceful and after is None and crash.get("after_ms") is None:
        after = max(1, n_messages // 2)

    def check(n: int) -> None:
        if graceful:
            if after is not None and n >= after:
                stop()
        elif mid_batch:
            if n >= (after or 1) and state["pos"] < state["batch"]:
                os.kill(os.getpid(), signal.SIGKILL)
        elif after is not None and n >= after:
            os.kill(os.getpid(), signal.SIGKILL)

    return check


def _log_committed_fetch(consumer: Any) -> dict[str, int | None]:
    """Note the committed offsets the consumer fetches when it is assigned its partitions.

    That first OffsetFetch is where the run really starts from (partition -> offset, or
    ``None``: no commit, so ``auto_offset_reset`` decides). kafka-python 3.0.12 fetches
    through ``ConsumerCoordinator.fetch_committed_offsets_async``; it leaves out partitions
    without a committed offset.
    """
    seen: dict[str, int | None] = {}
    coordinator = consumer._coordinator
    fetch = coordinator.fetch_committed_offsets_async

    async def logged(partitions: Any, timeout_ms: Any = None) -> Any:
        got = await fetch(partitions, timeout_ms=timeout_ms)
        for tp in partitions:
            if str(tp.partition) not in seen:
                om = got.get(tp)
                seen[str(tp.partition)] = None if om is None else int(om.offset)
        return got

    coordinator.fetch_committed_offsets_async = logged
    return seen


def _import_all() -> None:
    """What a run needs, imported ahead (a warm worker does this before its go signal)."""
    from .. import consumers, modes, runner, tracing  # noqa: F401


def _run(cfg: dict[str, Any]) -> int:
    from ..consumers import make_consumer
    from ..modes import get_mode
    from ..runner import Until, run_loop
    from ..tracing import CommitTracer

    run, spec = int(cfg["run"]), get_mode(cfg["mode"])
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    ledger_fd, polls_fd, commits_fd = (os.open(cfg[f], flags, 0o644)
                                       for f in ("ledger", "polls", "commits"))
    ends = {int(p): int(e) for p, e in cfg["end_offsets"].items()}
    tracer = CommitTracer(sink=lambda row: _append(commits_fd, {**row, "run": run,
                                                                "wall": time.time()}))
    settings = {**spec.settings, "auto_commit_interval_ms": cfg["auto_commit_interval_ms"],
                "max_poll_records": cfg["max_poll_records"],
                "client_id": f"crashlab-{cfg['group_id']}-run{run}"}
    if cfg.get("group_instance_id"):
        settings["group_instance_id"] = cfg["group_instance_id"]
    if cfg.get("session_timeout_ms"):
        settings["session_timeout_ms"] = cfg["session_timeout_ms"]
    consumer = make_consumer(cfg["topic"], group_id=cfg["group_id"], bootstrap=cfg["bootstrap"],
                             **settings)
    tracer.attach(consumer)

    state = {"handled": 0, "batch": 0, "pos": 0}
    orig_poll = consumer.poll

    def poll(*args: Any, **kwargs: Any) -> Any:  # the loop's polls, logged with their sizes
        batch = orig_poll(*args, **kwargs)
        size = sum(len(r) for r in batch.values())
        if size:
            state["batch"], state["pos"] = size, 0
            _append(polls_fd, {"run": run, "size": size, "start": state["handled"],
                               "t": time.time()})
        return batch

    consumer.poll = poll
    joined = _log_committed_fetch(consumer)

    work: queue.Queue[Any] = queue.Queue()  # handoff: unbounded, like an executor's work queue

    def drained() -> bool:
        assigned = consumer.assignment()
        return bool(assigned) and len(assigned) == len(ends) and work.unfinished_tasks == 0 \
            and all(consumer.position(tp) >= ends[tp.partition] for tp in assigned)

    until = Until(idle_s=cfg["idle_ms"] / 1000, max_seconds=float(cfg["max_seconds"]),
                  drained=drained)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: until.stop("stop signal"))
    kill_check = _killer(cfg.get("crash") or {}, int(cfg["n_messages"]), until.stop, state) \
        if run == 1 else (lambda n: None)
    process_s = float(cfg.get("process_ms") or 0) / 1000

    def finish(record: Any) -> None:
        """Process one record: simulated work, then the durable ledger line."""
        if process_s:
            time.sleep(process_s)
        _append(ledger_fd, {"run": run, "topic": record.topic, "partition": record.partition,
                            "offset": record.offset, "t": time.time()})
        until.done()
        kill_check(until.count)

    def process(record: Any) -> None:
        state["handled"] += 1
        state["pos"] += 1
        if cfg.get("handoff"):
            work.put(record)
        else:
            finish(record)

    if cfg.get("handoff"):
        def processor() -> None:
            while True:
                record = work.get()
                try:
                    if record is not None:
                        finish(record)
                finally:
                    work.task_done()

        threading.Thread(target=processor, name="crashlab-processor", daemon=True).start()

    outcome = run_loop(cfg.get("loop") or spec.loop, consumer, process, until.running,
                       reraise=False, close_forgotten=False)
    work.join()  # handoff: what was queued is processed before the process exits
    print(json.dumps({"run": run, "processed": until.count, "reason": until.reason,
                      "closed_by_loop": outcome.closed_by_loop, "error": outcome.error,
                      "committed_at_join": joined}),
          flush=True)
    if outcome.error is not None:
        print(f"the loop raised {outcome.error}", file=sys.stderr, flush=True)
        return 3
    return 0


def _wait_for_go() -> str | None:
    """A warm worker: import everything, then wait for the config path on stdin."""
    _import_all()
    line = sys.stdin.readline().strip()
    if not line:  # the parent closed stdin (or died): nothing to run
        return None
    cfg = json.loads(Path(line).read_text())
    for fd, name in ((1, "stdout"), (2, "stderr")):
        target = os.open(cfg[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    return line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m helpers.crashlab.worker CONFIG.json`` (or ``--wait``): one run of a trial."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m helpers.crashlab.worker CONFIG.json | --wait", file=sys.stderr)
        return 2
    path = args[0]
    if path == "--wait":
        go = _wait_for_go()
        if go is None:
            return 0
        path = go
    logging.basicConfig(level=os.environ.get("CRASHLAB_LOG", "WARNING"), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return _run(json.loads(Path(path).read_text()))


def _exit_now_is_safe(atexit_before: int) -> bool:
    """True when skipping the interpreter's shutdown loses nothing: the run added no exit
    handler (a producer's flush registers one) and left no non-daemon thread behind."""
    import atexit

    count = getattr(atexit, "_ncallbacks", None)
    return count is not None and count() <= atexit_before and all(
        t.daemon for t in threading.enumerate() if t is not threading.main_thread())


if __name__ == "__main__":
    import atexit

    _import_all()
    _handlers = getattr(atexit, "_ncallbacks", lambda: -1)()
    _code = main()
    if _exit_now_is_safe(_handlers):
        # The ledger lines are single writes and the status line is flushed; the parent
        # waits for this process to end, and the interpreter's shutdown (tearing down
        # kafka-python's modules) takes 0.1 to 0.5 s on a loaded machine: skip it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_code)
    sys.exit(_code)
