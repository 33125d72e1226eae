"""The crash lab's parent: start a worker, kill or stop it, restart, count (notebooks 02-06).

A *trial* runs a consumer loop in a **separate process** (:mod:`helpers.crashlab.worker`)
and stops it as a :class:`~helpers.crashlab.plan.CrashPlan` says (SIGKILL after a record,
after a time, inside a batch, or SIGTERM for a graceful stop); then a **fresh** process
in the same group reads until the topic is drained. Both append one ledger line per
record they finish, so :class:`~helpers.crashlab.plan.TrialReport` can count what was
processed twice and what never. :func:`grade_loop` puts a loop (yours, notebook 06)
through random SIGKILLs and a SIGTERM and grades it.
"""
from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..jsonl import read_rows as _read_jsonl
from . import forkserver, warm
from .plan import CrashPlan, TrialReport, WorkerError, grade_trial, predicted_duplicates, tally_ledger

__all__ = ["Grade", "grade_loop", "run_trial", "run_trials", "sweep_auto_commit"]

_ROOT = Path(__file__).resolve().parent.parent.parent
_POLL_S = 0.002  # how often the parent looks at the worker
#: Start workers through the fork server (benchmarks/worker_start.py sets it False to compare).
FORK = hasattr(os, "fork")
_PROGRESS_S = 0.1  # how often it counts the ledger for progress()


def _tail(path: Path, n: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no stderr)"


def _topic_offsets(admin: Any, topic: str) -> dict[int, tuple[int, int]]:
    from kafka import TopicPartition
    from kafka.protocol.consumer.offsets import OffsetSpec

    (desc,) = admin.describe_topics([topic])
    parts = sorted(p["partition_index"] for p in desc["partitions"])
    tps = [TopicPartition(topic, p) for p in parts]
    first = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in tps})
    end = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
    return {tp.partition: (int(first[tp].offset), int(end[tp].offset)) for tp in tps}


def _committed(admin: Any, group_id: str, topic: str, partitions: Iterable[int]) -> dict[int, int | None]:
    from ..topics import group_offsets

    got = group_offsets(admin, group_id)
    out: dict[int, int | None] = {p: None for p in partitions}
    for tp, om in got.items():
        if tp.topic == topic and om is not None and om.offset >= 0:
            out[tp.partition] = int(om.offset)
    return dict(sorted(out.items()))


Progress = Callable[[str, int, int], None]  # (stage, run, records processed in that run)


def _start_worker(cfg_path: Path, out_path: Path, err_path: Path, workers: Any) -> Any:
    """A warm worker given its config, else one forked by the fork server (:mod:`.forkserver`),
    else (no ``os.fork``: Windows) a new process."""
    if workers is not None:
        proc = workers.take()
        if proc is not None and warm.start(proc, cfg_path):
            return proc
    if FORK:
        return forkserver.start(cfg_path)
    with open(err_path, "wb") as err, open(out_path, "wb") as out:
        return subprocess.Popen(warm.worker_command(str(cfg_path)), stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, cwd=_ROOT, env=warm.worker_env())


