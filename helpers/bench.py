"""What commits cost: the article's 100,000-message timings, reproduced and explained (notebook 06).

:func:`run_benchmark` seeds one topic with ``n_messages`` and reads all of it, again
and again, once per commit mode, with a fresh consumer group every time:

* with **kafka-python**, through the course's own loops (:func:`helpers.modes.consume`,
  with a :class:`helpers.tracing.CommitTracer` timing every commit);
* with **confluent-kafka** (librdkafka), through the short loops below (``_ck_*``),
  written to mirror :mod:`helpers.modes` one for one;
* both **plain** (the record is decoded and counted, nothing else) and **article
  style**: every record printed with the article's format string, as its code did.

Article-style printing goes to ``os.devnull`` opened in *text* mode and *line
buffered* (``open(os.devnull, "w", buffering=1)``): each ``print`` still formats the
line, encodes it and makes one ``write()`` system call, as it would on a console
(``sys.stdout`` on a terminal is line buffered), but nothing is stored and no terminal
has to draw 100,000 lines. So the printing cost measured here is a *lower bound* of
what the article paid; a real console (or a notebook!) is much slower still.

Each run stops exactly when ``n_messages`` records have been processed (the topic
holds exactly that many, so no run waits for records that will never come). One
warm-up run per client is thrown away; then ``repeats`` rounds run every
(client, style, mode) once each, interleaved so that background load on a shared
machine hits all of them alike. Figures are medians with min and max, and every
time is also divided by the no-commit floor (mode ``none``, plain) of the same
client in the same round: ratios are what survive a noisy machine, not seconds.

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

__all__ = [
    "ARTICLE_FORMAT",
    "ARTICLE_SECONDS",
    "BENCH_CLIENTS",
    "BENCH_MODES",
    "BenchResult",
    "RunStats",
    "plot_bench",
    "run_benchmark",
    "summarize_runs",
]

#: The line the article's loops print for every record.
ARTICLE_FORMAT = "topic = {},partition = {},offset = {},key = {},value = {}"
#: The article's own figures for 100,000 messages (its machine, its broker, printing every record).
ARTICLE_SECONDS: dict[str, float] = {"sync": 4.58, "async": 3.09}
#: The article's poll timeouts (ms): ``poll(timeout_ms=100)`` for sync and combined, 10 for async.
#: Not used for the runs: every run polls with :data:`POLL_MS`. A poll timeout only matters
#: while no record is ready, and with kafka-python 3.0.12 a 10 ms timeout that expires while
#: the group's SyncGroup answer is in flight can leave the consumer joined but with no
#: partitions, reading nothing, for good (seen on the course broker; notebook 06 explains).
ARTICLE_POLL_MS: dict[str, int] = {"sync": 100, "combined": 100, "async": 10}
#: Commit modes, in the order the table shows them (``none`` is the floor).
BENCH_MODES: tuple[str, ...] = ("none", "auto", "sync", "async", "combined", "sync_per_record")
BENCH_CLIENTS: tuple[str, ...] = ("kafka-python", "confluent-kafka")
STYLES: tuple[str, ...] = ("plain", "article")
POLL_MS = 100
#: A run whose consumer reads nothing for 10 s is retried with a fresh group (and listed in
#: ``params["retried"]``); see :data:`ARTICLE_POLL_MS` for why that can happen.
RETRIES = 4


# ---------------------------------------------------------------------------- one run


@dataclass
class RunStats:
    """One timed pass over the topic by one client in one commit mode (notebook 06)."""

    client: str
    mode: str
    style: str  # "plain" or "article" (every record printed)
    repeat: int  # 0, 1, ...; -1 for the discarded warm-up
    messages: int  # records processed
    seconds: float  # the consume loop: first poll to the last record's commit (excludes close)
    steady_seconds: float  # first record processed to last record processed (no join, no tail)
    commits: int  # commits sent while consuming (a close() commit is not counted)
    commit_errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # one per commit whose answer was seen
    error_kinds: dict[str, int] = field(default_factory=dict)  # "ErrorType: message" -> count

    @property
    def outside_seconds(self) -> float:
        """``seconds`` outside the steady part: group join and first fetch, final commit."""
        return max(self.seconds - self.steady_seconds, 0.0)


class _Stalled(RuntimeError):
    """A run that did not get all its records in time (retried with a fresh group)."""


class _Clock:
    """Per-record bookkeeping shared by both clients' handlers."""

    def __init__(self) -> None:
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


