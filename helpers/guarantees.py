"""Delivery guarantees by name, each a consumer loop the crash lab can kill (notebook 08).

Four loops, all written to the loop contract of :mod:`helpers.runner`
(``loop(consumer, process, running)``; the loop commits and closes) and all run with
the ``sync`` mode's consumer settings (manual commits):

* :func:`at_most_once_loop`: ``commit()`` what ``poll()`` returned, *then* process. A
  crash loses the rest of the batch; nothing is ever processed twice;
* :func:`at_least_once_loop`: process, *then* ``commit()``. A crash repeats the
  unfinished batch; nothing is lost;
* :func:`effectively_once_loop`: at-least-once, but each record's effect is written to
  a SQLite table together with the record's (topic, partition, offset), and a record
  whose effect is already there is dropped. A replay repeats the *reading*, never the
  *effect*;
* :func:`exactly_once_loop`: read-process-write with a transactional producer. The
  result goes to an output topic and the input offsets are committed **in the same
  transaction** (``send_offsets_to_transaction``); a crash aborts the open transaction,
  so a downstream consumer with ``isolation_level='read_committed'`` sees each result
  once.

A loop that needs more than the consumer derives it from the consumer: the bootstrap
servers and group from ``consumer.config``, the input topic from
``consumer.subscription()``; the output topic is ``f"{input_topic}-out"``
(:func:`output_topic`), the transactional id ``f"{group_id}-tx"``
(:func:`transactional_id`: stable across restarts, so a restarted run fences the
dead one) and the SQLite file is named after the group (:func:`effects_path`).

What counts is each guarantee's **effect**: the ledger line ``process(record)`` writes
(at-most-once, at-least-once), the SQLite rows (effectively-once), the output records a
``read_committed`` consumer sees (exactly-once). :func:`run_guarantee_trial` kills a
loop with the crash lab (:func:`helpers.crashlab.run_trial` with ``rerun_loop=True``) and
tallies those effects with :func:`helpers.crashlab.tally_ledger`;
:func:`run_guarantee_trials` does it for many kills and guarantees,
:func:`grade_effectively_once` grades your own idempotent loop, and
:func:`measure_costs` times each loop against the no-commit floor.
"""
from __future__ import annotations

import contextlib
import random
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .crashlab import CrashPlan, TrialReport, run_trial, tally_ledger

__all__ = [
    "GUARANTEES",
    "GUARANTEE_LOOPS",
    "MODE",
    "EffectGrade",
    "GuaranteeTrial",
    "already_applied",
    "apply_effect",
    "at_least_once_loop",
    "at_most_once_loop",
    "effectively_once_loop",
    "effects_path",
    "exactly_once_loop",
    "grade_effectively_once",
    "measure_costs",
    "open_effects",
    "output_topic",
    "read_effects",
    "read_output",
    "run_guarantee_trial",
    "run_guarantee_trials",
    "summarize_trials",
    "transactional_id",
]

Process = Callable[[Any], None]
Running = Callable[[], bool]

#: The guarantees, weakest first.
GUARANTEES: tuple[str, ...] = ("at-most-once", "at-least-once", "effectively-once", "exactly-once")
#: The commit mode whose consumer settings every guarantee's loop runs with: manual commits.
MODE = "sync"
#: Where the effectively-once loops keep their SQLite files (one per consumer group).
EFFECTS_DIR = Path(tempfile.gettempdir()) / "course-effects"


# ---------------------------------------------------------------------------- names

def output_topic(topic: str) -> str:
    """The topic the exactly-once loop writes its results to: ``f"{topic}-out"`` (notebook 08)."""
    return f"{topic}-out"


def transactional_id(group_id: str) -> str:
    """The exactly-once loop's ``transactional_id``: ``f"{group_id}-tx"`` (notebook 08).

    The same for every run of the group's consumer, so a restarted consumer's
    ``init_transactions()`` fences the one before it and aborts its open transaction.
    """
    return f"{group_id}-tx"


