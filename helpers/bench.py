"""What commits cost: the article's 100,000-message timings, measured again (notebook 07).

:func:`run_benchmark` seeds one topic with ``n_messages`` and reads all of it, again
and again, once per commit mode, with a fresh consumer group every time:

* with **kafka-python**, through the course's own loops (:func:`helpers.modes.consume_all`,
  with a :class:`helpers.tracing.CommitTracer` timing every commit);
* with **confluent-kafka** (librdkafka), through the short loops below (``ck_loop_*``),
  written to the same loop contract (:mod:`helpers.runner`) and mirroring
  :mod:`helpers.modes` one for one;
* both **plain** (the record is decoded and counted, nothing else) and **article
  style**: every record printed with the article's format string, as its code did.

Both clients run through :func:`helpers.runner.run_loop`, stop by the same rule
(:class:`helpers.runner.Until`) and retry a stalled run with a fresh group by the same
policy (:func:`helpers.runner.with_retries`).

Article-style printing goes to ``os.devnull`` opened in *text* mode and *line
buffered* (``open(os.devnull, "w", buffering=1)``): each ``print`` still formats the
line, encodes it and makes one ``write()`` system call, as it would on a console
(``sys.stdout`` on a terminal is line buffered), but nothing is stored and no terminal
has to draw 100,000 lines. So the printing cost measured here is a *lower bound* of
what printing to a console costs.

Each run stops once ``n_messages`` records have been processed (the topic holds exactly
that many, so no run waits for records that will never come). One warm-up run per
client is thrown away; then ``repeats`` rounds run every (client, style, mode) once
each, interleaved so that background load on a shared machine hits all of them alike.
Figures are medians with min and max, and every time is also divided by the no-commit
floor (mode ``none``, plain) of the same client in the same round: ratios are what
survive a noisy machine, not seconds. The figures are drawn by
:func:`helpers.plots.plot_bench`.

Command line (``make bench`` / ``make bench-small``)::

    python -m helpers.bench --messages 100000 --repeats 3 --out .course/bench
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .modes import MODES, consume_all
from .plots import plot_bench  # re-exported until helpers/__init__ maps plot_bench to plots
from .runner import Stalled, Until, run_loop, with_retries
from .tracing import CommitTracer

__all__ = [
    "ARTICLE_FORMAT",
    "ARTICLE_SECONDS",
    "BENCH_CLIENTS",
    "BENCH_MODES",
    "CK_LOOPS",
    "BenchResult",
    "RunStats",
    "run_benchmark",
    "summarize_runs",
]

#: The line the article's loops print for every record.
ARTICLE_FORMAT = "topic = {},partition = {},offset = {},key = {},value = {}"
#: The only two timings the article gives, for 100,000 messages (its machine, its broker):
#: its sync loop (``commit()`` per batch) and its async loop (``commit_async`` per batch).
ARTICLE_SECONDS: dict[str, float] = {"sync": 4.58, "async": 3.09}
#: Commit modes, in the order the table shows them: the course's own list and order
#: (:data:`helpers.modes.MODES`; ``none`` is the floor).
BENCH_MODES: tuple[str, ...] = MODES
BENCH_CLIENTS: tuple[str, ...] = ("kafka-python", "confluent-kafka")
STYLES: tuple[str, ...] = ("plain", "article")
#: confluent-kafka's poll timeout, the 100 ms that the loops of :mod:`helpers.modes` use.
CK_POLL_S = 0.1
#: A run whose consumer reads nothing for this long is stalled (retried with a fresh group).
NOTHING_S = 10.0


def _max_seconds(n: int) -> float:
    """Never hang: far above any sane run (sync per record takes about 1 ms per record)."""
    return 120 + n / 100


# ---------------------------------------------------------------------------- one run


@dataclass
class RunStats:
    """One timed pass over the topic by one client in one commit mode (notebook 07).

    ``seconds`` is the loop as :func:`helpers.runner.run_loop` times it: from the first
    ``poll()``/``consume()`` (the group join happens inside it) to the return of the
    loop's ``close()`` (the loops close their consumer themselves, for both clients).
    So it includes leaving the group, and in ``auto`` mode the commit ``close()`` makes.
    Every run pays its ``close()``, the no-commit floor's too, so a ratio to the floor
    compares like with like. ``steady_seconds`` leaves out both ends.
    """

    client: str
    mode: str
    style: str  # "plain" or "article" (every record printed)
    repeat: int  # 0, 1, ...; -1 for the discarded warm-up
    messages: int  # records processed
    seconds: float  # the loop: first poll to the return of close()
    steady_seconds: float  # first record processed to last record processed (no join, no close)
    commits: int  # commits sent while consuming (a close() commit is not counted)
    commit_errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # one per commit whose answer was seen
    error_kinds: dict[str, int] = field(default_factory=dict)  # "ErrorType: message" -> count

    @property
    def outside_seconds(self) -> float:
        """``seconds`` outside the steady part: group join and first fetch, last commit, close()."""
        return max(self.seconds - self.steady_seconds, 0.0)


class _Clock:
    """Per-record bookkeeping shared by both clients' handlers."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.first: float | None = None
        self.last: float | None = None
        self.count = 0

    def tick(self) -> None:
        self.last = time.perf_counter()
        if self.first is None:
            self.first = self.last
        self.count += 1

    def steady(self, seconds: float) -> float:
        if self.first is None or self.last is None:
            return 0.0
        return min(self.last - self.first, seconds)