def _kp_run(mode: str, topic: str, n: int, *, style: str, stream: Any, max_poll_records: int,
            bootstrap: str, repeat: int) -> RunStats:
    """kafka-python, through :func:`helpers.modes.consume` (the course's loops)."""
    from .modes import consume
    from .topics import unique_name
    from .tracing import CommitTracer

    clock = _Clock()
    show = _printer(stream) if style == "article" else None

    def process(record: Any) -> None:
        clock.tick()
        if show is not None:
            show(record.topic, record.partition, record.offset, record.key, record.value)

    def on_commit(offsets: Any, result: Any) -> None:
        if show is not None:  # the article's _on_send_response
            ok = not isinstance(result, BaseException)
            print("偏移量提交成功" if ok else f"偏移量提交异常. {result}", file=stream)

    tracer = CommitTracer()
    res = consume(mode, topic, unique_name(f"bench-kp-{mode}"), max_records=n, idle_ms=10_000,
                  process=process, tracer=tracer, on_commit=on_commit, poll_ms=POLL_MS,
                  bootstrap=bootstrap, max_poll_records=max_poll_records)
    if res.processed != n:
        raise _Stalled(f"kafka-python {mode}: read {res.processed} of {n} records "
                       f"({res.stopped_because}); is the broker overloaded?")
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
    return RunStats("kafka-python", mode, style, repeat, res.processed, res.seconds,
                    clock.steady(res.seconds), len(attempts), sum(kinds.values()), lat, kinds)


# --- confluent-kafka loops: one per mode, parallel to helpers.modes.loop_* -------------
# consume(num_messages, timeout) returns a batch like kafka-python's poll(); commit()
# without arguments commits the positions of everything consume() has returned.
# on_commit (in the config) reports async and auto commits, and runs only inside
# consume()/poll()/close(), like kafka-python's commit_async callback.


def _ck_loop_batch(consumer: Any, handle: Callable[[Any], None], stop: Callable[[], bool],
                   poll_s: float, max_poll_records: int,
                   commit: Callable[[], None] | None) -> None:
    """none and auto (``commit=None``), sync and async per batch: ``commit`` is
    ``consumer.commit(asynchronous=False)`` or ``consumer.commit(asynchronous=True)``,
    wrapped to time it (notebook 06)."""
    while not stop():
        batch = consumer.consume(max_poll_records, poll_s)
        for msg in batch:
            handle(msg)
        if batch and commit is not None:
            commit()


def _ck_loop_sync_per_record(consumer: Any, handle: Callable[[Any], None],
                             stop: Callable[[], bool], poll_s: float, max_poll_records: int,
                             commit_msg: Callable[[Any], None]) -> None:
    """Sync commit after every record (notebook 06): ``commit_msg(msg)`` is
    ``consumer.commit(message=msg, asynchronous=False)``, timed; it stores offset + 1."""
    while not stop():
        for msg in consumer.consume(max_poll_records, poll_s):
            handle(msg)
            commit_msg(msg)  # commits msg.offset() + 1, and waits


