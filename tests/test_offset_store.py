"""helpers.offset_store (notebook 11): the SQLite offset store, pure parts without a broker, and
the headline test: 20 random SIGKILLs leave every record in the database exactly once, while
the same loop committing to Kafka stores rows twice.

Run the table with ``pytest tests/test_offset_store.py -s``.
"""
from __future__ import annotations

import random
import sqlite3
from types import SimpleNamespace

import pytest
from kafka import TopicPartition

from helpers import offset_store as store
from helpers.crashlab import CrashPlan

N = 200          # records per trial: small, so a trial takes about two seconds
BATCH = 20       # max_poll_records: ten batches or more per trial
KILLS = 20       # random SIGKILLs of the SQLite loop (the issue asks for at least 20)
KAFKA_KILLS = 4  # the same kill points, fewer, for the loop that commits to Kafka
TIME_KILLS = 4   # and SIGKILLs from the parent at a random moment: inside a transaction too
WORKERS = 4      # trials at once (each has its own group and database)


def _record(partition: int, offset: int, topic: str = "t") -> SimpleNamespace:
    return SimpleNamespace(topic=topic, partition=partition, offset=offset, key=f"k{offset}",
                           value={"n": offset})


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(store.ENV_DIR, str(tmp_path))
    return tmp_path


# ----------------------------------------------------------------- the database (no broker)

def test_store_path_is_derived_from_the_group_alone(store_dir):
    assert store.store_path("g-1") == store_dir / "offset-store" / "g-1.sqlite3"
    assert store.store_path("g-1") == store.store_path("g-1")
    for bad in ("", "../x", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="cannot name"):
            store.store_path(bad)


def test_result_and_next_offset_are_written_together(store_dir):
    path = store.store_path("g")
    db = store.open_store(path)
    for offset in range(3):
        store.save_with_offset(db, _record(0, offset), store.result_of(_record(0, offset)))
    store.save_with_offset(db, _record(1, 7), "r")
    db.close()
    assert store.stored_offsets(path) == {TopicPartition("t", 0): 3, TopicPartition("t", 1): 8}
    assert store.stored_offsets(path, "other") == {}
    rows = store.read_results(path)
    assert [(r["partition"], r["offset"]) for r in rows] == [(0, 0), (0, 1), (0, 2), (1, 7)]


def test_a_failed_transaction_leaves_neither_the_result_nor_the_offset(store_dir):
    path = store.store_path("g")
    db = store.open_store(path)
    store.save_with_offset(db, _record(0, 0), "first")

    class Boom(SimpleNamespace):
        @property
        def offset(self):  # the result row is inserted, then reading the offset for the second row fails
            self.reads = getattr(self, "reads", 0) + 1
            if self.reads > 1:
                raise RuntimeError("killed between the two statements")
            return 1

    with pytest.raises(RuntimeError):
        store.save_with_offset(db, Boom(topic="t", partition=0, key="k", value=1), "second")
    db.close()
    assert [r["offset"] for r in store.read_results(path)] == [0]
    assert store.stored_offsets(path) == {TopicPartition("t", 0): 1}


def test_save_result_alone_and_remove_store(store_dir):
    path = store.store_path("g")
    db = store.open_store(path)
    store.save_result(db, _record(2, 5), "r")
    db.close()
    assert store.stored_offsets(path) == {}
    assert len(store.read_results(path)) == 1
    store.remove_store(path)
    assert not path.exists() and store.read_results(path) == [] and store.stored_offsets(path) == {}


def test_duplicates_stay_visible_in_the_results_table(store_dir):
    path = store.store_path("g")
    db = store.open_store(path)
    store.save_result(db, _record(0, 0), "r")
    store.save_result(db, _record(0, 0), "r")  # no unique key hides a second processing
    db.close()
    assert len(store.read_results(path)) == 2
    with sqlite3.connect(path) as db2:
        assert db2.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_listener_seeks_to_stored_offsets_and_to_the_beginning_otherwise(store_dir):
    path = store.store_path("g")
    db = store.open_store(path)
    store.save_with_offset(db, _record(0, 41), "r")
    db.close()
    calls = []
    consumer = SimpleNamespace(seek=lambda tp, o: calls.append(("seek", tp.partition, o)),
                               seek_to_beginning=lambda tp: calls.append(("beginning", tp.partition)))
    listener = store.SeekToStoredOffsets(consumer, path)
    listener.on_partitions_assigned({TopicPartition("t", 1), TopicPartition("t", 0)})
    listener.on_partitions_revoked({TopicPartition("t", 0)})
    assert calls == [("seek", 0, 42), ("beginning", 1)]
    assert listener.seeks == [{"partition": 0, "to": 42}, {"partition": 1, "to": "beginning"}]