class _LedgerCounter:
    """Counts the ledger lines written since it was made, reading only what is new."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self.count = 0

    def update(self) -> int:
        if self.path.exists():
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
            self.offset += len(chunk)
            self.count += chunk.count(b"\n")
        return self.count


def _run_worker(cfg: dict[str, Any], workdir: Path, deadline: float,
                crash: CrashPlan | None, workers: Any = None,
                progress: Progress | None = None) -> dict[str, Any]:
    """Start one worker; kill or signal it as ``crash`` (parent-side triggers) says."""
    run = cfg["run"]
    cfg_path = workdir / f"run{run}.json"
    err_path, out_path = workdir / f"run{run}.stderr", workdir / f"run{run}.stdout"
    cfg_path.write_text(json.dumps({**cfg, "stdout": str(out_path), "stderr": str(err_path)}))
    ledger = Path(cfg["ledger"])
    counter = _LedgerCounter(ledger)
    started = time.time()
    if progress:
        progress("starting", run, 0)
    # The learner's loop module sits in the notebook's folder: the child imports it from there.
    proc = _start_worker(cfg_path, out_path, err_path, workers)
    signalled: dict[str, Any] = {}
    try:
        act_at: float | None = None
        shown, next_count = 0, 0.0
        while proc.poll() is None:
            now = time.time()
            if now > deadline:
                proc.kill()
                proc.wait()
                raise TimeoutError(f"crash-lab run {run} did not finish within the trial's "
                                   f"timeout_s; raise timeout_s or lower n_messages/process_ms. "
                                   f"Worker stderr:\n{_tail(err_path)}")
            if progress and now >= next_count:
                next_count = now + _PROGRESS_S
                if counter.update() != shown:
                    shown = counter.count
                    progress("consuming", run, shown)
            if crash is not None and crash.after_ms is not None and not signalled:
                if act_at is None and ledger.exists() and ledger.stat().st_size:
                    with open(ledger, "rb") as f:
                        first = json.loads(f.readline())
                    act_at = float(first["t"]) + crash.after_ms / 1000
                if act_at is not None and now >= act_at:
                    if crash.graceful:
                        proc.send_signal(signal.SIGTERM)
                    else:
                        proc.kill()
                    signalled = {"at": time.time(), "by": "parent"}
            time.sleep(_POLL_S)
    finally:
        if proc.poll() is None:  # an exception (KeyboardInterrupt too): leave nothing behind
            proc.kill()
            proc.wait()
    rc = proc.returncode
    killed = rc == -signal.SIGKILL
    if progress:
        progress("killed" if killed else "stopped", run, counter.update())
    if rc != 0 and not (killed and crash is not None and not crash.graceful):
        raise WorkerError(f"crash-lab run {run} exited with code {rc} "
                          f"({'killed' if killed else 'failed'}, not as planned). "
                          f"Worker stderr:\n{_tail(err_path)}")
    status = _read_jsonl(out_path)
    return {"rc": rc, "killed": killed, "seconds": time.time() - started,
            "status": status[-1] if status else None, "signalled": signalled}


def _killed_at(ledger: list[dict[str, Any]], polls: list[dict[str, Any]], t0: float,
               interval_s: float, by: str, handoff: bool) -> dict[str, Any]:
    """What run 1 had done when it died, from its ledger and its poll log."""
    run1 = [e for e in ledger if e["run"] == 1]
    k = len(run1)
    t_kill = run1[-1]["t"] if run1 else t0
    out: dict[str, Any] = {"record": k, "t": round(t_kill - t0, 6), "by": by}
    out["in_last_interval"] = sum(1 for e in run1 if e["t"] > t_kill - interval_s)
    p1 = [p for p in polls if p["run"] == 1]
    if p1 and not handoff:
        i = max((j for j, p in enumerate(p1) if p["start"] < k), default=len(p1) - 1)
        out["batch"], out["batch_size"] = i, p1[i]["size"]
        out["in_batch"] = k - p1[i]["start"]
        out["prev_batch_size"] = p1[i - 1]["size"] if i > 0 else 0
    return out


def _check_args(mode: str, crash: CrashPlan, n_messages: int, partitions: int,
                auto_commit_interval_ms: int, max_poll_records: int, process_ms: float,
                timeout_s: float, handoff: bool) -> None:
    from ..modes import get_mode

    get_mode(mode)
    if not isinstance(crash, CrashPlan):
        raise ValueError(f"crash must be a CrashPlan (e.g. CrashPlan(after_records=100)), "
                         f"not {crash!r}")
    for name, value in (("n_messages", n_messages), ("partitions", partitions),
                        ("auto_commit_interval_ms", auto_commit_interval_ms),
                        ("max_poll_records", max_poll_records)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")
    if not isinstance(process_ms, (int, float)) or process_ms < 0 or math.isnan(process_ms):
        raise ValueError(f"process_ms must be >= 0, not {process_ms!r}")
    if not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, not {timeout_s!r}")
    if handoff and crash.mid_batch:
        raise ValueError("handoff processes records on another thread, so there is no "
                         "'inside a batch' to kill in: use after_records or after_ms")
    crash.validate(n_messages)


def _prepare_topic(admin: Any, topic: str | None, mode: str, n_messages: int, partitions: int,
                   crash: CrashPlan, bootstrap: str) -> tuple[str, dict[int, tuple[int, int]]]:
    """The trial's topic (created and seeded unless it exists) and its offsets."""
    from ..topics import create_topic, seed_messages, unique_name

    if topic is None or topic not in set(admin.list_topics()):
        topic = create_topic(topic or unique_name(f"crashlab-{mode}"), partitions, bootstrap=bootstrap)
        seed_messages(topic, n_messages, bootstrap=bootstrap, progress=False)
    offsets = _topic_offsets(admin, topic)
    held = sum(end - first for first, end in offsets.values())
    if held != n_messages:
        raise ValueError(f"topic {topic!r} holds {held} messages, not n_messages={n_messages}: "
                         f"pass n_messages={held} or use a new topic (topic=None)")
    if crash.after_records is not None and crash.after_records > held:
        raise ValueError(f"after_records={crash.after_records} > {held} messages in {topic!r}")
    return topic, offsets


