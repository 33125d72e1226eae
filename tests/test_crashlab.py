"""The crash lab (helpers.crashlab, notebook 02): report arithmetic, argument checks, and
real crashes against the broker, including the headline test: over random SIGKILL
points per at-least-once commit mode, nothing is lost and the duplicates stay within
what the mode predicts. The suite kills 6 times per mode; ``make sweeps`` runs the same
test with 20 (``COURSE_SWEEP_KILLS=20``) and prints its table.
"""
from __future__ import annotations

import json
import os
import statistics
import time

import pytest

from helpers import crashlab as cl
from helpers.crashlab import CrashPlan, TrialReport
from helpers.crashlab import trial as parent

N = 300          # messages per topic: small, so a trial takes about a second
BATCH = 50       # max_poll_records: several batches per run
KW = dict(n_messages=N, partitions=3, max_poll_records=BATCH, timeout_s=60)
AT_LEAST_ONCE = ("auto", "sync", "sync_per_record", "async", "combined")
AUTO = dict(auto_commit_interval_ms=100, process_ms=1.0)  # several auto commits per run


# ----------------------------------------------------------------- arithmetic (no broker)

def _led(*entries: tuple[int, int, int]) -> list[dict]:
    return [{"run": r, "partition": p, "offset": o, "t": i / 10} for i, (r, p, o) in enumerate(entries)]


def test_tally_counts_duplicates_losses_and_ranges():
    # partition 0 holds offsets 0..5, partition 1 holds 10..13 (log start 10)
    expected = {0: (0, 6), 1: (10, 14)}
    ledger = _led((1, 0, 0), (1, 0, 1), (1, 0, 2), (1, 1, 10),     # run 1 dies here
                  (2, 0, 1), (2, 0, 2), (2, 0, 4), (2, 0, 5),       # offset 3 never processed
                  (2, 1, 10), (2, 1, 11))                           # 12, 13 never processed
    t = cl.tally_ledger(ledger, expected)
    assert t["processed"] == 10
    assert t["duplicates"] == 3
    assert t["duplicate_ranges"] == {0: [(1, 2)], 1: [(10, 10)]}
    assert t["lost"] == 3
    assert t["lost_ranges"] == {0: [(3, 3)], 1: [(12, 13)]}


def test_tally_clean_run_and_triple_processing():
    expected = {0: (0, 3)}
    assert cl.tally_ledger(_led((1, 0, 0), (1, 0, 1), (1, 0, 2)), expected)["duplicates"] == 0
    t = cl.tally_ledger(_led((1, 0, 0), (2, 0, 0), (3, 0, 0), (1, 0, 1), (1, 0, 2)), expected)
    assert (t["duplicates"], t["duplicate_ranges"], t["lost"]) == (2, {0: [(0, 0)]}, 0)
    empty = cl.tally_ledger([], {0: (0, 2), 1: (0, 0)})
    assert (empty["lost"], empty["lost_ranges"]) == (2, {0: [(0, 1)]})


def test_tally_rejects_offsets_the_topic_does_not_hold():
    with pytest.raises(ValueError, match="outside"):
        cl.tally_ledger(_led((1, 0, 7)), {0: (0, 3)})


def _report(mode: str, killed_at: dict | None, ledger: list[dict], **settings) -> TrialReport:
    return TrialReport(mode=mode, crash={"after_records": 5}, n_messages=10, topic="t",
                       group_id="g", processed=len(ledger), duplicates=0, duplicate_ranges={},
                       lost=0, lost_ranges={}, committed_before={0: 3}, committed_after={0: 10},
                       killed_at=killed_at, durations={"total_s": 1.0}, ledger=ledger, commits=[],
                       settings={"max_poll_records": 4, "handoff": False, **settings})