def _printer(stream: Any) -> Callable[[str, int, int, Any, Any], None]:
    def show(topic: str, partition: int, offset: int, key: Any, value: Any) -> None:
        print(ARTICLE_FORMAT.format(topic, partition, offset, key, value), file=stream)

    return show


def _on_send_response(stream: Any, failure: Any) -> None:
    """The article's async commit callback: one line per answer."""
    print("偏移量提交成功" if failure is None else f"偏移量提交异常. {failure}", file=stream)


class _FreshTracer(CommitTracer):
    """A CommitTracer that starts over (and resets the run's clock) for each new consumer.

    :func:`helpers.modes.consume_all` builds a fresh consumer for each attempt; a retried
    run must count only the attempt that read everything.
    """

    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self.clock = clock

    def attach(self, consumer: Any) -> Any:
        with self._lock:
            self.attempts.clear()
        self.clock.reset()
        return super().attach(consumer)


def _kp_run(mode: str, topic: str, n: int, *, style: str, stream: Any, max_poll_records: int,
            bootstrap: str, repeat: int) -> tuple[RunStats, int]:
    """kafka-python, through :func:`helpers.modes.consume_all` (the course's loops)."""
    clock = _Clock()
    show = _printer(stream) if style == "article" else None

    def process(record: Any) -> None:
        clock.tick()
        if show is not None:
            show(record.topic, record.partition, record.offset, record.key, record.value)

    def on_commit(offsets: Any, result: Any) -> None:  # called for commit_async only
        if show is not None:
            _on_send_response(stream, result if isinstance(result, BaseException) else None)

    tracer = _FreshTracer(clock)
    res, retries = consume_all(mode, topic, n, group_prefix="bench-kp", idle_ms=int(NOTHING_S * 1000),
                               max_seconds=_max_seconds(n), process=process, tracer=tracer,
                               on_commit=on_commit, bootstrap=bootstrap,
                               max_poll_records=max_poll_records)
    # "auto-sync" is the commit close() makes for auto mode: after the loop, not counted.
    attempts = [r for r in tracer.rows() if r["mode"] != "auto-sync"]
    lat: list[float] = []
    for r in attempts:
        if r["mode"] == "async" and r["callback_at"] is not None:
            lat.append((r["callback_at"] - r["started"]) * 1000)  # same definition as confluent
        elif r["mode"] != "async" and r["latency_ms"] is not None:
            lat.append(r["latency_ms"])
    kinds: dict[str, int] = {}
    for r in attempts:
        if r["outcome"] == "error":
            kinds[str(r["error"])[:120]] = kinds.get(str(r["error"])[:120], 0) + 1
    stats = RunStats("kafka-python", mode, style, repeat, res.processed, res.seconds,
                     clock.steady(res.seconds), len(attempts), sum(kinds.values()), lat, kinds)
    return stats, retries


# --- confluent-kafka loops: one per mode, parallel to helpers.modes.loop_* -------------
# The same contract: loop(consumer, process, running), the loop commits and closes.
# consume(num_messages, timeout) returns a batch like kafka-python's poll(); commit()
# without arguments commits the positions of everything consume() has returned, and
# commit(message=msg) commits msg.offset() + 1. on_commit (in the config) reports async
# and auto commits (a sync commit reports by returning or raising); confluent-kafka runs
# it inside consume()/poll() and also inside close(). kafka-python runs a commit_async
# callback inside poll(), commit() and commit_async(), never inside close() (notebook 07
# shows both).