# ---------------------------------------------------------------------------- effects in SQLite

def effects_path(group_id: str) -> Path:
    """The SQLite file holding group ``group_id``'s effects (notebook 08)."""
    return EFFECTS_DIR / f"{group_id}.sqlite3"


def open_effects(group_id: str) -> sqlite3.Connection:
    """Open (and create) group ``group_id``'s effects table in SQLite (notebook 08).

    One row per *applied* effect: ``topic, partition, offset`` of the record, its value,
    and who applied it (the consumer's ``client_id``). There is deliberately no unique
    key: a loop that applies a record twice leaves two rows, so the crash lab can count
    duplicated effects. WAL journal with ``synchronous=NORMAL``: each commit reaches the
    operating system before ``apply_effect`` returns, so it survives a SIGKILL of the
    process (not a power cut).
    """
    path = effects_path(group_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    with db:
        db.execute('CREATE TABLE IF NOT EXISTS effects (topic TEXT, "partition" INTEGER, '
                   '"offset" INTEGER, value TEXT, applied_by TEXT, applied_at REAL)')
        db.execute('CREATE INDEX IF NOT EXISTS effects_by_record ON effects (topic, "partition", "offset")')
    return db


def already_applied(db: sqlite3.Connection, record: Any) -> bool:
    """Whether ``record``'s effect is already in the table: its (topic, partition, offset) (notebook 08)."""
    row = db.execute('SELECT 1 FROM effects WHERE topic = ? AND "partition" = ? AND "offset" = ? LIMIT 1',
                     (record.topic, record.partition, record.offset)).fetchone()
    return row is not None


def apply_effect(db: sqlite3.Connection, record: Any, applied_by: str = "") -> None:
    """Write ``record``'s effect, in one SQLite transaction committed before it returns (notebook 08).

    It does not check anything: calling it twice for a record applies the effect
    twice. Check :func:`already_applied` first.
    """
    with db:  # BEGIN ... COMMIT
        db.execute("INSERT INTO effects VALUES (?, ?, ?, ?, ?, ?)",
                   (record.topic, record.partition, record.offset, str(record.value), applied_by,
                    time.time()))


def read_effects(group_id: str) -> list[dict[str, Any]]:
    """Every effect row of group ``group_id``, in the order applied (notebook 08)."""
    path = effects_path(group_id)
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(str(path), timeout=30)) as db:
        rows = db.execute('SELECT topic, "partition", "offset", applied_by FROM effects '
                          "ORDER BY rowid").fetchall()
    return [{"topic": t, "partition": p, "offset": o, "by": by} for t, p, o, by in rows]