def test_predictions_per_mode_and_json_ready_report():
    k = {"record": 5, "t": 0.5, "by": "worker", "in_batch": 2, "prev_batch_size": 4,
         "in_last_interval": 3}
    led = _led(*[(1, 0, i) for i in range(5)])
    assert cl.predicted_duplicates(_report("sync", k, led)) == (2, 2)
    assert cl.predicted_duplicates(_report("sync_per_record", k, led)) == (1, 1)
    assert cl.predicted_duplicates(_report("sync_per_record", {**k, "by": "parent"}, led)) == (0, 1)
    assert cl.predicted_duplicates(_report("async", k, led)) == (2, 6)
    unacked = _report("async", k, led)  # nothing acknowledged: all 5 may come back
    assert cl.predicted_duplicates(unacked) == (2, 6)
    unacked.commits = [{"run": 1, "outcome": "success", "offsets": {"t:0": 4}}]
    assert cl.predicted_duplicates(unacked) == (2, 6)
    unacked.killed_at = {**k, "record": 12}
    assert cl.predicted_duplicates(unacked) == (2, 8)
    assert cl.predicted_duplicates(_report("auto", k, led)) == (0, 3 + 4)
    assert cl.predicted_duplicates(_report("none", k, led)) == (5, 5)
    assert cl.predicted_duplicates(_report("auto", k, led, handoff=True)) is None
    rep = _report("sync", k, led)
    rep.duplicate_ranges = {0: [(3, 4)]}
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["duplicate_ranges"] == {"0": [[3, 4]]} and d["killed_at"]["in_batch"] == 2
    s = rep.summary()
    assert (s["crash"], s["run1_processed"], s["killed_at_record"]) == ("kill@5", 5, 5)


@pytest.mark.parametrize("mode, crash, extra, message", [
    ("bogus", CrashPlan(after_records=1), {}, "unknown commit mode"),
    ("sync", CrashPlan(after_records=5, after_ms=5), {}, "not both"),
    ("sync", CrashPlan(after_records=-1), {}, ">= 1"),
    ("sync", CrashPlan(after_ms=-5), {}, ">= 0"),
    ("sync", CrashPlan(), {}, "needs a moment"),
    ("sync", CrashPlan(after_records=301), {}, "only 300 messages"),
    ("sync", CrashPlan(mid_batch=True, after_ms=10), {}, "mid_batch"),
    ("sync", CrashPlan(graceful=True, mid_batch=True), {}, "graceful"),
    ("auto", CrashPlan(mid_batch=True), {"handoff": True}, "handoff"),
    ("sync", CrashPlan(after_records=1), {"process_ms": -1}, "process_ms"),
    ("sync", CrashPlan(after_records=1), {"max_poll_records": 0}, "max_poll_records"),
    ("sync", {"after_records": 1}, {}, "must be a CrashPlan"),
])
def test_nonsense_is_a_value_error_before_anything_runs(mode, crash, extra, message):
    with pytest.raises(ValueError, match=message):
        cl.run_trial(mode, crash, **{**KW, **extra}, bootstrap="127.0.0.1:1")
    with pytest.raises(ValueError, match=message):  # run_trials checks every plan up front
        cl.run_trials(mode, [crash], progress=False, **{**KW, **extra}, bootstrap="127.0.0.1:1")


def test_run_trials_rejects_bad_counts():
    with pytest.raises(ValueError, match=">= 1"):
        cl.run_trials("sync", 0, **KW)
    with pytest.raises(ValueError, match="empty"):
        cl.run_trials("sync", [], **KW)
    with pytest.raises(ValueError, match="intervals_ms"):
        cl.sweep_auto_commit([])


def _alive_with(text: str) -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter(["cmdline"])
            if text in " ".join(p.info["cmdline"] or [])]


def test_failing_worker_reports_its_stderr(tmp_path):
    cfg = {"run": 1, "ledger": str(tmp_path / "ledger.jsonl")}  # no mode, no topic: KeyError
    with pytest.raises(cl.WorkerError, match="KeyError"):
        parent._run_worker(cfg, tmp_path, time.time() + 30, None)


def test_hung_worker_is_killed_on_timeout(tmp_path):
    cfg = {"run": 1, "mode": "sync", "topic": "t", "group_id": "g", "bootstrap": "127.0.0.1:9",
           "group_instance_id": "g-m", "n_messages": 1, "end_offsets": {"0": 1},
           "auto_commit_interval_ms": 100, "max_poll_records": 1, "process_ms": 0,
           "handoff": False, "idle_ms": 1000, "max_seconds": 60, "crash": None,
           **{n: str(tmp_path / f"{n}.jsonl") for n in ("ledger", "polls", "commits")}}
    t0 = time.time()
    with pytest.raises(TimeoutError, match="timeout_s"):
        parent._run_worker(cfg, tmp_path, time.time() + 1.5, None)  # nobody listens on port 9
    assert time.time() - t0 < 8
    assert _alive_with(str(tmp_path / "run1.json")) == []
    assert _fork_server_children() == []  # the forked worker is gone too