def ck_loop_none(consumer: Any, process: Callable[[Any], None], running: Callable[[], bool], *,
                 max_poll_records: int = 500) -> None:
    """confluent-kafka, no commits (notebook 07): mirrors :func:`helpers.modes.loop_none`."""
    try:
        while running():
            for msg in consumer.consume(max_poll_records, CK_POLL_S):
                process(msg)
    finally:
        consumer.close()


def ck_loop_auto(consumer: Any, process: Callable[[Any], None], running: Callable[[], bool], *,
                 max_poll_records: int = 500) -> None:
    """confluent-kafka, ``enable.auto.commit=true`` (notebook 07): librdkafka commits in
    the background every ``auto.commit.interval.ms`` (5000) and in ``close()``."""
    try:
        while running():
            for msg in consumer.consume(max_poll_records, CK_POLL_S):
                process(msg)
    finally:
        consumer.close()


def ck_loop_sync(consumer: Any, process: Callable[[Any], None], running: Callable[[], bool], *,
                 max_poll_records: int = 500) -> None:
    """confluent-kafka, a blocking commit after each batch (notebook 07)."""
    try:
        while running():
            batch = consumer.consume(max_poll_records, CK_POLL_S)
            for msg in batch:
                process(msg)
            if batch:
                consumer.commit(asynchronous=False)
    finally:
        consumer.close()


def ck_loop_sync_per_record(consumer: Any, process: Callable[[Any], None],
                            running: Callable[[], bool], *, max_poll_records: int = 500) -> None:
    """confluent-kafka, a blocking commit after every record (notebook 07)."""
    try:
        while running():
            for msg in consumer.consume(max_poll_records, CK_POLL_S):
                process(msg)
                consumer.commit(message=msg, asynchronous=False)  # commits msg.offset() + 1
    finally:
        consumer.close()


def ck_loop_async(consumer: Any, process: Callable[[Any], None], running: Callable[[], bool], *,
                  max_poll_records: int = 500) -> None:
    """confluent-kafka, a non-blocking commit after each batch (notebook 07); the answer
    goes to the ``on_commit`` callback of the consumer's config."""
    try:
        while running():
            batch = consumer.consume(max_poll_records, CK_POLL_S)
            for msg in batch:
                process(msg)
            if batch:
                consumer.commit(asynchronous=True)
    finally:
        consumer.close()


def ck_loop_combined(consumer: Any, process: Callable[[Any], None], running: Callable[[], bool], *,
                     max_poll_records: int = 500) -> None:
    """confluent-kafka, async per batch and one blocking commit on a clean stop (notebook 07)."""
    try:
        while running():
            batch = consumer.consume(max_poll_records, CK_POLL_S)
            for msg in batch:
                process(msg)
            if batch:
                consumer.commit(asynchronous=True)
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()


#: confluent-kafka's loop for each mode of :data:`helpers.modes.MODES`.
CK_LOOPS: dict[str, Callable[..., None]] = {
    "none": ck_loop_none, "auto": ck_loop_auto, "sync": ck_loop_sync,
    "sync_per_record": ck_loop_sync_per_record, "async": ck_loop_async,
    "combined": ck_loop_combined,
}


class _CkCommits:
    """What the CommitTracer does for kafka-python: times, counts and classifies commits."""

    def __init__(self, mode: str, show_callbacks: Any) -> None:
        self.mode = mode
        self.closing = False  # close() has started: its own commit is not counted
        self.stream = show_callbacks  # a stream to print the article's callback line to, or None
        self.latencies: list[float] = []
        self.async_sent: deque[float] = deque()
        self.commits = self.auto = self.errors = 0
        self.kinds: dict[str, int] = {}

    def failed(self, err: Any) -> None:
        self.errors += 1
        self.kinds[str(err)[:120]] = self.kinds.get(str(err)[:120], 0) + 1

    def on_commit(self, err: Any, partitions: Any) -> None:
        """confluent-kafka's commit callback: async and auto commits, answers in the order sent."""
        from confluent_kafka import KafkaError

        now = time.perf_counter()
        if self.async_sent:  # answers from one coordinator come back in the order sent
            # served by a later consume() or by close(): arrival at the callback, as for kafka-python
            self.latencies.append((now - self.async_sent.popleft()) * 1000)
            if self.stream is not None:
                _on_send_response(self.stream, err)
        if self.mode == "auto" and err is None and not self.closing:
            self.auto += 1
        if err is not None and err.code() != KafkaError._NO_OFFSET:
            self.failed(err)