def _drop_effects(group_id: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{effects_path(group_id)}{suffix}").unlink(missing_ok=True)


# ---------------------------------------------------------------------------- the four loops

def at_most_once_loop(consumer: Any, process: Process, running: Running) -> None:
    """At-most-once (notebook 08): commit what ``poll()`` returned, *then* process it.

    A crash inside a batch loses the rest of that batch (the group's offset is already
    past it); no record is ever processed twice.
    """
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            if batch:
                consumer.commit()          # the position after this batch, before any work
            for records in batch.values():
                for record in records:
                    process(record)
    finally:
        consumer.close()


def at_least_once_loop(consumer: Any, process: Process, running: Running) -> None:
    """At-least-once (notebook 08): process the batch, *then* commit it.

    A crash inside a batch repeats the part of it already processed (the offset was
    not committed yet); no record is ever lost.
    """
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    process(record)
            if batch:
                consumer.commit()          # only once the whole batch is done
    finally:
        consumer.close()


def effectively_once_loop(consumer: Any, process: Process, running: Running) -> None:
    """Effectively-once (notebook 08): at-least-once delivery, idempotent effects.

    Each record's effect goes to SQLite together with the record's (topic, partition,
    offset); a record whose effect is already there (a replay after a crash) is
    dropped. Kafka still delivers it again; the effect happens once.
    """
    db = open_effects(consumer.config["group_id"])
    me = consumer.config["client_id"]
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    if already_applied(db, record):
                        continue           # a replay: its effect is already there
                    process(record)
                    apply_effect(db, record, me)
            if batch:
                consumer.commit()
    finally:
        db.close()
        consumer.close()


def exactly_once_loop(consumer: Any, process: Process, running: Running) -> None:
    """Exactly-once read-process-write with a transactional producer (notebook 08).

    Per batch: ``begin_transaction()``, one output record per input record (to
    ``f"{input_topic}-out"``, carrying the input's partition and offset), the input
    offsets added with ``send_offsets_to_transaction(offsets, consumer.group_metadata())``,
    then ``commit_transaction()``: the outputs and the offsets become visible together,
    or (after a crash) not at all. ``init_transactions()`` runs before the first
    ``poll()``: it fences any earlier producer with this ``transactional_id`` and waits
    until that producer's open transaction is aborted (or its commit finished), so the
    committed offsets this consumer starts from are final.
    """
    from kafka import KafkaProducer
    from kafka.structs import OffsetAndMetadata

    from .consumers import JsonSerializer, TextSerializer

    group_id = consumer.config["group_id"]
    (topic,) = consumer.subscription()
    out = f"{topic}-out"
    producer = KafkaProducer(bootstrap_servers=consumer.config["bootstrap_servers"],
                             transactional_id=f"{group_id}-tx",
                             key_serializer=TextSerializer(), value_serializer=JsonSerializer())
    try:
        producer.init_transactions()
        while running():
            batch = consumer.poll(timeout_ms=100)
            if not batch:
                continue
            producer.begin_transaction()
            for records in batch.values():
                for record in records:
                    process(record)
                    producer.send(out, key=record.key, value={
                        "group": group_id, "partition": record.partition, "offset": record.offset,
                        "by": consumer.config["client_id"]})
            offsets = {tp: OffsetAndMetadata(records[-1].offset + 1, "", -1)
                       for tp, records in batch.items()}
            producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
            producer.commit_transaction()  # sends what is buffered first, then ends the transaction
    finally:
        producer.close()
        consumer.close()


#: Each guarantee's loop, as the crash lab's ``"module:function"``.
GUARANTEE_LOOPS: dict[str, str] = {
    "at-most-once": "helpers.guarantees:at_most_once_loop",
    "at-least-once": "helpers.guarantees:at_least_once_loop",
    "effectively-once": "helpers.guarantees:effectively_once_loop",
    "exactly-once": "helpers.guarantees:exactly_once_loop",
}


# ---------------------------------------------------------------------------- reading the output topic

def read_output(topic: str, *, isolation_level: str = "read_committed", group: str | None = None,
                bootstrap: str | None = None, timeout_s: float = 30.0,
                high_watermarks: dict[int, int] | None = None) -> list[dict[str, Any]]:
    """The exactly-once loop's output records, read from the start of ``topic`` (notebook 08).

    ``topic`` is the *output* topic (:func:`output_topic`). A consumer without a group
    (``assign()``) reads every partition with ``isolation_level`` until its position
    reaches the partition's high watermark (``high_watermarks``, partition -> offset,
    is asked from the broker unless given): a ``read_committed`` consumer skips the
    records of aborted transactions (and the transaction markers) on the way, a
    ``read_uncommitted`` one returns them. ``group`` keeps only the records that
    group's loop wrote. Each row: ``partition``/``offset`` of the *input* record and
    ``by`` (the client that wrote it), as the loop put them in the value; then
    ``out_partition``/``out_offset``, ``key`` and ``value`` of the output record.
    """
    from kafka import KafkaConsumer, TopicPartition

    from .broker import ensure_broker
    from .consumers import JsonDeserializer, TextDeserializer

    if isolation_level not in ("read_committed", "read_uncommitted"):
        raise ValueError(f"isolation_level is 'read_committed' or 'read_uncommitted', "
                         f"not {isolation_level!r}")
    bootstrap = bootstrap or ensure_broker().bootstrap
    high = high_watermarks or _high_watermarks(topic, bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             isolation_level=isolation_level, key_deserializer=TextDeserializer(),
                             value_deserializer=JsonDeserializer(), bootstrap_timeout_ms=10_000)
    rows: list[dict[str, Any]] = []
    try:
        tps = [TopicPartition(topic, p) for p in sorted(high)]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < high[tp.partition] for tp in tps):
            if time.monotonic() > deadline:
                behind = {tp.partition: (consumer.position(tp), high[tp.partition]) for tp in tps
                          if consumer.position(tp) < high[tp.partition]}
                raise TimeoutError(f"{isolation_level} reader of {topic!r} did not reach the end within "
                                   f"{timeout_s} s (partition: (position, high watermark)): {behind}. "
                                   "Is a transaction still open?")
            for records in consumer.poll(timeout_ms=200).values():
                for r in records:
                    v = r.value if isinstance(r.value, dict) else {}
                    if group is None or v.get("group") == group:
                        rows.append({"partition": v.get("partition"), "offset": v.get("offset"),
                                     "by": v.get("by"), "out_partition": r.partition,
                                     "out_offset": r.offset, "key": r.key, "value": r.value})
    finally:
        consumer.close()
    return rows


