"""helpers.groups (notebook 09): Kafka's own kafka-consumer-groups tool, the admin API beside it,
the __consumer_offsets decoder against Kafka's formatter, and lag over time."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

import helpers as hp
from helpers import groups, plots, widgets
from helpers.broker import kafka_version
from helpers.inspection import offsets_topic_snapshot
from helpers.topics import admin_client

# ---------------------------------------------------------------- parsing the tool's output (no broker)

DESCRIBE = """
GROUP            TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID                                                        HOST            CLIENT-ID
ops-group-a6b6f2 ops-bec370      0          10              12              2               course-ops-1-142b0a38 /127.0.0.1      course-ops-1
ops-group-a6b6f2 ops-bec370      1          -               12              -               -               -               -
"""  # noqa: E501 (the tool's output, verbatim)

REFUSED = """
Error: Assignments can only be reset if the group 'g' is inactive, but the current state is Stable.

GROUP                          TOPIC                          PARTITION  NEW-OFFSET
"""

DELETE = """
Error: Encountered some partition-level error, see the follow-up details.

TOPIC           PARTITION  STATUS
t               0          Error: org.apache.kafka.common.errors.GroupSubscribedToTopicException: Deleting offsets of a topic is forbidden while the consumer group is actively subscribed to it.
t               1          Successful
"""  # noqa: E501 (the tool's output, verbatim)

STATE = """
GROUP           COORDINATOR (ID)          ASSIGNMENT-STRATEGY  STATE                #MEMBERS
smg-09b0f9      127.0.0.1:48495  (1)      range                Stable               1
"""


def test_describe_table_parses_numbers_and_dashes():
    (df,) = groups.parse_tables(DESCRIBE)
    assert list(df.columns) == list(groups.TOOL_DESCRIBE_COLUMNS)
    assert df["PARTITION"].tolist() == [0, 1]
    assert df["CURRENT-OFFSET"].iloc[0] == 10 and df["CURRENT-OFFSET"].isna().iloc[1]
    assert str(df["LAG"].dtype) == "Int64"
    assert df["HOST"].tolist() == ["/127.0.0.1", "-"]


def test_refusal_is_an_error_line_and_an_empty_table():
    run = groups.ToolRun("kafka-consumer-groups.sh", ["--reset-offsets"], "h:1", 0, REFUSED, "", 0.1)
    assert run.errors == ["Assignments can only be reset if the group 'g' is inactive, but the current "
                          "state is Stable."]
    assert not run.ok
    df = run.table()
    assert list(df.columns) == ["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"] and df.empty
    assert run.by_partition("NEW-OFFSET") == {}


def test_the_last_column_keeps_its_spaces_and_the_coordinator_is_one_column():
    (df,) = groups.parse_tables(DELETE)
    assert df["STATUS"].iloc[0].startswith("Error: org.apache.kafka.common.errors.GroupSubscribedToTopic")
    assert df["STATUS"].iloc[0].endswith("actively subscribed to it.")
    assert df["STATUS"].iloc[1] == "Successful"
    (st,) = groups.parse_tables(STATE)
    assert list(st.columns) == ["GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"]
    assert st.iloc[0].tolist()[:4] == ["smg-09b0f9", "127.0.0.1:48495 (1)", "range", "Stable"]


def test_no_table_and_the_terminal_view():
    run = groups.ToolRun("kafka-consumer-groups.sh", ["--list"], "h:1", 0, "a\nb\n", "[WARN] careful\n", 1.23)
    assert run.tables() == [] and run.table().empty
    assert run.lines == ["a", "b"] and run.warnings == ["careful"]
    text = str(run)
    assert text.startswith("$ kafka-consumer-groups.sh --bootstrap-server h:1 --list\na\nb\n[WARN] careful")
    assert "(exit code 0, 1.2 s)" in text


def test_datetimes_for_the_tool_are_utc_milliseconds():
    when = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert groups.tool_datetime(when) == "2024-05-06T05:08:09.123Z"
    assert groups.to_millis(groups.from_millis(1_700_000_000_123)) == 1_700_000_000_123
    assert groups.to_millis(when) == int(datetime(2024, 5, 6, 5, 8, 9, 123000, tzinfo=timezone.utc)
                                         .timestamp() * 1000)
    with pytest.raises(ValueError, match="timezone"):
        groups.tool_datetime(datetime(2024, 1, 1))


def test_same_table_ignores_row_order_and_na_spelling():
    import pandas as pd

    a = pd.DataFrame({"P": pd.array([0, 1], dtype="Int64"), "X": ["-", "a"]})
    b = pd.DataFrame({"P": pd.array([1, 0], dtype="Int64"), "X": ["a", None]})
    assert groups.same_table(a, b)
    assert not groups.same_table(a, b.assign(X=["b", None]))
    assert not groups.same_table(a, b.iloc[:1])


def test_operation_log_labels_by_time():
    ops = groups.OperationLog()
    with ops.step("first"):
        pass
    t = ops.steps[0][1]
    labelled = ops.label([{"timestamp": t}, {"timestamp": t - 10_000}])
    assert [r["operation"] for r in labelled] == ["first", "-"]


def test_plot_lag_draws_log_end_committed_and_lag():
    run = groups.LagRun("t", "g", 40.0, 1.5, samples=[
        {"t": 0.2 * i, "log_end": min(60, 8 * i), "committed": min(60, 4 * i),
         "lag": min(60, 8 * i) - min(60, 4 * i), "process_ms": 50.0} for i in range(20)],
        produced=60, consumed=60, produce_end_t=1.5, caught_up_t=3.8)
    fig = plots.plot_lag(run)
    top, bottom = fig.axes
    labels = top.get_legend_handles_labels()[1]
    for expected in ("log end (produced)", "committed (processed)", "lag", "producer stops",
                     "caught up (lag 0)"):
        assert expected in labels
    assert "peak 28" in [t.get_text() for t in bottom.texts]  # 8i - 4i, capped at 60: 56 - 28


def test_lag_lab_headless_with_a_stand_in_experiment():
    calls = []

    def fake(topic, group, *, rate_per_s, produce_s, process_ms, on_sample, **kw):
        run = groups.LagRun(topic, group, rate_per_s, produce_s)
        for i in range(3):
            run.samples.append({"t": i * 0.5, "log_end": 10 * i, "committed": 5 * i, "lag": 5 * i,
                                "process_ms": process_ms()})
            on_sample(run)
        run.produced = run.consumed = 20
        run.stopped_because, run.seconds = "caught up", 1.0
        calls.append({"rate": rate_per_s, "produce_s": produce_s, "process_ms": process_ms(), **kw})
        return run

    lab = widgets.lag_lab(background=False, experiment=fake, new_topic=lambda: ("t-1", "g-1"), max_s=9)
    lab.process_ms.value = 70
    lab.rate.value = 12
    lab.produce_s.value = 2.5
    lab.run_button.click()
    assert calls == [{"rate": 12.0, "produce_s": 2.5, "process_ms": 70.0, "max_s": 9}]
    assert lab.runs == 1 and lab.last_error is None
    assert lab.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "caught up" in lab.status.value and "peak lag 10" in lab.status.value
    # in the background (what a click does in JupyterLab), then wait for it
    lab.background = True
    lab.run_button.click()
    assert lab.wait(30).topic == "t-1" and lab.runs == 2


def test_lag_lab_shows_a_failure_in_the_widget():
    def broken(*a, **k):
        raise RuntimeError("no broker here")

    lab = widgets.lag_lab(background=False, experiment=broken, new_topic=lambda: ("t", "g"))
    lab.run_button.click()
    assert isinstance(lab.last_error, RuntimeError) and "no broker here" in lab.status.value
    assert not lab.run_button.disabled


# ---------------------------------------------------------------- the tool on the broker


def _group_with_member(kafka, n_per_partition=10, consume=12):
    """A fresh 2-partition topic and a group whose member consumed `consume` records and committed."""
    topic = hp.create_topic(hp.unique_name("tg"), 2, bootstrap=kafka.bootstrap)
    for p in range(2):
        hp.seed_messages(topic, n_per_partition, start=p * n_per_partition, partition=p,
                         bootstrap=kafka.bootstrap)
    group = hp.unique_name("tg-group")
    member = hp.make_consumer(topic, group_id=group, bootstrap=kafka.bootstrap, enable_auto_commit=False,
                              max_poll_interval_ms=600_000)
    got, deadline = 0, time.monotonic() + 30
    while got < consume:
        assert time.monotonic() < deadline, "the member did not read its records"
        got += sum(len(r) for r in member.poll(timeout_ms=500, max_records=consume - got).values())
    member.commit()
    return topic, group, member


@pytest.mark.broker
def test_the_tool_starts_quickly_and_prints_only_its_output(kafka):
    groups.kafka_consumer_groups("--version", bootstrap=kafka.bootstrap)  # makes the class-data archive
    run = groups.kafka_consumer_groups("--version", bootstrap=kafka.bootstrap)
    assert run.stdout.strip() == kafka_version()
    assert run.returncode == 0 and run.stderr == ""
    assert groups.history[-1] is run
    assert run.seconds < 15, f"one JVM start took {run.seconds:.1f} s"
    with pytest.raises(groups.ToolError, match="did not finish within"):
        groups.kafka_consumer_groups("--list", bootstrap=kafka.bootstrap, timeout_s=0.05)


@pytest.mark.broker
def test_tool_and_admin_api_describe_the_same_group(kafka):
    topic, group, member = _group_with_member(kafka)
    try:
        described = groups.kafka_consumer_groups("--describe", "--group", group, bootstrap=kafka.bootstrap)
        members = groups.kafka_consumer_groups("--describe", "--group", group, "--members",
                                               bootstrap=kafka.bootstrap)
        state = groups.kafka_consumer_groups("--describe", "--group", group, "--state",
                                             bootstrap=kafka.bootstrap)
        with admin_client(kafka.bootstrap) as admin:
            assert groups.same_table(described.table(), groups.describe_offsets(admin, group))
            assert groups.same_table(members.table(), groups.describe_members(admin, group))
            assert groups.same_table(state.table().drop(columns="COORDINATOR (ID)"),
                                     groups.describe_state(admin, group))
            assert described.by_partition("CURRENT-OFFSET") == groups.committed_offsets(admin, group, topic)
        assert sum(described.by_partition("CURRENT-OFFSET").values()) == 12
        assert state.table()["STATE"].tolist() == ["Stable"]
    finally:
        member.close()


@pytest.mark.broker
def test_refused_while_active_then_every_dry_run_matches_the_admin_plan(kafka):
    topic, group, member = _group_with_member(kafka)
    tps = [TopicPartition(topic, p) for p in range(2)]
    with admin_client(kafka.bootstrap) as admin:
        before = groups.committed_offsets(admin, group, topic)
        refused = groups.kafka_consumer_groups("--reset-offsets", "--group", group, "--topic", topic,
                                               "--to-earliest", "--execute", bootstrap=kafka.bootstrap)
        assert refused.returncode == 0 and "inactive" in refused.errors[0] and "Stable" in refused.errors[0]
        assert groups.committed_offsets(admin, group, topic) == before
        member.close()
        assert groups.wait_for_state(admin, group) == "Empty"
        when = datetime.now(timezone.utc) - timedelta(days=1)  # before every record: the log start
        cases = [
            (["--to-earliest"], {"to_earliest": True}),
            (["--to-latest"], {"to_latest": True}),
            (["--to-datetime", groups.tool_datetime(when)], {"to_datetime": when}),
            (["--shift-by", "-3"], {"shift_by": -3}),
            (["--shift-by", "1000"], {"shift_by": 1000}),
            (["--to-offset", "4"], {"to_offset": 4}),
        ]
        for args, kw in cases:
            dry = groups.kafka_consumer_groups("--reset-offsets", "--group", group, "--topic", topic, *args,
                                               "--dry-run", bootstrap=kafka.bootstrap)
            plan = {tp.partition: o for tp, o in groups.reset_plan(admin, group, tps, **kw).items()}
            assert dry.by_partition("NEW-OFFSET") == plan, args
        assert groups.committed_offsets(admin, group, topic) == before  # dry runs wrote nothing
        with pytest.raises(ValueError, match="exactly one"):
            groups.reset_plan(admin, group, tps, to_earliest=True, shift_by=1)


@pytest.mark.broker
def test_broker_config_reads_the_retention_default(kafka):
    with admin_client(kafka.bootstrap) as admin:
        got = groups.broker_config(admin, "offsets.retention.minutes", "offsets.retention.check.interval.ms")
    assert got["offsets.retention.minutes"] == {"value": "10080", "source": "DEFAULT_CONFIG"}
    assert got["offsets.retention.check.interval.ms"]["value"] == "600000"


# ---------------------------------------------------------------- the decoder against Kafka's formatter


@pytest.mark.broker
def test_decoder_agrees_with_kafkas_offsets_formatter(kafka):
    """notebook 01's decoder and Kafka's OffsetsMessageFormatter, on the same records: group, topic,
    partition, offset, leader epoch, metadata, timestamps, topic id and tombstones, in log order."""
    snapshot = offsets_topic_snapshot(kafka.bootstrap)
    topic = hp.create_topic(hp.unique_name("fmt"), 2, bootstrap=kafka.bootstrap)
    for p in range(2):
        hp.seed_messages(topic, 8, start=8 * p, partition=p, bootstrap=kafka.bootstrap)
    group = hp.unique_name("fmt-group")
    tps = [TopicPartition(topic, p) for p in range(2)]
    # 1. a member commits with metadata (leader epoch from its fetches)
    consumer = hp.make_consumer(topic, group_id=group, bootstrap=kafka.bootstrap, enable_auto_commit=False)
    deadline = time.monotonic() + 30
    read = 0
    while read < 16 and time.monotonic() < deadline:
        read += sum(len(r) for r in consumer.poll(timeout_ms=300).values())
    assert read == 16
    consumer.commit()  # its positions, with the leader epoch of the records it fetched
    consumer.commit({tps[0]: OffsetAndMetadata(5, "notebook 09 — métadonnées ✓", -1),
                     tps[1]: OffsetAndMetadata(8, "", -1)})
    consumer.close(autocommit=False)
    with admin_client(kafka.bootstrap) as admin:
        groups.wait_for_state(admin, group)
        # 2. the tool resets (no metadata, no epoch), 3. the admin API commits, 4. the tool deletes
        assert groups.kafka_consumer_groups("--reset-offsets", "--group", group, "--topic", topic,
                                            "--to-earliest", "--execute", bootstrap=kafka.bootstrap).ok
        admin.alter_group_offsets(group, {tps[1]: OffsetAndMetadata(3, "set by admin", -1)})
        deleted = groups.kafka_consumer_groups("--delete-offsets", "--group", group, "--topic", f"{topic}:0",
                                               bootstrap=kafka.bootstrap)
        assert deleted.table()["STATUS"].tolist() == ["Successful"]
    check = groups.formatter_vs_decoder(group, bootstrap=kafka.bootstrap, since=snapshot)
    assert check.mismatches() == [], check.side_by_side().to_string()
    assert check.agree
    rows = check.decoder_rows
    # commit(), commit(with metadata), the tool's reset, the admin API's commit, the tool's delete
    assert sorted((r["partition"], r["offset"] if r["offset"] is not None else -1, r["tombstone"])
                  for r in rows) == sorted([(0, 8, False), (1, 8, False), (0, 5, False), (1, 8, False),
                                            (0, 0, False), (1, 0, False), (1, 3, False), (0, -1, True)])
    assert rows[-1]["tombstone"] and rows[-1]["partition"] == 0 and rows[-1]["value_version"] is None
    assert {r["metadata"] for r in rows} == {"", "notebook 09 — métadonnées ✓", "set by admin", None}
    assert {r["leader_epoch"] for r in rows} == {0, -1, None}  # fetched epoch; none (-1); tombstone
    assert all(r["topic_id"] for r in rows if not r["tombstone"])
    assert len(check.raw) == len(rows) and check.raw[-1]["value"] is None
    assert sum(1 for r in check.formatter_rows if r["tombstone"]) == 1
    # read from the partition's first record instead: the same records of this group
    _run, everything = groups.offsets_formatter_records(check.partition, bootstrap=kafka.bootstrap)
    assert [r for r in everything if r["key"]["data"]["group"] == group] == check.raw


@pytest.mark.broker
def test_formatter_records_reject_a_bad_partition(kafka):
    with pytest.raises(ValueError, match="partition"):
        groups.offsets_formatter_records(-1, bootstrap=kafka.bootstrap)


# ---------------------------------------------------------------- lag over time


@pytest.mark.broker
def test_a_slow_consumer_falls_behind_and_catches_up(kafka):
    topic = hp.create_topic(hp.unique_name("lag"), 2, bootstrap=kafka.bootstrap)
    seen = []
    run = groups.run_lag_experiment(topic, hp.unique_name("lag-group"), rate_per_s=60, produce_s=1.0,
                                    process_ms=40, max_s=20, redraw_s=0.3, bootstrap=kafka.bootstrap,
                                    on_sample=lambda r: seen.append(len(r.samples)))
    assert run.stopped_because == "caught up", run.stopped_because
    assert run.produced == run.consumed == 60
    assert run.final_lag == 0 and run.peak_lag >= 15
    assert run.caught_up_t > run.produce_end_t
    assert seen and seen == sorted(seen)
    lags = run.table()["lag"].tolist()
    assert lags.index(run.peak_lag) > 0 and lags[-1] == 0


@pytest.mark.broker
def test_lag_lab_runs_on_the_broker_and_its_slider_acts_during_a_run(kafka):
    lab = widgets.lag_lab(process_ms=30, rate_per_s=40, produce_s=1.5, max_s=20, bootstrap=kafka.bootstrap)
    lab.process_ms.value = 60  # slower than the producer
    lab.run_button.click()  # in a background thread, as in JupyterLab
    deadline = time.monotonic() + 20
    while not lab.status.value.startswith("t = ") or float(lab.status.value.split()[2]) < 1.0:
        assert time.monotonic() < deadline and lab.thread.is_alive(), lab.status.value
        time.sleep(0.05)
    lab.process_ms.value = 5  # the consumer reads the slider before every record
    run = lab.wait(40)
    assert lab.last_error is None, lab.last_error
    assert run.stopped_because == "caught up" and run.consumed == run.produced == 60
    assert [s["process_ms"] for s in run.samples][0] == 60.0 and run.samples[-1]["process_ms"] == 5.0
    assert lab.image.value[:4] == b"\x89PNG" and lab.runs == 1 and not lab.run_button.disabled


def test_expiry_and_deletion_write_the_same_tombstone_in_the_brokers_jar():
    """Notebook 09 says so in prose (a week of retention cannot run in a notebook): in Kafka's
    group coordinator, deleting offsets and expiring them both append
    GroupCoordinatorRecordHelpers.newOffsetCommitTombstoneRecord. Checked in the pinned jar's bytecode."""
    import re
    import shutil
    import subprocess

    from helpers.broker import _jar_dir

    javap = shutil.which("javap")
    jar = _jar_dir() / f"kafka-group-coordinator-{kafka_version()}.jar"
    if javap is None or not jar.exists():
        pytest.skip("needs javap (a JDK) and the broker's jars")
    out = subprocess.run([javap, "-c", "-p", "-cp", str(jar),
                          "org.apache.kafka.coordinator.group.OffsetMetadataManager"],
                         capture_output=True, text=True, check=True).stdout
    methods = re.split(r"\n  (?=\S)", out)

    def calls(name: str) -> str:
        """The bytecode of every method (lambdas included) whose name contains ``name``."""
        pattern = rf"[\w$]*{re.escape(name)}[\w$]*\("
        return "\n".join(m for m in methods if re.search(pattern, m.splitlines()[0]))

    tombstone = "GroupCoordinatorRecordHelpers.newOffsetCommitTombstoneRecord"
    assert tombstone in calls("$deleteOffsets$")                 # OffsetDelete (--delete-offsets)
    assert tombstone in calls("appendOffsetCommitTombstone")     # ... which expiry uses:
    assert "appendOffsetCommitTombstone" in calls("$cleanupExpiredOffsets$")
    assert "offsetsRetentionMs" in calls("$cleanupExpiredOffsets$")


