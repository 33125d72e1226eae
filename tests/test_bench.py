"""helpers.bench (notebook 07): statistics, loops, retries, the figure; then one small real run."""
from __future__ import annotations

import json
import math
import re

import pytest

import helpers.bench as bench
from helpers.bench import (
    BENCH_CLIENTS,
    BENCH_MODES,
    CK_LOOPS,
    BenchResult,
    RunStats,
    main,
    run_benchmark,
    summarize_runs,
)
from helpers.modes import MODES
from helpers.plots import plot_bench
from helpers.runner import Stalled


def _run(mode: str, repeat: int, seconds: float, *, client: str = "kafka-python",
         style: str = "plain", commits: int = 0, steady: float | None = None,
         lat: list[float] | None = None, messages: int = 1000) -> RunStats:
    return RunStats(client, mode, style, repeat, messages, seconds,
                    seconds - 0.1 if steady is None else steady, commits, 0, lat or [])


# ---------------------------------------------------------------- statistics, no broker


def test_floor_ratio_is_one_and_ratios_use_the_same_rounds_floor():
    runs = [
        _run("none", -1, 99.0),  # warm-up: ignored everywhere
        _run("none", 0, 1.0), _run("sync", 0, 2.0, commits=4, lat=[1.0, 3.0]),
        _run("none", 1, 2.0), _run("sync", 1, 3.0, commits=4, lat=[2.0]),
        _run("none", 2, 1.5), _run("sync", 2, 6.0, commits=4),
    ]
    t = summarize_runs(runs)
    floor = t.loc[("kafka-python", "plain", "none")]
    assert floor["ratio"] == floor["ratio_min"] == floor["ratio_max"] == 1.0
    assert floor["repeats"] == 3 and floor["seconds"] == 1.5
    sync = t.loc[("kafka-python", "plain", "sync")]
    # per-round ratios 2.0, 1.5, 4.0 -> median 2.0; NOT median(sync)/median(floor) = 3/1.5
    assert (sync["ratio"], sync["ratio_min"], sync["ratio_max"]) == (2.0, 1.5, 4.0)
    assert (sync["seconds"], sync["seconds_min"], sync["seconds_max"]) == (3.0, 2.0, 6.0)
    assert sync["msgs_per_s"] == pytest.approx(1000 / 3.0)
    assert sync["commits_per_s"] == pytest.approx(4 / 3.0)
    assert sync["commit_ms_p50"] == 2.0  # median of every latency of every round
    assert math.isnan(floor["commit_ms_p50"])


def test_each_client_is_divided_by_its_own_floor_and_article_rows_by_the_plain_floor():
    runs = [
        _run("none", 0, 2.0), _run("none", 0, 3.0, style="article"),
        _run("none", 0, 0.5, client="confluent-kafka"),
        _run("sync", 0, 1.0, client="confluent-kafka"),
    ]
    t = summarize_runs(runs)
    assert t.loc[("kafka-python", "article", "none"), "ratio"] == 1.5
    assert t.loc[("confluent-kafka", "plain", "sync"), "ratio"] == 2.0
    # rows come out in a fixed order: client, then plain before article, then BENCH_MODES
    assert list(t.index) == [("kafka-python", "plain", "none"), ("kafka-python", "article", "none"),
                             ("confluent-kafka", "plain", "none"),
                             ("confluent-kafka", "plain", "sync")]


def test_steady_ratio_and_outside_seconds():
    runs = [_run("none", 0, 1.0, steady=0.5), _run("sync_per_record", 0, 3.0, steady=2.0)]
    t = summarize_runs(runs)
    row = t.loc[("kafka-python", "plain", "sync_per_record")]
    assert row["steady_ratio"] == 4.0 and row["outside_seconds"] == 1.0
    assert runs[1].outside_seconds == 1.0


def test_missing_floor_gives_nan_not_a_wrong_ratio():
    t = summarize_runs([_run("sync", 0, 2.0)])
    assert math.isnan(t.loc[("kafka-python", "plain", "sync"), "ratio"])


def test_nothing_to_summarize_is_an_error():
    with pytest.raises(ValueError, match="no timed runs"):
        summarize_runs([_run("none", -1, 1.0)])


