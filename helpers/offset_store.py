"""Offsets you choose: an offset store of your own, in SQLite (notebook 11).

Kafka's committed offsets live in one system and your results in another, so a crash
between writing a result and committing its offset repeats work. Keep the offset *with*
the result instead: one database transaction writes both, or neither, and the consumer
starts each partition where the database says (it seeks there when the partition is
assigned), never where Kafka's commits say. A crash then leaves every record in the
database exactly once, whatever else it repeats.

* :func:`store_path`: where a group's database lives; both runs of a crash trial derive
  it from the group id (under ``tempfile.gettempdir()``, or ``$OFFSET_STORE_DIR``);
* :func:`open_store`, :func:`save_with_offset`, :func:`save_result`,
  :func:`stored_offsets`, :func:`read_results`: the plain ``sqlite3`` code;
* :class:`SeekToStoredOffsets`: the ``ConsumerRebalanceListener`` that seeks on assignment;
* :func:`consume_loop`: the loop (loop contract of :mod:`helpers.runner`, mode ``none``:
  no Kafka commits at all); :func:`kafka_commit_loop`: the same work with its offsets
  committed to Kafka after each batch instead (mode ``sync``), for comparison;
* :func:`store_trial`, :func:`store_trials`, :func:`grade_store_loop`: crash-lab trials
  tallied from the database rows (the crash lab's ledger counts processings; the rows
  are the effect that counts).
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import ConsumerRebalanceListener, TopicPartition

__all__ = [
    "ENV_DIR",
    "SCHEMA",
    "SeekToStoredOffsets",
    "StoreGrade",
    "consume_loop",
    "grade_store_loop",
    "kafka_commit_loop",
    "open_store",
    "read_results",
    "remove_store",
    "result_of",
    "save_result",
    "save_with_offset",
    "store_path",
    "store_trial",
    "store_trials",
    "stored_offsets",
    "topic_offsets",
]

#: An environment variable naming the folder for the databases (default: the temp dir).
ENV_DIR = "OFFSET_STORE_DIR"

#: Results, one row per processing (no unique key: a duplicate must stay visible), and
#: the next offset to read per partition.
SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    result TEXT NOT NULL, pid INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS offsets (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""

Process = Callable[[Any], None]
Running = Callable[[], bool]

# ---------------------------------------------------------------------------- the database


def store_path(group_id: str) -> Path:
    """The SQLite file of ``group_id``'s offset store (notebook 11).

    Derived from the group id alone, so a restarted consumer (another process) finds
    the same file: ``$OFFSET_STORE_DIR`` or the temp dir, then ``offset-store/<group>.sqlite3``.
    """
    if not group_id or "/" in group_id or group_id.startswith("."):
        raise ValueError(f"group_id {group_id!r} cannot name a database file")
    base = Path(os.environ.get(ENV_DIR) or tempfile.gettempdir()) / "offset-store"
    return base / f"{group_id}.sqlite3"


def open_store(path: str | Path) -> sqlite3.Connection:
    """Open (and create) an offset store: WAL journal, the two tables (notebook 11).

    ``synchronous=NORMAL`` with WAL survives the process being killed (what the crash
    lab does), though not a power cut; use ``FULL`` for that.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=10)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    return db


def result_of(record: Any) -> str:
    """The "work" of the examples: what a record's processing produces (notebook 11)."""
    return json.dumps({"key": record.key, "value": record.value}, default=str, sort_keys=True)


