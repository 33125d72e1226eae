"""What a crash trial is, and what it predicts: pure code, no broker (notebook 02).

:class:`CrashPlan` says when run 1 dies; :class:`TrialReport` is what a trial measured;
:func:`tally_ledger` counts duplicates and losses; :func:`predicted_duplicates` gives the
range the commit mode predicts (each mode declares its own bound in
:mod:`helpers.modes`); :func:`grade_trial` turns a report into verdicts a learner can
act on (notebook 06 grades your own loop with them).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "CrashPlan",
    "TrialReport",
    "WorkerError",
    "tally_ledger",
    "predicted_duplicates",
    "grade_trial",
]


class WorkerError(RuntimeError):
    """A crash-lab worker process failed for a reason other than the planned kill."""


# ---------------------------------------------------------------------------- the plan

@dataclass
class CrashPlan:
    """When to stop the first consumer of a trial (notebook 02).

    Exactly one trigger (``after_records``, ``after_ms`` or ``mid_batch``), or
    ``graceful=True``. ``mid_batch`` may come with ``after_records`` (kill inside the
    first batch that still has records left after that record); ``graceful`` may come
    with ``after_records`` or ``after_ms`` (when to send the stop signal).
    """

    after_records: int | None = None
    after_ms: int | None = None
    mid_batch: bool = False
    graceful: bool = False

    def validate(self, n_messages: int | None = None) -> CrashPlan:
        """Raise ``ValueError`` (saying what to do) unless the plan makes sense."""
        for name in ("after_records", "after_ms"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"CrashPlan.{name} must be a whole number, not {value!r}")
        if self.after_records is not None and self.after_records < 1:
            raise ValueError(f"CrashPlan.after_records must be >= 1 (the record to die after), "
                             f"not {self.after_records}")
        if self.after_ms is not None and self.after_ms < 0:
            raise ValueError(f"CrashPlan.after_ms must be >= 0, not {self.after_ms}")
        if self.after_records is not None and self.after_ms is not None:
            raise ValueError("CrashPlan takes after_records or after_ms, not both: pick one moment")
        if self.mid_batch and self.after_ms is not None:
            raise ValueError("mid_batch kills inside a batch; combine it with after_records "
                             "(from which record on), not after_ms")
        if self.graceful and self.mid_batch:
            raise ValueError("graceful stops between batches; it cannot be mid_batch")
        if not (self.graceful or self.mid_batch) and self.after_records is None \
                and self.after_ms is None:
            raise ValueError("CrashPlan needs a moment: after_records=N, after_ms=T, "
                             "mid_batch=True, or graceful=True")
        if n_messages is not None and self.after_records is not None \
                and self.after_records > n_messages:
            raise ValueError(f"CrashPlan.after_records={self.after_records} but the topic has only "
                             f"{n_messages} messages: lower it or raise n_messages")
        return self

    def label(self) -> str:
        """A short text for tables, e.g. ``kill@120`` or ``graceful@1000ms``."""
        kind = "graceful" if self.graceful else ("mid-batch" if self.mid_batch else "kill")
        if self.after_records is not None:
            return f"{kind}@{self.after_records}"
        if self.after_ms is not None:
            return f"{kind}@{self.after_ms}ms"
        return kind


# ---------------------------------------------------------------------------- report

@dataclass
class TrialReport:
    """What one crash trial did (notebook 02): see :func:`run_trial`.

    ``duplicates`` counts extra processings (ledger lines minus distinct records),
    which with two runs is the number of records processed twice. Offsets are
    Kafka's: a committed offset is the *next* record to read.
    """

    mode: str
    crash: dict[str, Any]
    n_messages: int
    topic: str
    group_id: str
    processed: int
    duplicates: int
    duplicate_ranges: dict[int, list[tuple[int, int]]]
    lost: int
    lost_ranges: dict[int, list[tuple[int, int]]]
    committed_before: dict[int, int | None]
    committed_after: dict[int, int | None]
    killed_at: dict[str, Any] | None
    durations: dict[str, float]
    ledger: list[dict[str, Any]] = field(repr=False)
    commits: list[dict[str, Any]] = field(repr=False)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (int partition keys become strings, tuples lists)."""
        return json.loads(json.dumps(asdict(self), default=str))

    def summary(self) -> dict[str, Any]:
        """The headline numbers only."""
        run1 = sum(1 for e in self.ledger if e["run"] == 1)
        return {
            "mode": self.mode,
            "crash": CrashPlan(**self.crash).label(),
            "n_messages": self.n_messages,
            "run1_processed": run1,
            "run2_processed": self.processed - run1,
            "processed": self.processed,
            "duplicates": self.duplicates,
            "lost": self.lost,
            "killed_at_record": (self.killed_at or {}).get("record"),
            "total_s": self.durations.get("total_s"),
        }

    def _repr_html_(self) -> str:  # a readable cell output in the notebooks
        rows = "".join(f"<tr><th style='text-align:left'>{k}</th><td>{v}</td></tr>"
                       for k, v in self.summary().items())
        return f"<table>{rows}</table>"