def _fork_server_children() -> list[int]:
    import psutil

    from helpers.crashlab import forkserver

    server = forkserver._SERVER[0].proc.pid if forkserver._SERVER else None
    return [] if server is None else [c.pid for c in psutil.Process(server).children()
                                      if c.status() != psutil.STATUS_ZOMBIE]


def test_workers_are_forked_by_one_server_and_an_edited_loop_module_is_read_fresh(kafka, tmp_path,
                                                                               monkeypatch):
    import psutil

    from helpers.crashlab import forkserver

    monkeypatch.chdir(tmp_path)  # the learner's loop module sits in the notebook's folder
    module = tmp_path / "edited_loop.py"
    cfg = {"run": 1, "mode": "sync", "topic": "t", "group_id": "g", "bootstrap": kafka.bootstrap,
           "n_messages": 1, "end_offsets": {"0": 1}, "auto_commit_interval_ms": 100, "max_poll_records": 1,
           "process_ms": 0, "handoff": False, "idle_ms": 1000, "max_seconds": 30, "crash": None,
           "loop": "edited_loop:loop",
           **{n: str(tmp_path / f"{n}.jsonl") for n in ("ledger", "polls", "commits")}}
    servers, parents = [], []
    for version in (1, 2):
        module.write_text("import os\n\n\ndef loop(consumer, process, running):\n"
                          f"    raise RuntimeError(f'version {version}, parent {{os.getppid()}}')\n")
        with pytest.raises(cl.WorkerError, match=f"version {version}, parent ") as err:
            parent._run_worker(cfg, tmp_path, time.time() + 30, None)
        parents.append(int(str(err.value).split("parent ")[1].split()[0].rstrip(")'\"")))
        servers.append(forkserver._SERVER[0].proc.pid)
    assert parents == servers and servers[0] == servers[1]  # one server forked both
    assert forkserver.ready() == servers[0]  # what a replay lab calls when built: the same server
    assert "helpers.crashlab.forkserver" in " ".join(psutil.Process(servers[0]).cmdline())
    assert psutil.Process(servers[0]).ppid() == os.getpid()
    monkeypatch.chdir(tmp_path.parent)  # another folder: another PYTHONPATH, so a new server
    with pytest.raises(cl.WorkerError, match="edited_loop"):
        parent._run_worker(cfg, tmp_path, time.time() + 30, None)
    assert forkserver._SERVER[0].proc.pid != servers[0]
    monkeypatch.chdir(tmp_path)
    started = forkserver.ready()  # back in the first folder: ready() starts its server ahead of a run
    assert started != servers[0] and forkserver._SERVER[0].proc.pid == started


def test_a_fork_server_that_cannot_start_says_why(tmp_path, monkeypatch):
    from helpers.crashlab import forkserver

    (tmp_path / "kafka").mkdir()  # the learner's folder comes first on the workers' PYTHONPATH
    (tmp_path / "kafka" / "__init__.py").write_text("raise ImportError('a broken kafka, for the test')\n")
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "cfg.json"
    cfg.write_text("{}")
    with pytest.raises(RuntimeError, match="(?s)exited with code 1; it said:.*a broken kafka, for the test"):
        forkserver.start(cfg)