def _high_watermarks(topic: str, bootstrap: str) -> dict[int, int]:
    """partition -> end offset as a ``read_uncommitted`` reader sees it: the high watermark."""
    from kafka import TopicPartition
    from kafka.protocol.consumer.offsets import OffsetSpec

    from .topics import admin_client

    with admin_client(bootstrap) as admin:
        (desc,) = admin.describe_topics([topic])
        tps = [TopicPartition(topic, p["partition_index"]) for p in desc["partitions"]]
        if not tps:
            raise ValueError(f"topic {topic!r} does not exist (or has no partitions)")
        got = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
    return {tp.partition: int(got[tp].offset) for tp in tps}


# ---------------------------------------------------------------------------- one trial

@dataclass
class GuaranteeTrial:
    """One crash trial of one guarantee's loop, its effects tallied (notebook 08).

    ``lost`` and ``duplicated`` count *effects* (what the guarantee promises about):
    ledger lines for at-most-once and at-least-once, SQLite rows for effectively-once,
    output records read with ``read_committed`` for exactly-once. ``processed_twice``
    counts records whose *processing* ran twice (the crash lab's ledger).
    ``aborted_copies`` (exactly-once): extra output records a ``read_uncommitted``
    reader sees, i.e. the aborted transaction's. ``dropped_replays``
    (effectively-once): records run 2 read again whose effect run 1 had already
    applied, so run 2 dropped them.
    """

    guarantee: str
    crash: str
    killed_at_record: int | None
    processed: int
    processed_twice: int
    lost: int
    duplicated: int
    aborted_copies: int | None
    dropped_replays: int | None
    seconds: float
    lost_ranges: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    duplicated_ranges: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    report: TrialReport | None = field(repr=False, default=None)
    effects: list[dict[str, Any]] = field(repr=False, default_factory=list)
    uncommitted: list[dict[str, Any]] = field(repr=False, default_factory=list)

    def row(self) -> dict[str, Any]:
        """The headline numbers, one table row."""
        return {"guarantee": self.guarantee, "crash": self.crash,
                "killed_at_record": self.killed_at_record, "processed": self.processed,
                "processed_twice": self.processed_twice, "lost": self.lost,
                "duplicated": self.duplicated, "aborted_copies": self.aborted_copies,
                "dropped_replays": self.dropped_replays, "seconds": self.seconds,
                "group_id": None if self.report is None else self.report.group_id}

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th style='text-align:left'>{k}</th><td>{v}</td></tr>"
                       for k, v in self.row().items())
        return f"<table>{rows}</table>"