def save_with_offset(db: sqlite3.Connection, record: Any, result: str) -> None:
    """Write ``record``'s result and its partition's next offset in ONE transaction (notebook 11).

    ``with db:`` commits both statements together, or rolls both back: there is no
    moment at which the result is stored and the offset is not, or the other way round.
    """
    with db:
        db.execute("INSERT INTO results (topic, partition, offset, result, pid) VALUES (?, ?, ?, ?, ?)",
                   (record.topic, record.partition, record.offset, result, os.getpid()))
        db.execute("INSERT INTO offsets (topic, partition, next_offset) VALUES (?, ?, ?) "
                   "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                   (record.topic, record.partition, record.offset + 1))  # the NEXT record to read


def save_result(db: sqlite3.Connection, record: Any, result: str) -> None:
    """Write ``record``'s result alone, in its own transaction (notebook 11's Kafka-commit loop)."""
    with db:
        db.execute("INSERT INTO results (topic, partition, offset, result, pid) VALUES (?, ?, ?, ?, ?)",
                   (record.topic, record.partition, record.offset, result, os.getpid()))


def stored_offsets(path: str | Path, topic: str | None = None) -> dict[TopicPartition, int]:
    """The next offset to read per partition, as the store holds it (notebook 11).

    Opens its own connection: a rebalance listener runs on kafka-python's I/O thread, and
    a ``sqlite3`` connection may only be used by the thread that opened it.
    """
    if not Path(path).exists():
        return {}
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
        rows = db.execute("SELECT topic, partition, next_offset FROM offsets").fetchall()
    return {TopicPartition(t, int(p)): int(o) for t, p, o in rows if topic is None or t == topic}


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """Every result row, in the order written (notebook 11); ``[]`` if there is no store."""
    if not Path(path).exists():
        return []
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
        rows = db.execute("SELECT topic, partition, offset, result, pid FROM results ORDER BY rowid")
        return [{"topic": t, "partition": int(p), "offset": int(o), "result": r, "pid": int(pid)}
                for t, p, o, r, pid in rows.fetchall()]


def remove_store(path: str | Path) -> None:
    """Delete a store and its WAL files (notebook 11)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# ---------------------------------------------------------------------------- the consumer side


class SeekToStoredOffsets(ConsumerRebalanceListener):
    """On assignment, seek each partition to the offset the store holds (notebook 11).

    A partition the store has never seen starts at its beginning. ``seek()`` and
    ``seek_to_beginning()`` only set the position; the next ``poll()`` fetches from it.
    On revocation there is nothing to save: every offset was stored with its result.
    """

    def __init__(self, consumer: Any, path: str | Path) -> None:
        self.consumer, self.path = consumer, Path(path)
        self.seeks: list[dict[str, Any]] = []  # what each assignment did, for the curious

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        stored = stored_offsets(self.path)
        for tp in sorted(assigned):
            if tp in stored:
                self.consumer.seek(tp, stored[tp])
            else:
                self.consumer.seek_to_beginning(tp)
            self.seeks.append({"partition": tp.partition, "to": stored.get(tp, "beginning")})

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        pass


def consume_loop(consumer: Any, process: Process, running: Running) -> None:
    """Results and offsets in one SQLite transaction per record; no Kafka commits (notebook 11).

    Runs with ``enable_auto_commit=False`` (mode ``none``). The database is found from the
    group id, so a restarted process continues where the database says.
    """
    path = store_path(consumer.config["group_id"])
    db = open_store(path)
    consumer.subscribe(sorted(consumer.subscription()), listener=SeekToStoredOffsets(consumer, path))
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    process(record)
                    save_with_offset(db, record, result_of(record))
    finally:
        db.close()
        consumer.close()


def kafka_commit_loop(consumer: Any, process: Process, running: Running) -> None:
    """The same work, each result in its own transaction, offsets committed to Kafka after
    each batch (mode ``sync``; notebook 11). A crash between the two repeats rows."""
    db = open_store(store_path(consumer.config["group_id"]))
    try:
        while running():
            batch = consumer.poll(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    process(record)
                    save_result(db, record, result_of(record))
            if batch:
                consumer.commit()
    finally:
        db.close()
        consumer.close()


# ---------------------------------------------------------------- crash trials, tallied from the database

#: How each loop is run in the crash lab: name -> (claimed mode, loop reference).
STORES: dict[str, tuple[str, str]] = {
    "offsets in SQLite": ("none", "helpers.offset_store:consume_loop"),
    "offsets committed to Kafka": ("sync", "helpers.offset_store:kafka_commit_loop"),
}


def topic_offsets(topic: str, bootstrap: str | None = None) -> dict[int, tuple[int, int]]:
    """partition -> (first offset, end offset) of ``topic``, from the broker (notebook 11)."""
    from kafka.protocol.consumer.offsets import OffsetSpec

    from .topics import admin_client

    with admin_client(bootstrap) as admin:
        (desc,) = admin.describe_topics([topic])
        tps = [TopicPartition(topic, p["partition_index"]) for p in desc["partitions"]]
        first = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in tps})
        end = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
    return {tp.partition: (int(first[tp].offset), int(end[tp].offset)) for tp in sorted(tps)}


@contextlib.contextmanager
def _store_for(group_id: str, keep: bool) -> Iterator[Path]:
    path = store_path(group_id)
    remove_store(path)
    try:
        yield path
    finally:
        if not keep:
            remove_store(path)


def store_trial(loop: Any, crash: Any, *, mode: str = "none", topic: str | None = None,
                n_messages: int = 200, partitions: int = 3, max_poll_records: int = 20,
                process_ms: float = 0.0, timeout_s: float = 60, group_id: str | None = None,
                store: str | None = None, keep_db: bool = False, **kw: Any) -> dict[str, Any]:
    """One crash trial of a store loop, tallied from its database (notebook 11).

    Runs :func:`helpers.crashlab.run_trial` with ``rerun_loop=True`` (run 2 runs ``loop``
    again), then counts the database's result rows with
    :func:`helpers.crashlab.tally_ledger`. Returns one row: where run 1 died, the
    ledger's duplicates (records *processed* twice) and the database's (rows *stored*
    twice) and losses, and the offsets the store and Kafka held at the end.
    """
    from .crashlab import run_trial, tally_ledger
    from .topics import unique_name

    group_id = group_id or unique_name("nb11-store")
    with _store_for(group_id, keep_db) as path:
        report = run_trial(mode, crash, loop=loop, rerun_loop=True, topic=topic,
                           group_id=group_id, n_messages=n_messages, partitions=partitions,
                           max_poll_records=max_poll_records, process_ms=process_ms,
                           timeout_s=timeout_s, **kw)
        rows = read_results(path)
        stored = stored_offsets(path, report.topic)
    tally = tally_ledger(rows, topic_offsets(report.topic, kw.get("bootstrap")))
    return {
        "store": store or str(loop), "crash": report.summary()["crash"],
        "killed_at_record": (report.killed_at or {}).get("record"),
        "ledger_duplicates": report.duplicates, "ledger_lost": report.lost,
        "db_rows": len(rows), "db_duplicates": tally["duplicates"], "db_lost": tally["lost"],
        "db_duplicate_ranges": tally["duplicate_ranges"], "db_lost_ranges": tally["lost_ranges"],
        "stored_offsets": {tp.partition: o for tp, o in sorted(stored.items())},
        "kafka_committed": report.committed_after, "seconds": report.durations.get("total_s"),
        "topic": report.topic, "group_id": group_id,
    }


def _random_kills(n: int, n_messages: int, seed: int | None) -> list[Any]:
    """``n`` SIGKILLs after distinct random records in ``1 .. n_messages-1`` (repeatable by ``seed``)."""
    from .crashlab import CrashPlan

    points = random.Random(seed).sample(range(1, n_messages), min(n, n_messages - 1))
    return [CrashPlan(after_records=k) for k in points]


def _run_all(one: Callable[[Any], dict[str, Any]], plans: list[Any], workers: int,
             desc: str | None) -> list[dict[str, Any]]:
    """``one(plan)`` for each plan, ``workers`` at a time, rows in plan order; a tqdm bar if ``desc``."""
    from concurrent.futures import ThreadPoolExecutor

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, not {workers!r}")
    bar: Any = None
    if desc is not None:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(plans), desc=desc, unit="trial")

    def counted(plan: Any) -> dict[str, Any]:
        row = one(plan)
        if bar is not None:
            bar.update()
        return row

    try:
        if workers == 1:  # in this thread: an interrupt stops the trial (and kills its workers)
            return [counted(plan) for plan in plans]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(counted, plans))
    finally:
        if bar is not None:
            bar.close()


def store_trials(store: str, crashes: list[Any] | int, *, seed: int | None = None,
                 n_messages: int = 200, progress: bool = True, workers: int = 1, **kw: Any) -> Any:
    """Crash trials of one of :data:`STORES` (or ``loop=``/``mode=`` of yours), one row each (notebook 11).

    ``crashes``: a list of ``CrashPlan`` or a number of SIGKILLs after a random record
    (``seed`` repeats them). All trials share one topic, each with its own group and
    database, so ``workers`` trials can run at once (threads, each waiting on its own
    child processes). Returns a DataFrame (columns of :func:`store_trial`), in plan order.
    """
    import pandas as pd

    from .topics import create_topic, seed_messages, unique_name

    mode, loop = kw.pop("mode", None), kw.pop("loop", None)
    if loop is None:
        if store not in STORES:
            raise ValueError(f"unknown store {store!r}: choose one of {list(STORES)} or pass loop= and mode=")
        mode, loop = STORES[store]
    if isinstance(crashes, bool) or not isinstance(crashes, (int, list)) or not crashes:
        raise ValueError("crashes must be a non-empty list of CrashPlan or a number >= 1 of random kills")
    plans = crashes if isinstance(crashes, list) else _random_kills(crashes, n_messages, seed)
    if kw.get("topic") is None:
        kw["topic"] = create_topic(unique_name("nb11-store"), kw.get("partitions", 3),
                                   bootstrap=kw.get("bootstrap"))
        seed_messages(kw["topic"], n_messages, bootstrap=kw.get("bootstrap"), progress=False)

    def one(plan: Any) -> dict[str, Any]:
        return store_trial(loop, plan, mode=mode or "none", store=store, n_messages=n_messages, **kw)

    rows = _run_all(one, plans, workers, f"crash trials ({store})" if progress else None)
    return pd.DataFrame(rows)


@dataclass
class StoreGrade:
    """A store loop's grade from :func:`grade_store_loop` (notebook 11)."""

    loop: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(not r.get("problem") and r["db_duplicates"] == 0
                                       and r["db_lost"] == 0 for r in self.rows)

    @property
    def problems(self) -> list[str]:
        out = []
        for r in self.rows:
            if r.get("problem"):
                out.append(f"{r['crash']}: {r['problem']}")
                continue
            if r["db_duplicates"]:
                out.append(f"{r['crash']}: {r['db_duplicates']} result row(s) stored twice "
                           f"({_spans(r['db_duplicate_ranges'])}): the restart did not start where "
                           "the database's offsets say. Store the next offset in the same transaction "
                           "as the result, and seek to it when the partition is assigned.")
            if r["db_lost"]:
                out.append(f"{r['crash']}: {r['db_lost']} record(s) missing from the database "
                           f"({_spans(r['db_lost_ranges'])}): a stored offset ran ahead of the results.")
        return out

    def table(self) -> Any:
        import pandas as pd

        cols = ["crash", "ledger_duplicates", "db_duplicates", "db_lost", "stored_offsets"]
        return pd.DataFrame([{c: r.get(c) for c in cols} for r in self.rows])

    def summary(self) -> dict[str, Any]:
        return {"loop": self.loop, "passed": self.passed, "trials": len(self.rows),
                "db_duplicates": sum(r.get("db_duplicates", 0) for r in self.rows),
                "db_lost": sum(r.get("db_lost", 0) for r in self.rows), "problems": self.problems}

    def _repr_html_(self) -> str:
        import html

        verdict = ("<b style='color:green'>PASSED</b>: every record in the database exactly once"
                   if self.passed else "<b style='color:#b00'>NOT YET</b>")
        items = "".join(f"<li>{html.escape(p)}</li>" for p in self.problems)
        return (f"<p>{html.escape(self.loop)}: {verdict}</p>{self.table().to_html(index=False)}"
                + (f"<p>What to fix:</p><ul>{items}</ul>" if items else ""))


def _spans(ranges: dict[Any, list[tuple[int, int]]]) -> str:
    return "; ".join(f"partition {p} offsets " + ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in rs)
                     for p, rs in sorted(ranges.items(), key=lambda kv: int(kv[0])))