def _start_offsets(read: dict[int, int | None], status: dict[str, Any] | None) -> dict[int, int | None]:
    """The committed offsets run 2 started from: those its consumer fetched when it was
    assigned the partitions (the worker notes them), else those read right after run 1.

    A commit run 1 had already written to its socket when it was killed is still applied
    by the broker after the process is gone, so a read made just then can be too early;
    run 2's own fetch is what its reading really started from.
    """
    fetched = (status or {}).get("committed_at_join") or {}
    return {p: fetched.get(str(p), v) for p, v in read.items()}


def _members(admin: Any, group_id: str) -> int:
    """How many members the group has now (0 once everyone left or expired)."""
    return len(admin.describe_groups([group_id]).get(group_id, {}).get("members") or [])


def run_trial(mode: str, crash: CrashPlan, *, loop: Any = None, rerun_loop: bool = False,
              n_messages: int = 2000,
              partitions: int = 3, topic: str | None = None, group_id: str | None = None,
              auto_commit_interval_ms: int = 5000, max_poll_records: int = 500,
              process_ms: float = 0.0, handoff: bool = False, timeout_s: float = 60,
              workdir: str | Path | None = None, bootstrap: str | None = None,
              workers: warm.WarmWorkers | None = None,
              progress: Progress | None = None) -> TrialReport:
    """One crash trial (notebook 02): crash a consumer, restart it, count the damage.

    Run 1 consumes ``topic`` in ``group_id`` with commit ``mode`` (its consumer settings,
    and its loop unless ``loop`` gives yours: a function in a module, or
    ``"module:function"``; notebook 06) in a separate process, and is stopped as ``crash``
    says; run 2, a fresh process in the same group running ``mode``'s own loop (or ``loop``
    again, with ``rerun_loop=True``: a loop whose effects live outside the ledger, such
    as a transactional producer's), reads until the topic is drained. ``topic=None``
    creates and seeds a new topic with ``n_messages`` over ``partitions``; an existing topic must hold exactly
    ``n_messages`` (trials can share one, each with its own group). ``process_ms``
    simulates work per record in run 1 (run 2 drains at full speed); ``handoff`` processes
    records on a background thread after ``poll()`` returned them. ``workdir`` keeps the
    ledger and logs. ``workers`` (a :class:`~helpers.crashlab.warm.WarmWorkers`) supplies
    already-started worker processes; ``progress(stage, run, records)`` is called as the trial goes
    (``"starting"``, ``"consuming"``, ``"killed"`` or ``"stopped"`` per run, then
    ``"counting"``), from the calling thread.
    Raises ``ValueError`` for nonsense input, :class:`WorkerError` (with the worker's
    stderr) if a run fails, ``TimeoutError`` after ``timeout_s`` (workers are killed).
    """
    _check_args(mode, crash, n_messages, partitions, auto_commit_interval_ms,
                max_poll_records, process_ms, timeout_s, handoff)
    from ..broker import ensure_broker
    from ..runner import loop_ref
    from ..topics import admin_client, unique_name

    ref = None if loop is None else loop_ref(loop)
    t0 = time.time()
    deadline = t0 + timeout_s
    bootstrap = bootstrap or ensure_broker().bootstrap
    group_id = group_id or unique_name(f"crashlab-{mode}")
    with admin_client(bootstrap) as admin:
        topic, offsets = _prepare_topic(admin, topic, mode, n_messages, partitions, crash, bootstrap)
        own_dir = workdir is None
        wd = Path(tempfile.mkdtemp(prefix="crashlab-")) if own_dir else Path(workdir)  # type: ignore[arg-type]
        wd.mkdir(parents=True, exist_ok=True)
        try:
            files = {name: str(wd / f"{name}.jsonl") for name in ("ledger", "polls", "commits")}
            for f in files.values():  # a reused workdir must not mix trials
                Path(f).unlink(missing_ok=True)
            base = {
                "mode": mode, "topic": topic, "group_id": group_id, "bootstrap": bootstrap,
                # static membership: run 2 takes over a killed run 1's partitions at once
                "group_instance_id": f"{group_id}-member", "n_messages": n_messages,
                "end_offsets": {str(p): e for p, (_, e) in offsets.items()},
                "auto_commit_interval_ms": auto_commit_interval_ms,
                "max_poll_records": max_poll_records, "process_ms": process_ms,
                "handoff": handoff, "idle_ms": 10_000, "max_seconds": timeout_s, **files,
            }
            run1 = {**base, "run": 1, "crash": asdict(crash), "loop": ref}
            if crash.graceful:
                # A static member never sends LeaveGroup, so only a dynamic one shows whether
                # close() was called; 6 s (the broker's minimum) bounds the wait if it was not.
                run1.update(group_instance_id=None, session_timeout_ms=6000)
            w1 = _run_worker(run1, wd, deadline, crash, workers, progress)
            left = _members(admin, group_id) == 0 if crash.graceful else None
            committed_read = _committed(admin, group_id, topic, offsets)
            # run 2 only drains what is left and counts it: its simulated work would change nothing
            run2 = {**base, "run": 2, "crash": None, "loop": ref if rerun_loop else None, "process_ms": 0.0}
            w2 = _run_worker(run2, wd, deadline, None, workers, progress)
            if progress:
                progress("counting", 2, 0)
            committed_before = _start_offsets(committed_read, w2["status"])
            committed_after = _committed(admin, group_id, topic, offsets)
            raw, polls, commits = (_read_jsonl(Path(files[f])) for f in ("ledger", "polls", "commits"))
        finally:
            if own_dir:
                shutil.rmtree(wd, ignore_errors=True)
    return _report(mode, crash, ref, n_messages, topic, group_id, offsets, t0, w1, w2, left,
                   committed_before, committed_after, raw, polls, commits,
                   {"auto_commit_interval_ms": auto_commit_interval_ms,
                    "max_poll_records": max_poll_records, "process_ms": process_ms,
                    "handoff": handoff, "rerun_loop": rerun_loop})