def _ck_run(mode: str, topic: str, n: int, *, style: str, stream: Any, max_poll_records: int,
            bootstrap: str, repeat: int) -> RunStats:
    """confluent-kafka (librdkafka), same topic, same broker, same decoding work per record."""
    from confluent_kafka import Consumer, KafkaError, KafkaException

    from .topics import unique_name

    clock = _Clock()
    show = _printer(stream) if style == "article" else None
    lat: list[float] = []
    async_calls: deque[float] = deque()
    counts = {"commits": 0, "errors": 0, "auto": 0}
    kinds: dict[str, int] = {}

    def failed(err: Any) -> None:
        counts["errors"] += 1
        kinds[str(err)[:120]] = kinds.get(str(err)[:120], 0) + 1

    def on_commit(err: Any, partitions: Any) -> None:
        now = time.perf_counter()
        if async_calls:  # answers to one coordinator come back in the order sent
            lat.append((now - async_calls.popleft()) * 1000)
        if mode == "auto" and err is None:
            counts["auto"] += 1
        if err is not None and err.code() != KafkaError._NO_OFFSET:
            failed(err)
        if show is not None:
            print("偏移量提交成功" if err is None else f"偏移量提交异常. {err}", file=stream)

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": unique_name(f"bench-ck-{mode}"),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": mode == "auto",  # default interval: auto.commit.interval.ms=5000
        "on_commit": on_commit,
    })
    consumer.subscribe([topic])

    def handle(msg: Any) -> None:
        if msg.error() is not None:
            raise RuntimeError(f"confluent-kafka {mode}: {msg.error()}")
        clock.tick()
        # The same work kafka-python's course deserializers do: text key, JSON value.
        key = msg.key().decode("utf-8") if msg.key() is not None else None
        value = json.loads(msg.value()) if msg.value() is not None else None
        if show is not None:
            show(msg.topic(), msg.partition(), msg.offset(), key, value)

    def sync_commit(**kwargs: Any) -> None:
        t = time.perf_counter()
        try:
            consumer.commit(asynchronous=False, **kwargs)
        except KafkaException as e:
            if e.args[0].code() == KafkaError._NO_OFFSET:  # nothing new to store: no request
                return
            counts["commits"] += 1
            failed(e.args[0])
            raise
        counts["commits"] += 1
        lat.append((time.perf_counter() - t) * 1000)

    def async_commit() -> None:
        async_calls.append(time.perf_counter())
        consumer.commit(asynchronous=True)
        counts["commits"] += 1

    t0 = time.perf_counter()
    deadline = t0 + 120 + n / 200  # never hang: far above any sane run

    def stop() -> bool:
        now = time.perf_counter()
        if now > deadline or (clock.count == 0 and now - t0 > 10):
            raise _Stalled(f"confluent-kafka {mode}: read {clock.count} of {n} records")
        return clock.count >= n

    poll_s = POLL_MS / 1000
    try:
        if mode == "sync_per_record":
            _ck_loop_sync_per_record(consumer, handle, stop, poll_s, max_poll_records,
                                     lambda msg: sync_commit(message=msg))
        elif mode == "combined":
            try:
                _ck_loop_batch(consumer, handle, stop, poll_s, max_poll_records, async_commit)
            finally:
                sync_commit()
        else:
            commit = {"sync": sync_commit, "async": async_commit}.get(mode)
            _ck_loop_batch(consumer, handle, stop, poll_s, max_poll_records, commit)
        seconds = time.perf_counter() - t0
        commits = counts["auto"] if mode == "auto" else counts["commits"]
    finally:
        consumer.close()  # may deliver the last async callbacks (their latency includes close)
    return RunStats("confluent-kafka", mode, style, repeat, clock.count, seconds,
                    clock.steady(seconds), commits, counts["errors"], lat, kinds)


_RUNNERS: dict[str, Callable[..., RunStats]] = {"kafka-python": _kp_run, "confluent-kafka": _ck_run}


# ---------------------------------------------------------------------------- statistics


def _median_min_max(values: Sequence[float]) -> tuple[float, float, float]:
    return float(statistics.median(values)), float(min(values)), float(max(values))