def test_grade_words_name_offsets_and_the_fix():
    ok = {"crash": "kill@5", "db_duplicates": 0, "db_lost": 0, "db_duplicate_ranges": {},
          "db_lost_ranges": {}}
    bad = {"crash": "kill@9", "db_duplicates": 3, "db_lost": 0,
           "db_duplicate_ranges": {0: [(4, 6)]}, "db_lost_ranges": {}}
    assert store.StoreGrade("m:f", [ok]).passed
    grade = store.StoreGrade("m:f", [ok, bad])
    assert not grade.passed
    (problem,) = grade.problems
    assert "kill@9" in problem and "partition 0 offsets 4-6" in problem and "same transaction" in problem
    assert grade.summary()["db_duplicates"] == 3 and "NOT YET" in grade._repr_html_()
    failed = store.StoreGrade("m:f", [{"crash": "kill@1", "db_duplicates": 0, "db_lost": 0,
                                       "problem": "the loop failed: boom"}])
    assert not failed.passed and failed.problems == ["kill@1: the loop failed: boom"]
    assert not store.StoreGrade("m:f", []).passed


def test_plot_and_lab_work_headlessly():
    from matplotlib.figure import Figure

    from helpers.plots import plot_store_trials
    from helpers.widgets import offset_store_lab

    rows = [{"store": s, "crash": f"kill@{k}", "ledger_duplicates": 1, "db_duplicates": d, "db_lost": 0}
            for s, d in (("offsets in SQLite", 0), ("offsets committed to Kafka", 7)) for k in (3, 9)]
    assert isinstance(plot_store_trials(rows), Figure)
    seen = []

    def fake_trial(store_name, crash_after, **kw):
        seen.append((store_name, crash_after, kw["n_messages"]))
        return {**rows[0], "store": store_name, "killed_at_record": crash_after, "db_rows": 50}

    lab = offset_store_lab(crash_after=20, n_messages=50, trial=fake_trial)
    lab.store.value = "offsets committed to Kafka"
    lab.crash_point.value = 33
    lab.run_button.click()
    lab.wait(30)  # a click runs in a background thread
    assert seen == [("offsets committed to Kafka", 33, 50)]
    assert lab.runs == 1 and lab.last_error is None and "stored twice" in lab.report.value
    assert isinstance(lab.last_figure, Figure)

    def broken(*_a, **_k):
        raise RuntimeError("no broker")

    lab2 = offset_store_lab(trial=broken)
    assert lab2.run() is None and "no broker" in lab2.status.value
    with pytest.raises(ValueError, match="crash_after"):
        offset_store_lab(crash_after=0)


def test_store_trials_rejects_nonsense():
    with pytest.raises(ValueError, match="unknown store"):
        store.store_trials("redis", 1)
    with pytest.raises(ValueError, match="crashes"):
        store.store_trials("offsets in SQLite", 0)


# ----------------------------------------------------------------- on the broker

@pytest.mark.broker
def test_sqlite_store_keeps_every_record_exactly_once_under_random_sigkills(kafka, capsys):
    """The issue's headline: >= 20 random SIGKILLs, the database holds every record once;
    the same loop committing to Kafka after each batch stores rows twice (and loses none)."""
    from helpers.topics import create_topic, seed_messages, unique_name

    topic = create_topic(unique_name("test-store"), 3)
    seed_messages(topic, N, progress=False)
    rng = random.Random(2024)
    plans = [CrashPlan(after_records=k) for k in rng.sample(range(1, N), KILLS)]
    kw = dict(topic=topic, n_messages=N, max_poll_records=BATCH, workers=WORKERS, progress=False)
    sqlite = store.store_trials("offsets in SQLite", plans, **kw)
    # run 1 takes >= N ms here (process_ms=1), so each kill lands while it still works
    timed = store.store_trials("offsets in SQLite", [CrashPlan(after_ms=rng.randint(5, 150))
                                                     for _ in range(TIME_KILLS)], process_ms=1.0, **kw)
    kafka_commits = store.store_trials("offsets committed to Kafka", plans[:KAFKA_KILLS], **kw)
    cols = ["crash", "ledger_duplicates", "db_rows", "db_duplicates", "db_lost", "seconds"]
    with capsys.disabled():
        print("\noffsets in SQLite:\n", sqlite[cols].to_string(),
              "\noffsets in SQLite, killed by the parent at a random moment:\n", timed[cols].to_string(),
              "\noffsets committed to Kafka:\n", kafka_commits[cols].to_string())

    assert len(sqlite) == KILLS and sqlite["killed_at_record"].notna().all()
    assert (sqlite["db_duplicates"] == 0).all(), sqlite[cols]
    assert (sqlite["db_lost"] == 0).all(), sqlite[cols]
    assert (sqlite["db_rows"] == N).all()
    assert timed["killed_at_record"].notna().all()
    assert (timed["db_duplicates"] == 0).all() and (timed["db_lost"] == 0).all(), timed[cols]
    # the work of the record being processed at the kill ran twice; its row was stored once
    assert (sqlite["ledger_duplicates"] >= 1).all()
    assert all(all(v is None for v in c.values()) for c in sqlite["kafka_committed"])  # no Kafka commits
    assert all(sum(o.values()) == N for o in sqlite["stored_offsets"])  # next offsets: each partition's end

    assert (kafka_commits["db_lost"] == 0).all()
    assert kafka_commits["db_duplicates"].sum() > 0
    assert (kafka_commits["db_rows"] == N + kafka_commits["db_duplicates"]).all()