def test_the_formatter_is_asked_again_patiently_when_it_timed_out_before_its_first_record(monkeypatch):
    record = '{"key":{"type":1,"data":{"group":"g","topic":"t","partition":0}},"value":null}'
    said = [("", "org.apache.kafka.common.errors.TimeoutException: null\nProcessed a total of 0 messages"),
            (record, "Processed a total of 1 messages")]
    waits = []

    def fake_run(cls, args, *, bootstrap, timeout_s):
        waits.append(int(args[args.index("--timeout-ms") + 1]))
        out, err = said[len(waits) - 1]
        return groups.ToolRun("kafka-console-consumer", args, bootstrap, 0, out, err, 0.1)

    monkeypatch.setattr(groups, "_run_java", fake_run)
    run, printed = groups.offsets_formatter_records(3, bootstrap="b", timeout_ms=1500)
    assert waits == [1500, 15_000] and printed[0]["key"]["data"]["group"] == "g"
    # any other failure, or a second time-out, is raised with what the tool said
    said[1] = ("", "org.apache.kafka.common.errors.TimeoutException: null")
    waits.clear()
    with pytest.raises(groups.ToolError, match="TimeoutException"):
        groups.offsets_formatter_records(3, bootstrap="b")
    assert len(waits) == 2
    said[0] = ("", "java.lang.IllegalStateException: broken")
    waits.clear()
    with pytest.raises(groups.ToolError, match="broken"):
        groups.offsets_formatter_records(3, bootstrap="b")
    assert len(waits) == 1