def summarize_runs(runs: Iterable[RunStats]) -> Any:
    """The results table (a pandas DataFrame) from timed runs; warm-ups (repeat < 0) are skipped.

    One row per (client, style, mode), in :data:`BENCH_MODES` order: median, min and max
    of ``seconds``; ``ratio`` = median over rounds of ``seconds`` divided by the floor
    (client's ``none``/plain run) of the *same round* (with ``ratio_min``/``ratio_max``);
    the same for steady-state time, first record to last (``steady_ratio``); messages and commits per second
    from the median time; median commit latency over all the rows' commits. Notebook 06.
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
    return (table.sort_values(["_c", "_s", "_m"]).drop(columns=["_c", "_s", "_m"])
            .set_index(["client", "style", "mode"]))


def _latency_frame(runs: Iterable[RunStats]) -> Any:
    import pandas as pd

    rows = [{"client": r.client, "style": r.style, "mode": r.mode, "repeat": r.repeat,
             "latency_ms": x} for r in runs if r.repeat >= 0 for x in r.latencies_ms]
    return pd.DataFrame(rows, columns=["client", "style", "mode", "repeat", "latency_ms"])


# ---------------------------------------------------------------------------- the benchmark


@dataclass
class BenchResult:
    """What :func:`run_benchmark` measured (notebook 06).

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
    Shows tqdm progress bars unless ``progress=False``. Notebook 06.
    """
    from .modes import MODES

    if isinstance(n_messages, bool) or not isinstance(n_messages, int) or n_messages < 1:
        raise ValueError(f"n_messages must be a whole number >= 1, not {n_messages!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a whole number >= 1, not {repeats!r}")
    if isinstance(max_poll_records, bool) or not isinstance(max_poll_records, int) \
            or max_poll_records < 1:
        raise ValueError(f"max_poll_records must be a whole number >= 1, not {max_poll_records!r}")
    modes = _check_choice("mode", modes, BENCH_MODES)
    assert set(BENCH_MODES) == set(MODES), "helpers.modes and helpers.bench disagree on modes"
    clients = _check_choice("client", clients, BENCH_CLIENTS)
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
            bar.set_postfix_str(f"{'warm-up' if rep < 0 else f'round {rep + 1}'} "
                                f"{client} {mode} {style}")
            for attempt in range(RETRIES + 1):
                try:
                    runs.append(_RUNNERS[client](mode, topic, n_messages, style=style,
                                                 stream=stream, max_poll_records=max_poll_records,
                                                 bootstrap=bootstrap, repeat=rep))
                    break
                except _Stalled as e:  # a consumer that got no records: retry with a new group
                    retried.append(str(e))
                    if attempt == RETRIES:
                        raise
    bar.close()
    params = {"n_messages": n_messages, "repeats": repeats, "modes": list(modes),
              "clients": list(clients), "article_style": article_style,
              "partitions": partitions, "max_poll_records": max_poll_records, "topic": topic,
              "print_target": "os.devnull, text mode, line buffered", "retried": retried}
    return BenchResult(runs, summarize_runs(runs), _latency_frame(runs), params, machine)


# ---------------------------------------------------------------------------- plots


def plot_bench(result: BenchResult) -> tuple[Any, Any]:
    """Two matplotlib figures (notebook 06): time as a ratio to the floor (bars: median,
    error bars: min to max over rounds), and a box plot of commit latencies per mode."""
    import numpy as np

    from .plots import _figure

    table = result.table.reset_index()
    series = list(dict.fromkeys(zip(table["client"], table["style"])))
    modes = [m for m in BENCH_MODES if m in set(table["mode"])]
    fig_r, axes_r = _figure(figsize=(10, 4.5), layout="constrained")
    ax = axes_r[0, 0]
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(modes))
    for i, (client, style) in enumerate(series):
        sub = table[(table["client"] == client) & (table["style"] == style)].set_index("mode")
        sub = sub.reindex(modes)
        med = sub["ratio"].to_numpy(dtype=float)
        err = np.vstack([med - sub["ratio_min"].to_numpy(dtype=float),
                         sub["ratio_max"].to_numpy(dtype=float) - med])
        ax.bar(x + (i - (len(series) - 1) / 2) * width, med, width, yerr=err, capsize=3,
               label=f"{client}, {style}", hatch="//" if style == "article" else None)
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks(x, modes)
    ax.set_yscale("log")
    ax.set_ylabel("loop time / no-commit floor (log)")
    n = result.params.get("n_messages")
    ax.set_title(f"{n:,} messages: time relative to the same client's no-commit floor")
    ax.legend(fontsize=8)

    lat = result.latencies
    lat = lat[lat["style"] == "plain"] if len(lat) else lat
    fig_l, axes_l = _figure(figsize=(10, 4.5), layout="constrained")
    ax2 = axes_l[0, 0]
    labels, data = [], []
    for mode in modes:
        for client in BENCH_CLIENTS:
            vals = lat[(lat["mode"] == mode) & (lat["client"] == client)]["latency_ms"] \
                if len(lat) else []
            if len(vals):
                labels.append(f"{mode}\n{client}")
                data.append(np.asarray(vals, dtype=float))
    if data:
        ax2.boxplot(data, showfliers=True, flierprops={"markersize": 2})
        ax2.set_xticks(range(1, len(labels) + 1), labels, fontsize=7, rotation=20, ha="right")
        ax2.set_yscale("log")
    ax2.set_ylabel("commit latency, ms (log)")
    ax2.set_title("Commit latency (sync: the call; async: callback arrival - call; plain runs)")
    return fig_r, fig_l


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