def _report(mode: str, crash: CrashPlan, ref: str | None, n_messages: int, topic: str,
            group_id: str, offsets: dict[int, tuple[int, int]], t0: float, w1: dict[str, Any],
            w2: dict[str, Any], left: bool | None, committed_before: dict[int, int | None],
            committed_after: dict[int, int | None], raw: list[dict[str, Any]],
            polls: list[dict[str, Any]], commits: list[dict[str, Any]],
            settings: dict[str, Any]) -> TrialReport:
    """The :class:`TrialReport` from what the two runs left behind."""
    tally = tally_ledger(raw, offsets)
    killed_at = None
    if w1["killed"]:
        by = "parent" if w1["signalled"] else "worker"
        killed_at = _killed_at(raw, polls, t0, settings["auto_commit_interval_ms"] / 1000, by,
                               settings["handoff"])
    ledger = [{"run": e["run"], "partition": e["partition"], "offset": e["offset"],
               "t": round(e["t"] - t0, 6)} for e in raw]
    for c in commits:
        c["wall"] = round(c["wall"] - t0, 6)
    status1, status2 = w1["status"] or {}, w2["status"] or {}
    return TrialReport(
        mode=mode, crash=asdict(crash), n_messages=n_messages, topic=topic, group_id=group_id,
        processed=tally["processed"], duplicates=tally["duplicates"],
        duplicate_ranges=tally["duplicate_ranges"], lost=tally["lost"],
        lost_ranges=tally["lost_ranges"], committed_before=committed_before,
        committed_after=committed_after, killed_at=killed_at,
        durations={"run1_s": round(w1["seconds"], 3), "run2_s": round(w2["seconds"], 3),
                   "total_s": round(time.time() - t0, 3)},
        ledger=ledger, commits=commits,
        settings={"partitions": len(offsets), **settings, "loop": ref,
                  "run1_stopped": status1.get("reason"), "run2_stopped": status2.get("reason"),
                  "run1_closed": status1.get("closed_by_loop"), "run1_left_group": left},
    )