def _ranges(offsets: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted offsets -> inclusive ``(first, last)`` runs of consecutive offsets."""
    out: list[tuple[int, int]] = []
    for o in sorted(offsets):
        if out and o == out[-1][1] + 1:
            out[-1] = (out[-1][0], o)
        else:
            out.append((o, o))
    return out


def tally_ledger(ledger: Sequence[dict[str, Any]],
                 expected: dict[int, tuple[int, int]]) -> dict[str, Any]:
    """Duplicates and losses of a ledger against the offsets a topic holds (notebook 02).

    ``ledger``: dicts with ``partition`` and ``offset`` (one per processing);
    ``expected``: partition -> ``(first_offset, end_offset)``, end exclusive, as
    Kafka's beginning/end offsets are. Returns ``processed``, ``duplicates`` (extra
    processings), ``duplicate_ranges``, ``lost`` and ``lost_ranges`` (partition ->
    inclusive offset ranges). A ledger entry outside ``expected`` raises ``ValueError``.
    """
    seen: dict[int, dict[int, int]] = {p: {} for p in expected}
    for e in ledger:
        p, o = int(e["partition"]), int(e["offset"])
        if p not in expected or not expected[p][0] <= o < expected[p][1]:
            raise ValueError(f"ledger has partition {p} offset {o}, outside the topic's "
                             f"offsets {expected}")
        seen[p][o] = seen[p].get(o, 0) + 1
    dup_ranges: dict[int, list[tuple[int, int]]] = {}
    lost_ranges: dict[int, list[tuple[int, int]]] = {}
    duplicates = lost = 0
    for p, (first, end) in sorted(expected.items()):
        counts = seen[p]
        duplicates += sum(c - 1 for c in counts.values())
        twice = [o for o, c in counts.items() if c > 1]
        missing = [o for o in range(first, end) if o not in counts]
        lost += len(missing)
        if twice:
            dup_ranges[p] = _ranges(twice)
        if missing:
            lost_ranges[p] = _ranges(missing)
    return {"processed": len(ledger), "duplicates": duplicates, "duplicate_ranges": dup_ranges,
            "lost": lost, "lost_ranges": lost_ranges}


def _acked_since(report: TrialReport, record: int) -> int:
    """Records run 1 processed after the last commit the broker acknowledged."""
    acked: dict[str, int] = {}
    for c in report.commits:
        if c.get("run") == 1 and c.get("outcome") == "success":
            for tp, off in c["offsets"].items():
                acked[tp] = max(acked.get(tp, 0), int(off))
    return record - sum(acked.values())


def predicted_duplicates(report: TrialReport) -> tuple[int, int] | None:
    """The duplicates a trial's commit mode predicts, as ``(low, high)`` (notebooks 02-05).

    From what run 1 had done when it died (``report.killed_at``), not from the result.
    A SIGKILL: the mode's own bound (:attr:`helpers.modes.Mode.bound`; auto, async and
    combined commits are sent by kafka-python's I/O thread, so their bound is also at
    least everything after the last commit the broker *acknowledged*). A graceful stop:
    ``(0, 0)``, except ``none`` (everything run 1 processed) and ``async``: up to what its
    last unacknowledged commits covered, because ``close()`` does not wait for queued
    async commits (``combined``'s final sync ``commit()`` is the cure).
    ``None`` when there is nothing to predict (``handoff``: losses, not duplicates).
    """
    from ..modes import get_mode

    s, k = report.settings, report.killed_at
    if s.get("handoff"):
        return None
    run1 = sum(1 for e in report.ledger if e["run"] == 1)
    if report.crash.get("graceful") or k is None:
        if report.mode == "none":
            return (run1, run1)
        if report.mode == "async":
            return (0, max(int(s["max_poll_records"]), _acked_since(report, run1)))
        return (0, 0)
    record = int(k["record"])
    return get_mode(report.mode).bound(k, s, _acked_since(report, record))


def _fmt_ranges(ranges: dict[Any, list[Any]]) -> str:
    parts = []
    for p, rs in sorted(ranges.items(), key=lambda kv: int(kv[0])):
        spans = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in rs)
        parts.append(f"partition {p} offsets {spans}")
    return "; ".join(parts)


def _lost_reason(report: TrialReport) -> str:
    """Why records were lost: committed past work run 1 had not finished, or something else."""
    run1 = {(int(e["partition"]), int(e["offset"])) for e in report.ledger if e["run"] == 1}
    before = {int(p): -1 if v is None else int(v) for p, v in report.committed_before.items()}
    skipped = [(int(p), o) for p, rs in report.lost_ranges.items() for a, b in rs
               for o in range(a, b + 1) if o < before.get(int(p), -1) and (int(p), o) not in run1]
    if skipped:
        return ("the group's committed offsets had moved past them before run 1 processed "
                f"them (committed when run 1 stopped: {report.committed_before}), so run 2 "
                "started after them. Commit only offsets of records you have finished: "
                "commit after processing, never before, and not while records still wait "
                "on another thread.")
    return ("run 2 did not read them although the committed offsets did not skip them; "
            "look at the ledger and run 2's stop reason "
            f"({report.settings.get('run2_stopped')}).")


def grade_trial(report: TrialReport, claimed: str | None = None) -> dict[str, Any]:
    """Verdicts on one trial of a loop that claims commit mode ``claimed`` (notebook 06).

    Returns a row: ``lost`` (must be 0 for an at-least-once mode), ``duplicates`` against
    the claimed mode's predicted range, and for a graceful stop (SIGTERM) whether it
    committed everything it processed, confirmed that last commit before ``close()``
    (``final_commit`` is the kind of run 1's last commit attempt), and left the group.
    ``commits`` counts run 1's commit attempts that were answered (or failed) before it stopped.
    ``problems`` says what went wrong in words, naming offsets.
    """
    mode = claimed or report.mode
    s = report.settings
    run1_commits = [c for c in report.commits if c.get("run") == 1]
    row: dict[str, Any] = {
        "crash": CrashPlan(**report.crash).label(), "lost": report.lost,
        "duplicates": report.duplicates, "commits": len(run1_commits),
    }
    problems: list[str] = []
    if report.lost:
        problems.append(f"{report.lost} record(s) never processed: "
                        f"{_fmt_ranges(report.lost_ranges)}. Why: {_lost_reason(report)}")
    run1 = sum(1 for e in report.ledger if e["run"] == 1)
    if mode not in ("none", "auto") and not run1_commits and run1 >= 3 * int(s["max_poll_records"]):
        problems.append(f"run 1 processed {run1} records (several batches) and not one commit was "
                        f"answered: mode {mode!r} commits by hand, so a restart reads all of it "
                        "again. Call commit() or commit_async() after each batch.")
    pred = predicted_duplicates(report)
    row["predicted"] = None if pred is None else f"{pred[0]}..{pred[1]}"
    if pred is not None and mode != "none" and report.duplicates > pred[1] and not report.lost:
        problems.append(f"{report.duplicates} records processed twice, more than mode "
                        f"{mode!r} allows here ({pred[1]}): the loop commits less often "
                        "than the mode it claims")
    if report.crash.get("graceful"):
        processed: dict[int, int] = {}
        for e in report.ledger:
            if e["run"] == 1:
                p = int(e["partition"])
                processed[p] = max(processed.get(p, -1), int(e["offset"]))
        before = {int(p): v for p, v in report.committed_before.items()}
        behind = {p: (before.get(p), last + 1) for p, last in processed.items()
                  if (before.get(p) or 0) < last + 1}
        last = run1_commits[-1] if run1_commits else None
        row["final_commit"] = None if last is None else last.get("mode")
        confirmed = (last is not None and last.get("outcome") == "success"
                     and last.get("mode") in ("sync", "auto-sync"))
        row["committed_on_stop"] = not behind
        row["final_commit_confirmed"] = confirmed
        row["left_group"] = s.get("run1_left_group")
        if mode != "none":
            if behind:
                problems.append("after SIGTERM the group's committed offsets were behind what run 1 "
                                "had processed (partition: (committed, processed up to)): "
                                f"{behind}; a restart processes those records again. Commit "
                                "synchronously on the way out.")
            if not confirmed:
                kind = ("no commit at all" if last is None
                        else f"{'an' if str(last.get('mode')).startswith('a') else 'a'} "
                             f"{last.get('mode')} commit ({last.get('outcome')})")
                fix = ("Let close() commit on the way out (close(autocommit=True), the default)."
                       if mode == "auto" else "End with consumer.commit() after the loop.")
                problems.append(f"the last commit before close() was {kind}: only a synchronous "
                                "commit is confirmed before close() returns, and close() does not "
                                f"wait for async commits (kafka-python 3.0.12). {fix}")
        if s.get("run1_closed") is False or s.get("run1_left_group") is False:
            problems.append("run 1 was still a member of the group after it exited: it never called "
                            "close(), so the group waits session_timeout_ms before anyone else "
                            "gets its partitions. Call consumer.close() in finally.")
    row["passed"] = not problems
    row["problems"] = problems
    return row