class _TimedCkConsumer:
    """A confluent-kafka Consumer whose ``commit()`` calls are timed and counted."""

    def __init__(self, consumer: Any, commits: _CkCommits) -> None:
        self._consumer, self._commits = consumer, commits

    def consume(self, num_messages: int, timeout: float) -> Any:
        return self._consumer.consume(num_messages, timeout)

    def close(self) -> None:
        self._commits.closing = True
        self._consumer.close()

    def commit(self, message: Any = None, asynchronous: bool = True) -> None:
        from confluent_kafka import KafkaError, KafkaException

        c = self._commits
        kwargs = {} if message is None else {"message": message}
        if asynchronous:
            c.async_sent.append(time.perf_counter())
            self._consumer.commit(asynchronous=True, **kwargs)
            c.commits += 1
            return
        t = time.perf_counter()
        try:
            self._consumer.commit(asynchronous=False, **kwargs)
        except KafkaException as e:
            if e.args[0].code() == KafkaError._NO_OFFSET:  # nothing new to store: no request sent
                return
            c.commits += 1
            raise
        c.commits += 1
        c.latencies.append((time.perf_counter() - t) * 1000)


def _ck_once(mode: str, topic: str, n: int, *, style: str, stream: Any, max_poll_records: int,
             bootstrap: str, repeat: int) -> RunStats:
    """One confluent-kafka attempt, in a fresh group; raises Stalled if it reads fewer than n."""
    from confluent_kafka import Consumer

    from .topics import unique_name

    clock = _Clock()
    show = _printer(stream) if style == "article" else None
    # the article prints its callback's line for async commits only
    commits = _CkCommits(mode, stream if show is not None and mode in ("async", "combined") else None)
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": unique_name(f"bench-ck-{mode}"),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": mode == "auto",  # default interval: auto.commit.interval.ms=5000
        "on_commit": commits.on_commit,
    })
    consumer.subscribe([topic])
    until = Until(max_records=n, nothing_s=NOTHING_S, idle_s=NOTHING_S, max_seconds=_max_seconds(n))

    def handle(msg: Any) -> None:
        if msg.error() is not None:
            raise RuntimeError(f"confluent-kafka {mode}: {msg.error()}")
        clock.tick()
        until.done()
        # The same work kafka-python's course deserializers do: text key, JSON value.
        key = msg.key().decode("utf-8") if msg.key() is not None else None
        value = json.loads(msg.value()) if msg.value() is not None else None
        if show is not None:
            show(msg.topic(), msg.partition(), msg.offset(), key, value)

    run = run_loop(CK_LOOPS[mode], _TimedCkConsumer(consumer, commits), handle, until.running,
                   close_forgotten=False, max_poll_records=max_poll_records)
    if clock.count != n:
        raise Stalled(f"confluent-kafka {mode}: read {clock.count} of {n} records "
                      f"({until.reason}); is the broker overloaded?")
    n_commits = commits.auto if mode == "auto" else commits.commits
    return RunStats("confluent-kafka", mode, style, repeat, clock.count, run.seconds,
                    clock.steady(run.seconds), n_commits, commits.errors, commits.latencies,
                    commits.kinds)


def _ck_run(mode: str, topic: str, n: int, **kw: Any) -> tuple[RunStats, int]:
    """confluent-kafka (librdkafka), same topic, same broker, same decoding work per record;
    a stalled attempt is retried in a fresh group by :func:`helpers.runner.with_retries`."""
    return with_retries(lambda attempt: _ck_once(mode, topic, n, **kw))


_RUNNERS: dict[str, Callable[..., tuple[RunStats, int]]] = {
    "kafka-python": _kp_run, "confluent-kafka": _ck_run}


# ---------------------------------------------------------------------------- statistics


def _median_min_max(values: Sequence[float]) -> tuple[float, float, float]:
    return float(statistics.median(values)), float(min(values)), float(max(values))