@pytest.mark.parametrize("kwargs, match", [
    ({"modes": ["sync", "fast"]}, "unknown mode.*none, auto, sync, sync_per_record, async, combined"),
    ({"clients": ["kafka-java"]}, "unknown client.*kafka-python, confluent-kafka"),
    ({"modes": []}, "at least one mode"),
    ({"n_messages": 0}, "n_messages"),
    ({"n_messages": 1.5}, "n_messages"),
    ({"repeats": 0}, "repeats"),
    ({"max_poll_records": 0}, "max_poll_records"),
])
def test_nonsense_parameters_are_rejected_before_touching_the_broker(kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_benchmark(**{"bootstrap": "127.0.0.1:1", "progress": False, **kwargs})


def test_command_line_rejects_unknown_mode(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--modes", "bogus", "--no-progress"])
    assert exc.value.code == 2
    assert "valid modes are: none, auto" in capsys.readouterr().err


def test_the_benchmark_takes_its_modes_from_helpers_modes_and_has_a_confluent_loop_for_each():
    assert BENCH_MODES == MODES
    assert set(CK_LOOPS) == set(MODES)
    assert BENCH_CLIENTS == ("kafka-python", "confluent-kafka")
    assert not hasattr(bench, "RETRIES") and not hasattr(bench, "_Stalled")  # one retry policy
    assert not hasattr(bench, "ARTICLE_POLL_MS")


# ---------------------------------------------------------------- confluent-kafka loops, no broker


class FakeCk:
    """Stands in for confluent_kafka.Consumer: hands out ``batches``, records the calls."""

    def __init__(self, batches):
        self.batches = list(batches)
        self.calls = []

    def consume(self, num_messages, timeout):
        self.calls.append(("consume", num_messages))
        return self.batches.pop(0) if self.batches else []

    def commit(self, message=None, asynchronous=True):
        self.calls.append(("commit", message, asynchronous))

    def close(self):
        self.calls.append(("close",))


def _drive(mode, batches):
    consumer, seen = FakeCk(batches), []
    total = sum(len(b) for b in batches)
    CK_LOOPS[mode](consumer, seen.append, lambda: len(seen) < total, max_poll_records=7)
    return consumer, seen


@pytest.mark.parametrize("mode, commits", [
    ("none", []), ("auto", []),
    ("sync", [("commit", None, False)] * 2),
    ("async", [("commit", None, True)] * 2),
    ("combined", [("commit", None, True)] * 2 + [("commit", None, False)]),
    ("sync_per_record", [("commit", m, False) for m in ("a", "b", "c")]),
])
def test_confluent_loops_keep_the_loop_contract(mode, commits):
    consumer, seen = _drive(mode, [["a", "b"], [], ["c"]])
    assert seen == ["a", "b", "c"]
    assert [c for c in consumer.calls if c[0] == "commit"] == commits
    assert consumer.calls[-1] == ("close",)  # the loop closes its consumer
    assert ("consume", 7) in consumer.calls  # the batch size is the caller's max_poll_records


def test_a_confluent_loop_closes_even_when_processing_fails():
    consumer = FakeCk([["a"]])

    def process(msg):
        raise ValueError("bad record")

    with pytest.raises(ValueError):
        CK_LOOPS["combined"](consumer, process, lambda: True)
    assert consumer.calls[-1] == ("close",)
    assert not [c for c in consumer.calls if c[0] == "commit"]  # no commit after a failure


# ---------------------------------------------------------------- retries, no broker


def test_a_stalled_confluent_run_is_retried_by_the_course_policy(monkeypatch):
    attempts = []

    def once(mode, topic, n, **kw):
        attempts.append(mode)
        if len(attempts) < 3:
            raise Stalled("read 0 of 10")
        return _run(mode, 0, 1.0, client="confluent-kafka")

    monkeypatch.setattr(bench, "_ck_once", once)
    stats, retries = bench._ck_run("sync", "t", 10, style="plain")
    assert retries == 2 and stats.client == "confluent-kafka" and len(attempts) == 3

    attempts.clear()
    monkeypatch.setattr(bench, "_ck_once", lambda *a, **k: (attempts.append(1), _stall())[1])
    with pytest.raises(Stalled):
        bench._ck_run("sync", "t", 10, style="plain")
    assert len(attempts) == 4  # with_retries' default: four attempts, then the last error


def _stall():
    raise Stalled("read 0 of 10")


def test_kafka_python_runs_go_through_consume_all(monkeypatch):
    from helpers.modes import ConsumeResult

    seen = {}

    def fake_consume_all(mode, topic, n, *, group_prefix, **kw):
        seen.update(mode=mode, n=n, group_prefix=group_prefix, kw=kw)
        return ConsumeResult(mode, n, 3, 0.5, "max_records"), 1

    monkeypatch.setattr(bench, "consume_all", fake_consume_all)
    stats, retries = bench._kp_run("sync", "t", 10, style="plain", stream=None,
                                   max_poll_records=5, bootstrap="b", repeat=0)
    assert retries == 1 and stats.seconds == 0.5 and stats.messages == 10
    assert seen["kw"]["max_poll_records"] == 5 and seen["kw"]["tracer"] is not None
    assert "poll_ms" not in seen["kw"]


def test_retries_are_listed_in_params(monkeypatch):
    def runner(mode, topic, n, *, style, stream, max_poll_records, bootstrap, repeat):
        return _run(mode, repeat, 1.0 if mode == "none" else 2.0), (1 if mode == "sync" else 0)

    monkeypatch.setattr(bench, "_RUNNERS", {"kafka-python": runner})
    monkeypatch.setattr(bench, "_machine", lambda: {"cpus": 1})
    result = run_benchmark(10, repeats=2, modes=["sync"], clients=["kafka-python"],
                           article_style=False, bootstrap="127.0.0.1:1", topic="t", progress=False)
    assert result.params["retried"] == ["round 1 kafka-python sync plain: 1 fresh group(s)",
                                        "round 2 kafka-python sync plain: 1 fresh group(s)"]
    assert result.row("kafka-python", "sync")["ratio"] == 2.0


# ---------------------------------------------------------------- the figure, no broker


def _fake_result(rounds):
    runs = []
    for rep in range(rounds):
        for client in BENCH_CLIENTS:
            runs += [_run("none", rep, 1.0 + rep / 10, client=client),
                     _run("sync", rep, 1.2, client=client, commits=2, lat=[0.8, 1.1]),
                     _run("sync_per_record", rep, 30.0 + rep, client=client, commits=1000,
                          lat=[1.0] * 5)]
    params = {"n_messages": 1000, "repeats": rounds}
    return BenchResult(runs, summarize_runs(runs), bench._latency_frame(runs), params, {})


def _labels(axis):
    return [t.get_text() for t in axis.get_ticklabels() if t.get_text()]


@pytest.mark.parametrize("rounds", [1, 3])
def test_plot_bench_labels_ratios_plainly_and_shows_the_spread(rounds):
    fig_r, fig_l = plot_bench(_fake_result(rounds))
    fig_r.canvas.draw()
    ax = fig_r.axes[0]
    labels = _labels(ax.yaxis)
    assert "1×" in labels and all(re.fullmatch(r"\d+(\.\d+)?×", lab) for lab in labels), labels
    assert not [t for t in ax.yaxis.get_minorticklabels() if t.get_text()]
    title = ax.get_title()
    whiskers = [c for c in ax.containers if getattr(c, "has_yerr", False)]
    if rounds == 1:
        assert "1 round: no spread" in title and not whiskers
    else:
        assert f"{rounds} rounds" in title and "min to max" in title and whiskers
    assert [t.get_text() for t in ax.get_xticklabels()] == ["none", "sync", "sync_per_record"]
    fig_l.canvas.draw()
    assert all("10^" not in lab and "$" not in lab for lab in _labels(fig_l.axes[0].yaxis))


def test_plot_bench_refuses_a_mode_helpers_modes_does_not_know():
    result = _fake_result(1)
    result.table = result.table.rename(index={"sync": "turbo"}, level="mode")
    with pytest.raises(ValueError, match="turbo"):
        plot_bench(result)


# ---------------------------------------------------------------- one small real run


SMALL = 1000  # messages: per-record commits are most of this run's time


@pytest.fixture(scope="module")
def small(kafka):
    return run_benchmark(SMALL, repeats=1, modes=("sync", "sync_per_record"),
                         bootstrap=kafka.bootstrap, progress=False)


@pytest.mark.broker
def test_small_run_structure_and_sanity(small):
    t = small.table
    expected = {(c, s, m) for c in BENCH_CLIENTS for s in ("plain", "article")
                for m in ("none", "sync", "sync_per_record")}
    assert set(t.index) == expected  # "none" (the floor) was added
    for client in BENCH_CLIENTS:
        floor = t.loc[(client, "plain", "none")]
        assert floor["ratio"] == 1.0 and floor["commits"] == 0
        for style in ("plain", "article"):
            per_record = t.loc[(client, style, "sync_per_record")]
            assert per_record["commits"] == SMALL  # one commit per message
            sync = t.loc[(client, style, "sync")]
            assert SMALL / 500 <= sync["commits"] <= SMALL / 100  # per batch: a handful
    assert (t["messages"] == SMALL).all()
    assert (t["msgs_per_s"] > 0).all() and (t["seconds"] > 0).all()
    assert (t["commit_errors"] == 0).all()
    # one warm-up per client, then one round of everything
    assert sum(r.repeat == -1 for r in small.runs) == len(BENCH_CLIENTS)
    assert len(small.runs) == len(BENCH_CLIENTS) + len(expected)
    assert small.params["retried"] == [] or all("fresh group" in r for r in small.params["retried"])


@pytest.mark.broker
def test_small_run_latencies_and_outputs(small, tmp_path):
    lat = small.latencies
    assert set(lat.columns) >= {"client", "style", "mode", "latency_ms"}
    for client in BENCH_CLIENTS:
        per_record = lat[(lat["client"] == client) & (lat["mode"] == "sync_per_record")
                         & (lat["style"] == "plain")]
        assert len(per_record) == SMALL and (per_record["latency_ms"] > 0).all()
    paths = small.save(tmp_path / "bench")
    data = json.loads(paths["json"].read_text())
    assert data["params"]["n_messages"] == SMALL and len(data["table"]) == len(small.table)
    assert paths["ratios"].stat().st_size > 1000 and paths["latency"].stat().st_size > 1000
    assert small.row("kafka-python", "none")["ratio"] == 1.0
    with pytest.raises(KeyError, match="no row"):
        small.row("kafka-python", "auto")
