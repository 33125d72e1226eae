"""The failover lab's child process: one consumer in one commit mode while its coordinator dies (notebook 12).

``python -m helpers.failover_worker CONFIG.json`` builds a consumer with the mode's settings
(:func:`helpers.consumers.make_consumer`) and runs the mode's own loop from
:mod:`helpers.modes` through :func:`helpers.runner.run_loop`, so what it shows is what those
loops do. Four files, each a JSON line per event, written with one ``O_APPEND`` write
(:mod:`helpers.jsonl`):

* ``ledger``: one line per processed record (as the crash lab's);
* ``commits``: every commit attempt a :class:`~helpers.tracing.CommitTracer` saw, with the
  exception's class, whether kafka-python marks it retriable, and the node that coordinated
  the group and the group's generation when the answer came;
* ``callbacks``: every call of the async commit callback, with what it received;
* ``events``: kafka-python's own log lines about the coordinator ("Marking the coordinator
  dead ...", "Discovered coordinator ..."): what ``commit()`` retried without telling you.

Run 1 (``stop_when_drained`` false) runs until SIGTERM; run 2 until the topic is drained.
"""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .jsonl import append_row

__all__ = ["describe_result", "main", "node_of"]

_COORDINATOR_LOG = re.compile(r"^(Marking the coordinator dead|Discovered coordinator)")


def node_of(coordinator_id: Any) -> int | None:
    """kafka-python's coordinator id (``"coordinator-3"`` or ``3``) -> node id 3 (notebook 12)."""
    if coordinator_id is None:
        return None
    m = re.search(r"(\d+)$", str(coordinator_id))
    return int(m.group(1)) if m else None


def describe_result(res_or_exc: Any) -> dict[str, Any]:
    """What a commit call or callback got: ``{"result": class name, "retriable": bool|None,
    "message": text}``; ``retriable`` is kafka-python's flag, ``None`` for a success (notebook 12)."""
    if isinstance(res_or_exc, BaseException):
        return {"result": type(res_or_exc).__name__,
                "retriable": bool(getattr(res_or_exc, "retriable", False)),
                "message": str(res_or_exc)[:200]}
    return {"result": type(res_or_exc).__name__, "retriable": None, "message": repr(res_or_exc)[:200]}


class _CoordinatorLog(logging.Handler):
    """Writes kafka-python's coordinator log lines (lost or found) to the events file."""

    def __init__(self, write: Callable[[dict[str, Any]], None]) -> None:
        super().__init__(logging.INFO)
        self.write = write

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a log line we cannot format is not ours to fail on
            return
        m = _COORDINATOR_LOG.match(text)
        if not m:
            return
        kind = "dead" if m.group(1).startswith("Marking") else "found"
        detail = text.split(": ", 1)[1].rstrip(".") if kind == "dead" and ": " in text else ""
        cls = re.search(r"([A-Z][A-Za-z]*Error)", detail)
        node = re.search(r"coordinator-(\d+)", text)
        self.write({"kind": kind, "reason": cls.group(1) if cls else detail, "detail": detail[:160],
                    "node": int(node.group(1)) if node else None,
                    "wall": time.time()})


def _run(cfg: dict[str, Any]) -> int:
    from .consumers import make_consumer
    from .modes import get_mode
    from .runner import Until, run_loop
    from .tracing import CommitTracer

    run, spec = int(cfg["run"]), get_mode(cfg["mode"])
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    fds = {f: os.open(cfg[f], flags, 0o644) for f in ("ledger", "commits", "callbacks", "events")}
    settings = {**spec.settings, "auto_commit_interval_ms": cfg["auto_commit_interval_ms"],
                "max_poll_records": cfg["max_poll_records"],
                "client_id": f"failover-{cfg['group_id']}-run{run}"}
    consumer = make_consumer(cfg["topic"], group_id=cfg["group_id"], bootstrap=cfg["bootstrap"],
                             **settings)
    coord = consumer._coordinator

    def on_attempt(row: dict[str, Any]) -> None:
        error = row.get("error") or ""
        cls = error.split(":", 1)[0] if error else "None"
        retriable = None
        if error:
            import kafka.errors

            retriable = bool(getattr(getattr(kafka.errors, cls, None), "retriable", False))
        append_row(fds["commits"], {**row, "run": run, "wall": time.time(), "result": cls,
                                    "retriable": retriable, "node": node_of(coord.coordinator_id),
                                    "generation": coord._generation.generation_id})

    CommitTracer(sink=on_attempt).attach(consumer)
    log = logging.getLogger("kafka.coordinator")
    log.setLevel(logging.INFO)
    log.addHandler(_CoordinatorLog(lambda row: append_row(fds["events"], {**row, "run": run})))

    def on_commit(offsets: Any, res_or_exc: Any) -> None:  # the async callback: what it receives
        append_row(fds["callbacks"], {
            "run": run, "wall": time.time(), "node": node_of(coord.coordinator_id),
            "offsets": {f"{tp.topic}:{tp.partition}": om.offset for tp, om in offsets.items()},
            **describe_result(res_or_exc)})

    ends = {int(p): int(e) for p, e in cfg["end_offsets"].items()}

    def drained() -> bool:
        assigned = consumer.assignment()
        return bool(assigned) and len(assigned) == len(ends) \
            and all(consumer.position(tp) >= ends[tp.partition] for tp in assigned)

    until = Until(max_seconds=float(cfg["max_seconds"]),
                  idle_s=float(cfg["idle_s"]) if cfg.get("idle_s") else None,
                  drained=drained if cfg.get("stop_when_drained") else None)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: until.stop("stop signal"))
    process_s = float(cfg.get("process_ms") or 0) / 1000

    def process(record: Any) -> None:
        if process_s:
            time.sleep(process_s)
        append_row(fds["ledger"], {"run": run, "partition": record.partition,
                                   "offset": record.offset, "t": time.time()})
        until.done()

    outcome = run_loop(spec.loop, consumer, process, until.running, reraise=False,
                       on_commit=on_commit)
    print(json.dumps({"run": run, "mode": cfg["mode"], "processed": until.count,
                      "reason": until.reason, "error": outcome.error}), flush=True)
    return 3 if outcome.error is not None else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m helpers.failover_worker CONFIG.json``: one consumer run (notebook 12)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m helpers.failover_worker CONFIG.json", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # stderr: errors only; coordinator lines go to events
        handler.setLevel(logging.ERROR)
    return _run(json.loads(Path(args[0]).read_text()))


if __name__ == "__main__":
    sys.exit(main())