def run_trials(mode: str, crashes: list[CrashPlan] | int, *, seed: int | None = None,
               progress: bool = True, **kw: Any) -> Any:
    """Many crash trials of one mode, one DataFrame row each (notebooks 02-05).

    ``crashes`` is a list of plans, or a number: that many SIGKILLs after a random
    record in ``1 .. n_messages`` (``seed`` makes them repeatable). All trials share
    one topic (created and seeded once unless ``topic=`` is given), each with its own
    group. Other keywords go to :func:`run_trial`. Columns: the trial's
    :meth:`TrialReport.summary`, where it died in its batch, the predicted duplicate
    range (:func:`predicted_duplicates`) and the committed offsets.
    """
    import pandas as pd

    from ..modes import get_mode

    get_mode(mode)
    n = kw.get("n_messages", 2000)
    if isinstance(crashes, bool) or not isinstance(crashes, (int, list)):
        raise ValueError("crashes must be a list of CrashPlan or a number of random kills")
    if isinstance(crashes, int):
        if crashes < 1:
            raise ValueError(f"crashes must be >= 1 trials, not {crashes}")
        rng = random.Random(seed)
        plans = [CrashPlan(after_records=rng.randint(1, n)) for _ in range(crashes)]
    else:
        plans = list(crashes)
    if not plans:
        raise ValueError("crashes is empty: give at least one CrashPlan")
    for p in plans:  # all nonsense is reported before the first trial runs
        _check_args(mode, p, n, kw.get("partitions", 3), kw.get("auto_commit_interval_ms", 5000),
                    kw.get("max_poll_records", 500), kw.get("process_ms", 0.0),
                    kw.get("timeout_s", 60), kw.get("handoff", False))
    if kw.get("topic") is None:
        from ..topics import create_topic, seed_messages, unique_name

        kw["topic"] = create_topic(unique_name(f"crashlab-{mode}"), kw.get("partitions", 3),
                                   bootstrap=kw.get("bootstrap"))
        seed_messages(kw["topic"], n, bootstrap=kw.get("bootstrap"), progress=False)
    it: Any = plans
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(plans, desc=f"crash trials ({mode})", unit="trial")
    rows = []
    for i, plan in enumerate(it):
        rep = run_trial(mode, plan, **kw)
        k = rep.killed_at or {}
        pred = predicted_duplicates(rep)
        verdict = grade_trial(rep, mode)
        rows.append({"trial": i, **rep.summary(), "in_batch": k.get("in_batch"),
                     "batch_size": k.get("batch_size"),
                     "in_last_interval": k.get("in_last_interval"),
                     "predicted_min": pred[0] if pred else None,
                     "predicted_max": pred[1] if pred else None,
                     "auto_commit_interval_ms": rep.settings["auto_commit_interval_ms"],
                     "max_poll_records": rep.settings["max_poll_records"],
                     "group_id": rep.group_id,
                     "committed_before": rep.committed_before,
                     "committed_after": rep.committed_after,
                     "passed": verdict["passed"], "problems": verdict["problems"]})
    return pd.DataFrame(rows).set_index("trial")


def sweep_auto_commit(intervals_ms: list[int], *, trials: int = 3, **kw: Any) -> Any:
    """Duplicates after a crash vs ``auto_commit_interval_ms`` (notebook 02's plot).

    For each interval, ``trials`` random SIGKILLs of an auto-commit consumer (all on one
    shared topic). Returns one row per trial with ``auto_commit_interval_ms``; group by
    it for the plot. ``process_ms`` (default 2) spreads the run over several intervals.
    """
    import pandas as pd

    if not intervals_ms:
        raise ValueError("intervals_ms is empty: give e.g. [100, 500, 1000]")
    for ms in intervals_ms:
        if isinstance(ms, bool) or not isinstance(ms, int) or ms < 1:
            raise ValueError(f"auto_commit_interval_ms values must be whole numbers >= 1, not {ms!r}")
    kw.setdefault("process_ms", 2.0)
    seed = kw.pop("seed", None)
    progress = kw.pop("progress", True)
    if kw.get("topic") is None:
        from ..topics import create_topic, seed_messages, unique_name

        n = kw.get("n_messages", 2000)
        kw["topic"] = create_topic(unique_name("crashlab-sweep"), kw.get("partitions", 3),
                                   bootstrap=kw.get("bootstrap"))
        seed_messages(kw["topic"], n, bootstrap=kw.get("bootstrap"), progress=False)
    frames = []
    for j, ms in enumerate(intervals_ms):
        df = run_trials("auto", trials, seed=None if seed is None else seed + j,
                        progress=progress, auto_commit_interval_ms=ms, **kw)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)