def test_a_forked_worker_killed_reports_sigkill_and_one_that_exits_its_code(tmp_path):
    from helpers.crashlab import forkserver

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"stdout": str(tmp_path / "out"), "stderr": str(tmp_path / "err")}))
    failing = forkserver.start(cfg)  # no run number: the worker fails with a KeyError
    assert failing.wait(30) == 1 and "KeyError" in (tmp_path / "err").read_text()
    cfg.write_text(json.dumps({
        "stdout": str(tmp_path / "out"), "stderr": str(tmp_path / "err"), "run": 1, "mode": "sync",
        "topic": "t", "group_id": "g", "bootstrap": "127.0.0.1:9", "n_messages": 1, "end_offsets": {"0": 1},
        "auto_commit_interval_ms": 100, "max_poll_records": 1, "process_ms": 0, "handoff": False,
        "idle_ms": 1000, "max_seconds": 60, "crash": None,
        **{n: str(tmp_path / f"{n}.jsonl") for n in ("ledger", "polls", "commits")}}))
    hung = forkserver.start(cfg)  # nobody listens on port 9: it waits
    time.sleep(0.5)
    assert hung.poll() is None and hung.pid in _fork_server_children()
    hung.kill()
    assert hung.wait(10) == -9 and hung.pid not in _fork_server_children()


# ----------------------------------------------------------------- real crashes

@pytest.fixture(scope="module")
def topic(kafka) -> str:
    """One seeded topic that every fixed-point trial shares (each with its own group)."""
    from helpers.topics import create_topic, seed_messages, unique_name

    name = create_topic(unique_name("crashlab-test"), 3, bootstrap=kafka.bootstrap)
    seed_messages(name, N, bootstrap=kafka.bootstrap)
    return name


def _trial(kafka, topic, mode, crash, **extra) -> TrialReport:
    return cl.run_trial(mode, crash, **{**KW, **extra}, topic=topic, bootstrap=kafka.bootstrap)


def _ends(kafka, topic) -> dict[int, int]:
    from helpers.topics import admin_client

    with admin_client(kafka.bootstrap) as admin:
        return {p: end for p, (_, end) in parent._topic_offsets(admin, topic).items()}


def _beyond_commit(rep: TrialReport) -> int:
    """Records run 1 processed beyond the offsets the broker had stored when it died."""
    run1 = sum(1 for e in rep.ledger if e["run"] == 1)
    return run1 - sum(v or 0 for v in rep.committed_before.values())


@pytest.mark.broker
def test_sync_per_batch_replays_exactly_the_unfinished_batch(kafka, topic):
    rep = _trial(kafka, topic, "sync", CrashPlan(after_records=120))
    k = rep.killed_at
    assert k is not None and k["record"] == 120 and k["by"] == "worker"
    assert 0 < k["in_batch"] <= BATCH
    assert rep.lost == 0
    assert rep.duplicates == k["in_batch"] == _beyond_commit(rep)
    assert rep.committed_after == _ends(kafka, topic)  # run 2 drained and committed it all


@pytest.mark.broker
def test_sync_per_record_dies_before_committing_its_last_record(kafka, topic):
    # The worker SIGKILLs itself right after the 120th ledger line, i.e. inside handle(),
    # which in loop_sync_per_record comes *before* that record's commit(): records 1..119
    # are committed, record 120 is processed but not committed, so exactly 1 duplicate.
    rep = _trial(kafka, topic, "sync_per_record", CrashPlan(after_records=120))
    assert sum(v or 0 for v in rep.committed_before.values()) == 119
    assert (rep.duplicates, rep.lost) == (1, 0)
    last = rep.ledger[119]
    assert rep.duplicate_ranges == {last["partition"]: [(last["offset"], last["offset"])]}


@pytest.mark.broker
@pytest.mark.parametrize("mode", ["async", "combined"])
def test_async_per_batch_replays_at_most_the_batches_in_flight(kafka, topic, mode):
    rep = _trial(kafka, topic, mode, CrashPlan(after_records=120))
    lo, hi = cl.predicted_duplicates(rep)
    assert rep.lost == 0
    assert lo <= rep.duplicates <= hi and rep.duplicates == _beyond_commit(rep)


@pytest.mark.broker
def test_auto_commit_replays_about_an_interval(kafka, topic):
    rep = _trial(kafka, topic, "auto", CrashPlan(after_records=250), **AUTO)
    assert any(c["mode"] == "auto" and c["run"] == 1 for c in rep.commits), "no auto commit seen"
    lo, hi = cl.predicted_duplicates(rep)
    assert rep.lost == 0
    assert lo <= rep.duplicates <= hi and rep.duplicates == _beyond_commit(rep)