def grade_store_loop(loop: Any, *, kills: int = 3, seed: int | None = None, mode: str = "none",
                     n_messages: int = 200, partitions: int = 3, max_poll_records: int = 20,
                     progress: bool = True, workers: int = 1, **kw: Any) -> StoreGrade:
    """Grade an offset-store loop: random SIGKILLs, then the database must hold every record
    exactly once (notebook 11). ``loop``: ``"module:function"`` (e.g. a file written with
    ``%%writefile``); ``workers`` trials run at once. A trial whose loop failed is graded as
    failed, with the error."""
    from .crashlab import WorkerError
    from .runner import loop_ref
    from .topics import create_topic, seed_messages, unique_name

    ref = loop_ref(loop)
    if isinstance(kills, bool) or not isinstance(kills, int) or kills < 1:
        raise ValueError(f"kills must be a whole number >= 1, not {kills!r}")
    plans = _random_kills(kills, n_messages, seed)
    topic = kw.pop("topic", None)
    if topic is None:
        topic = create_topic(unique_name("nb11-graded"), partitions, bootstrap=kw.get("bootstrap"))
        seed_messages(topic, n_messages, bootstrap=kw.get("bootstrap"), progress=False)

    def one(plan: Any) -> dict[str, Any]:
        try:
            return store_trial(ref, plan, mode=mode, topic=topic, n_messages=n_messages,
                               partitions=partitions, max_poll_records=max_poll_records, **kw)
        except WorkerError as e:
            return {"crash": plan.label(), "db_duplicates": 0, "db_lost": 0,
                    "problem": f"the loop failed: {str(e).splitlines()[0]}"}

    return StoreGrade(ref, _run_all(one, plans, workers, f"grading {ref}" if progress else None))