def _check_guarantee(guarantee: str) -> str:
    if guarantee not in GUARANTEES:
        raise ValueError(f"unknown guarantee {guarantee!r}; choose one of {', '.join(GUARANTEES)}")
    return guarantee


def _seeded_topic(n_messages: int, partitions: int, bootstrap: str | None, prefix: str) -> str:
    from .topics import create_topic, seed_messages, unique_name

    topic = create_topic(unique_name(prefix), partitions, bootstrap=bootstrap)
    seed_messages(topic, n_messages, bootstrap=bootstrap, progress=False)
    create_topic(output_topic(topic), partitions, bootstrap=bootstrap)
    return topic


def run_guarantee_trial(guarantee: str, crash: CrashPlan, *, loop: Any = None, topic: str | None = None,
                        n_messages: int = 200, partitions: int = 3, max_poll_records: int = 20,
                        process_ms: float = 0.0, timeout_s: float = 60, group_id: str | None = None,
                        bootstrap: str | None = None, keep_effects: bool = False) -> GuaranteeTrial:
    """Kill ``guarantee``'s loop as ``crash`` says, restart it, tally its effects (notebook 08).

    Runs :func:`helpers.crashlab.run_trial` in mode ``"sync"`` (manual commits) with
    ``loop`` (default: the guarantee's own, :data:`GUARANTEE_LOOPS`) in *both* runs
    (``rerun_loop=True``), then counts lost and duplicated effects with
    :func:`helpers.crashlab.tally_ledger` (see :class:`GuaranteeTrial`). ``topic=None``
    creates and seeds a topic (and its ``-out`` topic); trials may share one, each with
    its own group. The SQLite file of an effectively-once trial is deleted afterwards
    unless ``keep_effects``.
    """
    from .broker import ensure_broker
    from .topics import create_topic, unique_name

    _check_guarantee(guarantee)
    bootstrap = bootstrap or ensure_broker().bootstrap
    if topic is None:
        topic = _seeded_topic(n_messages, partitions, bootstrap, f"nb08-{guarantee}")
    elif guarantee == "exactly-once":
        create_topic(output_topic(topic), partitions, bootstrap=bootstrap)  # exists already: fine
    group_id = group_id or unique_name(f"nb08-{guarantee}")
    ref = loop or GUARANTEE_LOOPS[guarantee]
    try:
        rep = run_trial(MODE, crash, loop=ref, rerun_loop=True, n_messages=n_messages,
                        partitions=partitions, topic=topic, group_id=group_id,
                        max_poll_records=max_poll_records, process_ms=process_ms,
                        timeout_s=timeout_s, bootstrap=bootstrap)
        return _tally(guarantee, rep, bootstrap)
    finally:
        if not keep_effects:
            _drop_effects(group_id)


_EXPECTED: dict[tuple[str, str], dict[int, tuple[int, int]]] = {}


def _expected(topic: str, bootstrap: str) -> dict[int, tuple[int, int]]:
    """partition -> (first, end) offsets of ``topic``, end exclusive (what tally_ledger expects).

    Asked once per input topic: the trials only read it, so its offsets do not change.
    """
    from .crashlab.trial import _topic_offsets
    from .topics import admin_client

    if (topic, bootstrap) not in _EXPECTED:
        with admin_client(bootstrap) as admin:
            _EXPECTED[(topic, bootstrap)] = _topic_offsets(admin, topic)
    return _EXPECTED[(topic, bootstrap)]