@pytest.mark.broker
def test_no_commits_replay_everything(kafka, topic):
    rep = _trial(kafka, topic, "none", CrashPlan(after_records=100))
    assert (rep.duplicates, rep.lost) == (100, 0)
    assert set(rep.committed_after.values()) == {None}


@pytest.mark.broker
def test_auto_commit_with_handoff_loses_records(kafka, topic):
    # Processing (5 ms a record) lags the poll loop by up to a batch (250 ms) while auto
    # commit runs every 100 ms: the committed positions run ahead of processing.
    rep = _trial(kafka, topic, "auto", CrashPlan(after_records=150),
                 auto_commit_interval_ms=100, process_ms=5.0, handoff=True)
    assert rep.lost > 0
    assert rep.lost == sum(v or 0 for v in rep.committed_before.values()) - 150
    assert cl.predicted_duplicates(rep) is None


@pytest.mark.broker
def test_mid_batch_and_after_ms_kills(kafka, topic):
    mid = _trial(kafka, topic, "sync", CrashPlan(mid_batch=True, after_records=60))
    k = mid.killed_at
    assert k["record"] >= 60 and 0 < k["in_batch"] < k["batch_size"]
    assert (mid.duplicates, mid.lost) == (k["in_batch"], 0)
    timed = _trial(kafka, topic, "sync", CrashPlan(after_ms=100), process_ms=1.0)
    k = timed.killed_at
    assert k is not None and k["by"] == "parent" and 0 < k["record"] < N
    lo, hi = cl.predicted_duplicates(timed)
    assert timed.lost == 0 and lo <= timed.duplicates <= hi <= BATCH


@pytest.mark.broker
@pytest.mark.parametrize("mode", ["sync", "async", "combined", "auto"])
def test_graceful_stop_repeats_and_loses_nothing(kafka, topic, mode):
    extra = AUTO if mode == "auto" else {}
    rep = _trial(kafka, topic, mode, CrashPlan(graceful=True), **extra)
    assert rep.killed_at is None and rep.settings["run1_stopped"] == "stop signal"
    run1 = sum(1 for e in rep.ledger if e["run"] == 1)
    assert N // 2 <= run1 < N
    assert rep.lost == 0
    if mode == "async":
        # close() does not wait for queued async commits: under load the last batch's
        # commit can be dropped (seen once in CI-like runs), so a replay is allowed -
        # exactly the records beyond what the broker holds, and within the prediction.
        lo, hi = cl.predicted_duplicates(rep)
        beyond = run1 - sum(v or 0 for v in rep.committed_before.values())
        assert lo <= rep.duplicates == beyond <= hi
    else:  # sync commits (and auto's commit in close()) finish before close() returns
        assert rep.duplicates == 0


# ----------------------------------------------------------------- the headline test

TRIALS = int(os.environ.get("COURSE_SWEEP_KILLS", 6))  # random SIGKILLs per mode (make sweeps: 20)


@pytest.mark.broker
# A hang guard, not a speed target. On make test-cluster's three nodes (commits wait for a follower's
# copy) the 80 trials ran past 300 s twice at load average ~30.
@pytest.mark.timeout(900 if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") else 300)
def test_random_sigkills_never_lose_and_stay_within_prediction(kafka):
    """Random SIGKILL points per at-least-once mode (TRIALS): lost == 0 in every trial, and
    duplicates within the mode's prediction (one batch for per-batch commits, one
    interval's records plus a batch for auto commit)."""
    from concurrent.futures import ThreadPoolExecutor

    def trials(i_mode):  # the parent only waits on its workers: run 3 modes at a time
        i, mode = i_mode
        extra = AUTO if mode == "auto" else {}
        return mode, cl.run_trials(mode, TRIALS, seed=1000 + i, progress=False, **KW, **extra,
                                   bootstrap=kafka.bootstrap)

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(trials, enumerate(AT_LEAST_ONCE)))
    rows, failures = [], []
    for mode, df in results:
        for t, r in df.iterrows():
            beyond = r["run1_processed"] - sum(v or 0 for v in r["committed_before"].values())
            ok = (r["lost"] == 0 and r["predicted_min"] <= r["duplicates"] <= r["predicted_max"]
                  and r["duplicates"] == beyond)
            if mode == "sync":  # async/combined may exceed a batch: see predicted_duplicates
                ok = ok and r["duplicates"] == r["in_batch"] <= BATCH
            if not ok:
                failures.append((mode, t, r.to_dict()))
        d = df["duplicates"]
        rows.append({"mode": mode, "trials": len(df), "lost": int(df["lost"].sum()),
                     "dup_min": int(d.min()), "dup_median": float(statistics.median(d)),
                     "dup_max": int(d.max()), "predicted_max_max": int(df["predicted_max"].max()),
                     "trial_s_median": round(float(df["total_s"].median()), 2)})
    import pandas as pd

    print(f"\ncrash trials: n_messages={N}, max_poll_records={BATCH}, "
          f"auto_commit_interval_ms={AUTO['auto_commit_interval_ms']} (auto: process_ms="
          f"{AUTO['process_ms']})\n" + pd.DataFrame(rows).to_string(index=False))
    assert not failures, failures


