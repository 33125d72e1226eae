"""helpers.bench (notebook 06): the statistics on made-up timings, then one small real run."""
from __future__ import annotations

import json
import math

import pytest

from helpers.bench import BENCH_CLIENTS, BENCH_MODES, RunStats, main, run_benchmark, summarize_runs


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
    ({"modes": ["sync", "fast"]}, "unknown mode.*none, auto, sync, async, combined, sync_per_record"),
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


def test_the_benchmark_covers_every_mode_of_helpers_modes():
    from helpers.modes import MODES

    assert set(BENCH_MODES) == set(MODES)
    assert BENCH_CLIENTS == ("kafka-python", "confluent-kafka")


# ---------------------------------------------------------------- one small real run


@pytest.fixture(scope="module")
def small(kafka):
    return run_benchmark(2000, repeats=1, modes=("sync", "sync_per_record"),
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
            assert per_record["commits"] == 2000  # one commit per message
            sync = t.loc[(client, style, "sync")]
            assert 1 <= sync["commits"] <= 2000 / 100  # per batch: a handful
    assert (t["messages"] == 2000).all()
    assert (t["msgs_per_s"] > 0).all() and (t["seconds"] > 0).all()
    assert (t["commit_errors"] == 0).all()
    # one warm-up per client, then one round of everything
    assert sum(r.repeat == -1 for r in small.runs) == len(BENCH_CLIENTS)
    assert len(small.runs) == len(BENCH_CLIENTS) + len(expected)


@pytest.mark.broker
def test_small_run_latencies_and_outputs(small, tmp_path):
    lat = small.latencies
    assert set(lat.columns) >= {"client", "style", "mode", "latency_ms"}
    for client in BENCH_CLIENTS:
        per_record = lat[(lat["client"] == client) & (lat["mode"] == "sync_per_record")
                         & (lat["style"] == "plain")]
        assert len(per_record) == 2000 and (per_record["latency_ms"] > 0).all()
    paths = small.save(tmp_path / "bench")
    data = json.loads(paths["json"].read_text())
    assert data["params"]["n_messages"] == 2000 and len(data["table"]) == len(small.table)
    assert paths["ratios"].stat().st_size > 1000 and paths["latency"].stat().st_size > 1000
    assert small.row("kafka-python", "none")["ratio"] == 1.0
    with pytest.raises(KeyError, match="no row"):
        small.row("kafka-python", "auto")