def _tally(guarantee: str, rep: TrialReport, bootstrap: str) -> GuaranteeTrial:
    expected = _expected(rep.topic, bootstrap)
    aborted = dropped = None
    uncommitted: list[dict[str, Any]] = []
    if guarantee in ("at-most-once", "at-least-once"):
        effects = list(rep.ledger)
    elif guarantee == "effectively-once":
        effects = [e for e in read_effects(rep.group_id) if e["topic"] == rep.topic]
        # Run 2 re-read everything from the committed offsets on; an effect run 1 applied there
        # (the crash lab names run 1's client "...-run1") that exists only once was dropped.
        before = {int(p): (v or 0) for p, v in rep.committed_before.items()}
        times = Counter((int(e["partition"]), int(e["offset"])) for e in effects)
        dropped = sum(1 for e in effects if str(e["by"]).endswith("run1")
                      and e["offset"] >= before.get(int(e["partition"]), 0)
                      and times[(int(e["partition"]), int(e["offset"]))] == 1)
    else:
        out = output_topic(rep.topic)
        high = _high_watermarks(out, bootstrap)
        effects = read_output(out, group=rep.group_id, bootstrap=bootstrap, high_watermarks=high)
        uncommitted = read_output(out, isolation_level="read_uncommitted", group=rep.group_id,
                                  bootstrap=bootstrap, high_watermarks=high)
        aborted = len(uncommitted) - len(effects)
    tally = tally_ledger(effects, expected)
    return GuaranteeTrial(
        guarantee=guarantee, crash=CrashPlan(**rep.crash).label(),
        killed_at_record=(rep.killed_at or {}).get("record"), processed=rep.processed,
        processed_twice=rep.duplicates, lost=tally["lost"], duplicated=tally["duplicates"],
        aborted_copies=aborted, dropped_replays=dropped,
        seconds=float(rep.durations.get("total_s", 0.0)), lost_ranges=tally["lost_ranges"],
        duplicated_ranges=tally["duplicate_ranges"], report=rep, effects=effects,
        uncommitted=uncommitted)


# ---------------------------------------------------------------------------- many trials

def _random_plans(kills: int, n_messages: int, seed: int | None) -> list[CrashPlan]:
    if isinstance(kills, bool) or not isinstance(kills, int) or kills < 1:
        raise ValueError(f"kills must be a whole number >= 1, not {kills!r}")
    rng = random.Random(seed)
    return [CrashPlan(after_records=rng.randint(1, n_messages - 1)) for _ in range(kills)]


def run_guarantee_trials(guarantees: Sequence[str] = GUARANTEES, kills: int | list[CrashPlan] = 5, *,
                         seed: int | None = None, n_messages: int = 200, partitions: int = 3,
                         max_poll_records: int = 20, process_ms: float = 0.0, workers: int = 6,
                         topic: str | None = None, bootstrap: str | None = None,
                         progress: bool = True, timeout_s: float = 60) -> Any:
    """Every guarantee under the same random SIGKILLs, one DataFrame row per trial (notebook 08).

    ``kills``: a number of random kill points (after a random record in
    ``1 .. n_messages - 1``; ``seed`` repeats them), or a list of plans. Every guarantee
    gets the same kill points, on one shared topic (created and seeded unless given),
    each trial in its own group. ``workers`` trials run at once (threads; each trial's
    consumers are separate processes). Columns: :meth:`GuaranteeTrial.row`.
    """
    import pandas as pd

    from .broker import ensure_broker

    for g in guarantees:
        _check_guarantee(g)
    plans = list(kills) if isinstance(kills, list) else _random_plans(kills, n_messages, seed)
    for p in plans:
        p.validate(n_messages)
    bootstrap = bootstrap or ensure_broker().bootstrap
    if topic is None:
        topic = _seeded_topic(n_messages, partitions, bootstrap, "nb08-trials")
    jobs = [(g, i, p) for i, p in enumerate(plans) for g in guarantees]

    def one(job: tuple[str, int, CrashPlan]) -> dict[str, Any]:
        g, i, plan = job
        t = run_guarantee_trial(g, plan, topic=topic, n_messages=n_messages, partitions=partitions,
                                max_poll_records=max_poll_records, process_ms=process_ms,
                                bootstrap=bootstrap, timeout_s=timeout_s)
        return {"trial": i, **t.row()}

    rows = _in_threads(one, jobs, workers, progress, "crash trials")
    order = {g: k for k, g in enumerate(guarantees)}
    rows.sort(key=lambda r: (order[r["guarantee"]], r["trial"]))
    return pd.DataFrame(rows)