def summarize_runs(runs: Iterable[RunStats]) -> Any:
    """The results table (a pandas DataFrame) from timed runs; warm-ups (repeat < 0) are skipped.

    One row per (client, style, mode), in :data:`BENCH_MODES` order: median, min and max
    of ``seconds``; ``ratio`` = median over rounds of ``seconds`` divided by the floor
    (client's ``none``/plain run) of the *same round* (with ``ratio_min``/``ratio_max``);
    the same for steady-state time, first record to last (``steady_ratio``); messages and commits per second
    from the median time; median commit latency over all the rows' commits. Notebook 07.
    """
    import pandas as pd

    timed = [r for r in runs if r.repeat >= 0]
    if not timed:
        raise ValueError("no timed runs to summarize (only warm-ups, or nothing at all)")
    floors = {(r.client, r.repeat): r for r in timed if r.mode == "none" and r.style == "plain"}
    groups: dict[tuple[str, str, str], list[RunStats]] = {}
    for r in timed:
        groups.setdefault((r.client, r.style, r.mode), []).append(r)

    rows = []
    for (client, style, mode), group in groups.items():
        secs = _median_min_max([r.seconds for r in group])
        steady = [r.steady_seconds for r in group]
        ratios = [r.seconds / floors[(client, r.repeat)].seconds for r in group
                  if (client, r.repeat) in floors and floors[(client, r.repeat)].seconds > 0]
        steady_ratios = [r.steady_seconds / floors[(client, r.repeat)].steady_seconds
                         for r in group if (client, r.repeat) in floors
                         and floors[(client, r.repeat)].steady_seconds > 0]
        ratio = _median_min_max(ratios) if ratios else (float("nan"),) * 3
        lat = [x for r in group for x in r.latencies_ms]
        commits = float(statistics.median([r.commits for r in group]))
        messages = int(statistics.median([r.messages for r in group]))
        rows.append({
            "client": client, "style": style, "mode": mode, "repeats": len(group),
            "messages": messages,
            "seconds": secs[0], "seconds_min": secs[1], "seconds_max": secs[2],
            "ratio": ratio[0], "ratio_min": ratio[1], "ratio_max": ratio[2],
            "steady_seconds": float(statistics.median(steady)),
            "steady_ratio": (float(statistics.median(steady_ratios)) if steady_ratios
                             else float("nan")),
            "outside_seconds": float(statistics.median([r.outside_seconds for r in group])),
            "msgs_per_s": messages / secs[0] if secs[0] > 0 else float("nan"),
            "commits": commits,
            "commits_per_s": commits / secs[0] if secs[0] > 0 else float("nan"),
            "commit_ms_p50": float(statistics.median(lat)) if lat else float("nan"),
            "commit_errors": sum(r.commit_errors for r in group),
        })
    order = {m: i for i, m in enumerate(BENCH_MODES)}
    table = pd.DataFrame(rows)
    table["_c"] = table["client"].map({c: i for i, c in enumerate(BENCH_CLIENTS)}).fillna(9)
    table["_s"] = table["style"].map({s: i for i, s in enumerate(STYLES)}).fillna(9)
    table["_m"] = table["mode"].map(order).fillna(99)
    table = table.sort_values(["_c", "_s", "_m"]).drop(columns=["_c", "_s", "_m"])
    # Index levels in display order (not alphabetical), so the index counts as sorted and
    # table.loc[("kafka-python", "plain")] works without a PerformanceWarning.
    keys = ["client", "style", "mode"]
    levels = [list(dict.fromkeys(table[k])) for k in keys]
    codes = [[lv.index(v) for v in table[k]] for k, lv in zip(keys, levels, strict=True)]
    index = pd.MultiIndex(levels=levels, codes=codes, names=keys)
    return table.drop(columns=keys).set_axis(index, axis=0)


def _latency_frame(runs: Iterable[RunStats]) -> Any:
    import pandas as pd

    rows = [{"client": r.client, "style": r.style, "mode": r.mode, "repeat": r.repeat,
             "latency_ms": x} for r in runs if r.repeat >= 0 for x in r.latencies_ms]
    return pd.DataFrame(rows, columns=["client", "style", "mode", "repeat", "latency_ms"])


# ---------------------------------------------------------------------------- the benchmark