@dataclass
class Grade:
    """A loop's grade from :func:`grade_loop` (notebook 06): one row per trial, and the verdict."""

    loop: str
    mode: str
    rows: list[dict[str, Any]]
    reports: list[TrialReport] = field(repr=False, default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r["passed"] for r in self.rows)

    @property
    def problems(self) -> list[str]:
        return [f"{r['crash']}: {p}" for r in self.rows for p in r["problems"]]

    def table(self) -> Any:
        """The trials as a DataFrame, one row each."""
        import pandas as pd

        cols = ["crash", "lost", "duplicates", "predicted", "commits", "final_commit",
                "committed_on_stop", "left_group", "passed"]
        return pd.DataFrame([{c: r.get(c) for c in cols} for r in self.rows])

    def summary(self) -> dict[str, Any]:
        """JSON-ready headline: passed, trials, lost, max duplicates, problems."""
        return {"loop": self.loop, "mode": self.mode, "passed": self.passed,
                "trials": len(self.rows), "lost": sum(r["lost"] for r in self.rows),
                "max_duplicates": max((r["duplicates"] for r in self.rows), default=0),
                "problems": self.problems}

    def _repr_html_(self) -> str:
        import html

        verdict = ("<b style='color:green'>PASSED</b>" if self.passed
                   else "<b style='color:#b00'>NOT YET</b>")
        items = "".join(f"<li>{html.escape(p)}</li>" for p in self.problems)
        return (f"<p>{html.escape(self.loop)} graded as mode <code>{html.escape(self.mode)}</code>: "
                f"{verdict}</p>{self.table().to_html(index=False)}"
                + (f"<p>What to fix:</p><ul>{items}</ul>" if items else ""))


def grade_loop(loop: Any, mode: str = "combined", *, kills: int = 4, graceful: bool = True,
               crashes: list[CrashPlan] | None = None, seed: int | None = None,
               n_messages: int = 400, partitions: int = 3,
               max_poll_records: int = 50, process_ms: float = 1.0, progress: bool = True,
               **kw: Any) -> Grade:
    """Grade a consumer loop under random SIGKILLs and one SIGTERM (notebook 06).

    ``loop``: your function (in a module, e.g. saved with ``%%writefile``) or
    ``"module:function"``; ``mode``: the commit mode it claims, whose consumer settings
    it runs with and whose duplicate bound it is held to. Each kill is a trial after a
    random record (``seed`` repeats them), or each of ``crashes`` if given; the graceful
    trial sends SIGTERM after half the records. A trial whose loop raised is graded as
    failed, with the error.
    """
    from ..runner import loop_ref
    from ..topics import create_topic, seed_messages, unique_name

    ref = loop_ref(loop)
    if isinstance(kills, bool) or not isinstance(kills, int) or kills < 0:
        raise ValueError(f"kills must be a whole number >= 0, not {kills!r}")
    rng = random.Random(seed)
    plans = list(crashes) if crashes is not None else \
        [CrashPlan(after_records=rng.randint(1, n_messages - 1)) for _ in range(kills)]
    if graceful:
        plans.append(CrashPlan(graceful=True))
    if not plans:
        raise ValueError("nothing to grade: give kills >= 1, crashes=[...], or graceful=True")
    for plan in plans:  # all nonsense is reported before the first trial runs
        _check_args(mode, plan, n_messages, partitions, kw.get("auto_commit_interval_ms", 5000),
                    max_poll_records, process_ms, kw.get("timeout_s", 60), kw.get("handoff", False))
    topic = kw.pop("topic", None)
    if topic is None:
        topic = create_topic(unique_name("graded"), partitions, bootstrap=kw.get("bootstrap"))
        seed_messages(topic, n_messages, bootstrap=kw.get("bootstrap"), progress=False)
    it: Any = plans
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(plans, desc=f"grading {ref}", unit="trial")
    rows, reports = [], []
    for plan in it:
        try:
            rep = run_trial(mode, plan, loop=ref, n_messages=n_messages, topic=topic,
                            partitions=partitions, max_poll_records=max_poll_records,
                            process_ms=process_ms, **kw)
        except WorkerError as e:
            lines = [ln for ln in str(e).splitlines() if ln.strip()]
            why = lines[0] + (f" ... {lines[-1].strip()}" if len(lines) > 1 else "")
            rows.append({"crash": plan.label(), "lost": 0, "duplicates": 0, "passed": False,
                         "problems": [f"the loop failed: {why}"]})
            continue
        reports.append(rep)
        rows.append(grade_trial(rep, mode))
    return Grade(ref, mode, rows, reports)