def _in_threads(func: Callable[[Any], dict[str, Any]], jobs: Sequence[Any], workers: int,
                progress: bool, desc: str) -> list[dict[str, Any]]:
    from concurrent.futures import ThreadPoolExecutor, as_completed

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, not {workers!r}")
    bar: Any = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc=desc, unit="trial")
    rows = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(func, j) for j in jobs]
        try:
            for f in as_completed(futures):
                rows.append(f.result())
                if bar is not None:
                    bar.update(1)
        finally:
            for f in futures:
                f.cancel()
            if bar is not None:
                bar.close()
    return rows


def summarize_trials(trials: Any) -> Any:
    """Per guarantee (notebook 08): trials, lost and duplicated effects (sum, worst), processed twice."""
    import pandas as pd

    df = pd.DataFrame(trials)
    order = [g for g in GUARANTEES if g in set(df["guarantee"])]
    out = df.groupby("guarantee", sort=False).agg(
        trials=("trial", "count") if "trial" in df else ("crash", "count"),
        lost=("lost", "sum"), lost_max=("lost", "max"),
        duplicated=("duplicated", "sum"), duplicated_max=("duplicated", "max"),
        processed_twice=("processed_twice", "sum"),
        aborted_copies=("aborted_copies", lambda s: int(s.fillna(0).sum()) if s.notna().any() else None),
    )
    return out.reindex(order)


# ---------------------------------------------------------------------------- grading your loop

@dataclass
class EffectGrade:
    """Your effectively-once loop under random SIGKILLs (notebook 08): one row per kill."""

    loop: str
    trials: list[GuaranteeTrial] = field(repr=False)
    errors: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.trials) and not self.errors and all(
            t.lost == 0 and t.duplicated == 0 for t in self.trials)

    @property
    def problems(self) -> list[str]:
        out = list(self.errors)
        for t in self.trials:
            if t.duplicated:
                out.append(f"{t.crash}: {t.duplicated} effect(s) applied twice "
                           f"({_spans(t.duplicated_ranges)}): run 2 re-read records whose effect run 1 "
                           "had applied, and applied them again. Drop a record that "
                           "already_applied(db, record) finds.")
            if t.lost:
                out.append(f"{t.crash}: {t.lost} record(s) without an effect "
                           f"({_spans(t.lost_ranges)}). Commit "
                           "offsets only after the batch's effects are written.")
        return out

    def table(self) -> Any:
        import pandas as pd

        cols = ["crash", "killed_at_record", "processed_twice", "dropped_replays", "lost", "duplicated"]
        return pd.DataFrame([{c: t.row()[c] for c in cols} for t in self.trials])

    def summary(self) -> dict[str, Any]:
        """JSON-ready: passed, trials, lost, duplicated, problems."""
        return {"loop": self.loop, "passed": self.passed, "trials": len(self.trials),
                "lost": sum(t.lost for t in self.trials),
                "duplicated": sum(t.duplicated for t in self.trials), "problems": self.problems}

    def _repr_html_(self) -> str:
        import html

        verdict = ("<b style='color:green'>PASSED</b>" if self.passed
                   else "<b style='color:#b00'>NOT YET</b>")
        items = "".join(f"<li>{html.escape(p)}</li>" for p in self.problems)
        table = self.table().to_html(index=False) if self.trials else ""
        return (f"<p>{html.escape(self.loop)} graded as effectively-once: {verdict}</p>{table}"
                + (f"<p>What to fix:</p><ul>{items}</ul>" if items else ""))


def _spans(ranges: dict[int, list[tuple[int, int]]]) -> str:
    return "; ".join(f"partition {p} offsets " + ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in rs)
                     for p, rs in sorted(ranges.items()))