@dataclass
class BenchResult:
    """What :func:`run_benchmark` measured (notebook 07).

    ``runs``: every :class:`RunStats` (warm-ups have ``repeat == -1``); ``table``: the
    summary from :func:`summarize_runs`; ``latencies``: one row per commit latency
    (timed runs only); ``params`` and ``machine`` say what ran where.
    """

    runs: list[RunStats]
    table: Any
    latencies: Any
    params: dict[str, Any]
    machine: dict[str, Any]

    def row(self, client: str, mode: str, style: str = "plain") -> dict[str, Any]:
        """One table row as a dict, e.g. ``result.row("kafka-python", "sync")``."""
        try:
            return dict(self.table.loc[(client, style, mode)])
        except KeyError:
            raise KeyError(f"no row for client={client!r} style={style!r} mode={mode!r}; "
                           f"rows: {list(self.table.index)}") from None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: params, machine, the table's rows, and every run (its commit
        latencies as count and percentiles; the raw values are in ``latencies``)."""
        table = self.table.reset_index()
        rows = json.loads(table.to_json(orient="records"))
        runs = []
        for r in self.runs:
            d = asdict(r)
            lat = sorted(d.pop("latencies_ms"))
            d["latency_ms"] = ({"count": len(lat), **{f"p{q}": lat[min(len(lat) - 1,
                                int(q / 100 * len(lat)))] for q in (50, 90, 99)},
                                "max": lat[-1]} if lat else {"count": 0})
            runs.append(d)
        return {"params": self.params, "machine": self.machine, "table": rows, "runs": runs}

    def save(self, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``bench.json``, ``bench.png`` (ratios) and ``latency.png`` into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / "bench.json", "ratios": out / "bench.png",
                 "latency": out / "latency.png"}
        paths["json"].write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False))
        fig_r, fig_l = plot_bench(self)
        fig_r.savefig(paths["ratios"], dpi=110, bbox_inches="tight")
        fig_l.savefig(paths["latency"], dpi=110, bbox_inches="tight")
        return paths


def _check_choice(kind: str, given: Sequence[str], valid: Sequence[str]) -> tuple[str, ...]:
    if isinstance(given, str):
        given = (given,)
    bad = [g for g in given if g not in valid]
    if bad:
        raise ValueError(f"unknown {kind} {bad}; valid {kind}s are: {', '.join(valid)}")
    if not given:
        raise ValueError(f"choose at least one {kind} of: {', '.join(valid)}")
    return tuple(dict.fromkeys(given))


def _machine() -> dict[str, Any]:
    import confluent_kafka
    import kafka

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "load_average_at_start": load, "kafka_python": kafka.__version__,
            "confluent_kafka": confluent_kafka.__version__,
            "librdkafka": confluent_kafka.libversion()[0]}


def run_benchmark(
    n_messages: int = 100_000,
    repeats: int = 3,
    modes: Sequence[str] = BENCH_MODES,
    clients: Sequence[str] = BENCH_CLIENTS,
    article_style: bool = True,
    partitions: int = 3,
    max_poll_records: int = 500,
    bootstrap: str | None = None,
    progress: bool = True,
    topic: str | None = None,
) -> BenchResult:
    """Time reading ``n_messages`` in each commit mode, per client, plain and article style.

    Seeds a new topic (``partitions`` partitions) with exactly ``n_messages`` records,
    unless ``topic`` names one already holding exactly that many. Mode ``none`` (the
    floor every ratio divides by) always runs. ``article_style`` adds, for every mode,
    a run that prints each record with :data:`ARTICLE_FORMAT` (to ``os.devnull``, see
    the module docstring); every run polls with a 100 ms timeout. ``max_poll_records``
    caps a batch for both clients (``consume(num_messages=...)`` for librdkafka).
    Shows tqdm progress bars unless ``progress=False``. Notebook 07.
    """
    if isinstance(n_messages, bool) or not isinstance(n_messages, int) or n_messages < 1:
        raise ValueError(f"n_messages must be a whole number >= 1, not {n_messages!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a whole number >= 1, not {repeats!r}")
    if isinstance(max_poll_records, bool) or not isinstance(max_poll_records, int) \
            or max_poll_records < 1:
        raise ValueError(f"max_poll_records must be a whole number >= 1, not {max_poll_records!r}")
    modes = _check_choice("mode", modes, BENCH_MODES)
    clients = _check_choice("client", clients, BENCH_CLIENTS)
    missing = [m for m in modes if m not in CK_LOOPS]
    if "confluent-kafka" in clients and missing:
        raise ValueError(f"confluent-kafka has no loop for mode(s) {missing}: add them to "
                         f"helpers.bench.CK_LOOPS, or pass clients=['kafka-python']")
    if "none" not in modes:
        modes = ("none", *modes)  # the floor
    modes = tuple(m for m in BENCH_MODES if m in modes)
    styles = STYLES if article_style else STYLES[:1]

    from tqdm.auto import tqdm

    from .broker import ensure_broker
    from .topics import create_topic, seed_messages, unique_name

    bootstrap = bootstrap or ensure_broker().bootstrap
    machine = _machine()
    if topic is None:
        topic = create_topic(unique_name("bench"), partitions, bootstrap=bootstrap)
        seed_messages(topic, n_messages, bootstrap=bootstrap,
                      progress=progress and n_messages >= 10_000)

    plan: list[tuple[int, str, str, str]] = [(-1, c, "plain", "none") for c in clients]
    for rep in range(repeats):
        plan += [(rep, c, s, m) for c in clients for s in styles for m in modes]
    runs: list[RunStats] = []
    retried: list[str] = []
    bar = tqdm(plan, desc="benchmark", unit="run", disable=not progress)
    with open(os.devnull, "w", buffering=1, encoding="utf-8") as stream:
        for rep, client, style, mode in bar:
            which = f"{'warm-up' if rep < 0 else f'round {rep + 1}'} {client} {mode} {style}"
            bar.set_postfix_str(which)
            stats, retries = _RUNNERS[client](mode, topic, n_messages, style=style, stream=stream,
                                              max_poll_records=max_poll_records,
                                              bootstrap=bootstrap, repeat=rep)
            runs.append(stats)
            if retries:  # a stalled consumer was replaced by one in a fresh group
                retried.append(f"{which}: {retries} fresh group(s)")
    bar.close()
    params = {"n_messages": n_messages, "repeats": repeats, "modes": list(modes),
              "clients": list(clients), "article_style": article_style,
              "partitions": partitions, "max_poll_records": max_poll_records, "topic": topic,
              "print_target": "os.devnull, text mode, line buffered", "retried": retried}
    return BenchResult(runs, summarize_runs(runs), _latency_frame(runs), params, machine)



# ---------------------------------------------------------------------------- command line


def format_table(table: Any) -> str:
    """The table as fixed-width text for a terminal (``make bench``)."""
    cols = ["messages", "seconds", "seconds_min", "seconds_max", "ratio", "ratio_min",
            "ratio_max", "steady_ratio", "msgs_per_s", "commits", "commits_per_s",
            "commit_ms_p50"]
    import pandas as pd

    with pd.option_context("display.width", 250, "display.max_columns", 30,
                           "display.float_format", "{:,.3f}".format):
        return table[cols].to_string()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m helpers.bench``: run, print the table, save JSON and PNGs."""
    p = argparse.ArgumentParser(prog="python -m helpers.bench", description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--modes", nargs="+", default=list(BENCH_MODES), metavar="MODE",
                   help=f"any of: {', '.join(BENCH_MODES)}")
    p.add_argument("--clients", nargs="+", default=list(BENCH_CLIENTS), metavar="CLIENT",
                   help=f"any of: {', '.join(BENCH_CLIENTS)}")
    p.add_argument("--no-article", action="store_true", help="skip the printing (article) runs")
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--max-poll-records", type=int, default=500)
    p.add_argument("--out", default=".course/bench", help="folder for bench.json and PNGs")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    try:
        result = run_benchmark(a.messages, a.repeats, a.modes, a.clients,
                               article_style=not a.no_article, partitions=a.partitions,
                               max_poll_records=a.max_poll_records,
                               progress=not a.no_progress)
    except ValueError as e:
        p.error(str(e))
    print(f"\n{a.messages:,} messages, {a.repeats} round(s), {result.machine['cpus']} CPUs, "
          f"load average at start {result.machine['load_average_at_start']}")
    print("ratio = loop seconds / the same client's no-commit plain run in the same round "
          "(median, min, max over rounds)\n")
    print(format_table(result.table))
    paths = result.save(a.out)
    print("\nsaved: " + ", ".join(str(v) for v in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