# ----------------------------------------------------------------- grading a learner's loop

BROKEN = "helpers.solutions.broken"


@pytest.mark.broker
def test_a_correct_loop_passes_every_kill_and_the_graceful_stop(kafka):
    grade = cl.grade_loop("helpers.modes:loop_combined", "combined", kills=3, seed=7, n_messages=N,
                          max_poll_records=BATCH, progress=False, bootstrap=kafka.bootstrap)
    assert grade.passed, grade.problems
    rows = grade.rows
    assert len(rows) == 4 and all(r["lost"] == 0 for r in rows)
    graceful = rows[-1]
    assert graceful["crash"] == "graceful" and graceful["final_commit"] == "sync"
    assert graceful["committed_on_stop"] is True and graceful["left_group"] is True
    assert "PASSED" in grade._repr_html_()


@pytest.mark.broker
@pytest.mark.parametrize("loop, plans, graceful, expect", [
    # commits what poll() returned, then processes: a kill inside the batch loses its rest
    ("commit_before_processing", [CrashPlan(mid_batch=True, after_records=60)], False,
     "committed offsets had moved past them"),
    # async commits only: a graceful stop cannot confirm its last commit
    ("no_final_commit", [], True, "close() does not wait"),
    # never closes: the member is still in the group after the process exits
    ("no_close", [], True, "never called close()"),
    # commits while records wait on another thread: a kill loses them
    ("handoff_to_thread", [CrashPlan(after_records=100)], False,
     "committed offsets had moved past them"),
])
def test_broken_loops_fail_for_their_reason(kafka, loop, plans, graceful, expect):
    grade = cl.grade_loop(f"{BROKEN}:{loop}", "combined", crashes=plans, graceful=graceful,
                          n_messages=N, max_poll_records=BATCH, process_ms=2.0, progress=False,
                          bootstrap=kafka.bootstrap)
    assert not grade.passed
    assert any(expect in p for p in grade.problems), grade.problems
    if "moved past" in expect:  # the report names the lost offsets
        assert grade.summary()["lost"] > 0 and "offsets" in grade.problems[0]


def test_a_loop_defined_in_a_notebook_cell_is_refused_with_what_to_do():
    def consume_loop(consumer, process, running):  # lives in this test, like a notebook cell's
        pass

    consume_loop.__module__ = "__main__"
    with pytest.raises(ValueError, match="%%writefile"):
        cl.run_trial("sync", CrashPlan(after_records=1), loop=consume_loop, **KW,
                     bootstrap="127.0.0.1:1")
    with pytest.raises(ValueError, match="cannot import"):
        cl.grade_loop("no_such_module_here:consume_loop", progress=False)


def test_a_manual_loop_that_never_commits_is_caught_even_within_the_async_bound():
    k = {"record": 200, "t": 1.0, "by": "worker", "in_batch": 10, "prev_batch_size": 50}
    rep = _report("async", k, _led(*[(1, 0, i) for i in range(200)]), max_poll_records=50)
    rep.crash = {"after_records": 200}
    rep.duplicates = 200
    verdict = cl.grade_trial(rep, "async")
    assert not verdict["passed"] and "not one commit" in verdict["problems"][0]
    assert cl.grade_trial(rep, "none")["passed"]