def grade_effectively_once(loop: Any, *, kills: int = 3, seed: int | None = None, n_messages: int = 200,
                           partitions: int = 3, max_poll_records: int = 20, workers: int = 3,
                           progress: bool = True, bootstrap: str | None = None) -> EffectGrade:
    """Grade a loop that claims effectively-once under random SIGKILLs (notebook 08).

    It passes with 0 lost and 0 duplicated effects in every trial.

    ``loop``: ``"module:function"`` (e.g. ``"my_idempotent_loop:consume_loop"`` after
    ``%%writefile my_idempotent_loop.py``) or a function in a module. Its effects are
    the rows it writes with :func:`apply_effect` to :func:`open_effects` of its group.
    A trial whose loop raised is graded as failed, with the error.
    """
    from .broker import ensure_broker
    from .crashlab import WorkerError
    from .runner import loop_ref

    ref = loop_ref(loop)
    plans = _random_plans(kills, n_messages, seed)
    bootstrap = bootstrap or ensure_broker().bootstrap
    topic = _seeded_topic(n_messages, partitions, bootstrap, "nb08-graded")
    errors: list[str] = []

    def one(plan: CrashPlan) -> dict[str, Any]:
        try:
            t = run_guarantee_trial("effectively-once", plan, loop=ref, topic=topic,
                                    n_messages=n_messages, partitions=partitions,
                                    max_poll_records=max_poll_records, bootstrap=bootstrap)
        except WorkerError as e:
            errors.append(f"{plan.label()}: the loop failed: {str(e).splitlines()[0]}")
            return {"trial": None}
        return {"trial": t}

    rows = _in_threads(one, plans, workers, progress, f"grading {ref}")
    trials = sorted((r["trial"] for r in rows if r["trial"] is not None), key=lambda t: t.crash)
    return EffectGrade(ref, trials, errors)


# ---------------------------------------------------------------------------- what it costs

def measure_costs(n_messages: int = 5000, *, partitions: int = 3, max_poll_records: int = 500,
                  bootstrap: str | None = None, progress: bool = True) -> Any:
    """Records per second of each guarantee's loop beside the no-commit floor: one run each (notebook 08).

    Seeds a topic with ``n_messages``, reads all of it once without timing (a warm-up:
    the first consumer of a process pays for connections and imports), then once per
    loop, in this process (:func:`helpers.modes.consume`, each in a fresh group, with
    the ``sync`` mode's settings; the floor is mode ``none``'s loop, which never
    commits). ``seconds`` is the loop's own time, group join and ``close()`` included
    (and ``init_transactions()`` for exactly-once). One run per loop on this machine:
    single figures, with no spread to judge the noise by.
    """
    import pandas as pd

    from .broker import ensure_broker
    from .modes import consume_all
    from .runner import load_loop

    bootstrap = bootstrap or ensure_broker().bootstrap
    topic = _seeded_topic(n_messages, partitions, bootstrap, "nb08-costs")
    runs: list[tuple[str, str, Any]] = [("warm-up", "none", None), ("no commit (floor)", "none", None)]
    runs += [(g, MODE, load_loop(GUARANTEE_LOOPS[g])) for g in GUARANTEES]
    it: Any = runs
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(runs, desc="timing each loop", unit="loop")
    rows = []
    try:
        for name, mode, loop in it:
            res, retries = consume_all(mode, topic, n_messages, group_prefix="nb08-cost", loop=loop,
                                       idle_ms=10_000, bootstrap=bootstrap,
                                       max_poll_records=max_poll_records)
            if name != "warm-up":
                rows.append({"guarantee": name, "records": res.processed,
                             "seconds": round(res.seconds, 3),
                             "records_per_s": round(res.records_per_second), "retries": retries})
    finally:
        for path in EFFECTS_DIR.glob("nb08-cost-*"):
            path.unlink(missing_ok=True)
    df = pd.DataFrame(rows)
    floor = float(df.loc[0, "records_per_s"]) or 1.0
    df["vs_floor"] = (df["records_per_s"] / floor).round(2)
    return df
