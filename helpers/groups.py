"""Operate a consumer group's offsets, as people do in production (notebook 09).

Three things, each checked against the broker by notebook 09 and ``tests/test_groups.py``:

* **Kafka's own tool.** :func:`kafka_consumer_groups` runs ``kafka-consumer-groups`` (the
  class ``ConsumerGroupCommand`` of the ``kafka-tools`` jar that the embedded broker's jar
  folder already holds) with the machine's Java, and returns a :class:`ToolRun`: the command
  line, what the tool printed, and its tables parsed into DataFrames. The tool reports most
  refusals on stdout with exit code 0 (``Error: Assignments can only be reset if the group
  ... is inactive``); :attr:`ToolRun.errors` collects them, nothing is raised.
* **The same with kafka-python's admin API** (``KafkaAdminClient``): :func:`describe_offsets`,
  :func:`describe_members` and :func:`describe_state` build the tool's tables from
  ``list_group_offsets``, ``list_partition_offsets`` and ``describe_groups``;
  :func:`reset_plan` computes what ``--reset-offsets --dry-run`` will print, with the tool's
  rules (clamped to the log, a datetime after the last record means the log end).
* **Lag over time.** :func:`run_lag_experiment` runs a producer at a fixed rate and a slow
  consumer (a processing time per record) in threads, and samples the group's lag from the
  broker the way a monitoring system does (log end minus committed offset).

And :func:`formatter_vs_decoder` checks the course's own ``__consumer_offsets`` decoder
(:mod:`helpers.inspection`, notebook 01) against Kafka's ``OffsetsMessageFormatter``, read
with ``kafka-console-consumer`` on the same records.

Each tool run starts a JVM: about 1 s, 0.6 s once a class-data-sharing archive of the
tool's classes exists (made by the first run, kept in ``.course/tools/``).
"""
from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .broker import _broker_file, _java, _java_ident, course_home, ensure_broker, fetch_jars, kafka_version

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from kafka import KafkaAdminClient

__all__ = [
    "TOOL_CLASS",
    "CONSOLE_CONSUMER_CLASS",
    "OFFSETS_FORMATTER_CLASS",
    "TOOL_DESCRIBE_COLUMNS",
    "ToolError",
    "ToolRun",
    "kafka_consumer_groups",
    "parse_tables",
    "tool_datetime",
    "to_millis",
    "from_millis",
    "seed_before_and_after",
    "history",
    "committed_offsets",
    "describe_offsets",
    "describe_members",
    "describe_state",
    "reset_plan",
    "wait_for_state",
    "broker_config",
    "same_table",
    "OperationLog",
    "COMPARED_FIELDS",
    "FormatterCheck",
    "offsets_formatter_records",
    "formatter_vs_decoder",
    "LagRun",
    "lag_sample",
    "run_lag_experiment",
]

#: ``bin/kafka-consumer-groups.sh`` runs this class (kafka-tools jar).
TOOL_CLASS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
#: ``bin/kafka-console-consumer.sh`` runs this class (kafka-tools jar).
CONSOLE_CONSUMER_CLASS = "org.apache.kafka.tools.consumer.ConsoleConsumer"
#: The console consumer's formatter for ``__consumer_offsets`` (offset commits only).
OFFSETS_FORMATTER_CLASS = "org.apache.kafka.tools.consumer.OffsetsMessageFormatter"
#: The columns of ``kafka-consumer-groups --describe --group G`` (classic groups).
TOOL_DESCRIBE_COLUMNS = ("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                         "CONSUMER-ID", "HOST", "CLIENT-ID")
_SCRIPT = {TOOL_CLASS: "kafka-consumer-groups.sh", CONSOLE_CONSUMER_CLASS: "kafka-console-consumer.sh"}
#: Columns the tool prints as whole numbers ("-" when there is none).
_NUMERIC = {"PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "NEW-OFFSET", "#PARTITIONS",
            "#MEMBERS", "CURRENT-EPOCH", "TARGET-EPOCH"}
# Fast start for a short-lived JVM: no optimising JIT, the simplest collector, no JVM log lines.
_JVM_OPTS = ["-Xms32m", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xlog:disable",
             "-Xlog:all=off", "-Djava.awt.headless=true"]


class ToolError(RuntimeError):
    """A Kafka tool could not be run, or did not finish in time (notebook 09)."""


#: Every :class:`ToolRun` of this process, in order (notebook 09 counts its JVM starts).
history: list[ToolRun] = []


# ---------------------------------------------------------------- running the tool


@functools.lru_cache(maxsize=1)
def _java_cached() -> str:
    return _java()  # checks the version once (it starts a JVM)


def _cds_archive(java: str) -> Path:
    """Where the class-data-sharing archive for this Java and Kafka version lives."""
    return course_home() / ".course" / "tools" / f"kafka-tools-{kafka_version()}-{_java_ident(java)}.jsa"


def _java_command(main_class: str) -> tuple[list[str], tuple[Path, Path] | None]:
    """The JVM command line for ``main_class``, and (temporary file, archive) if this run makes one."""
    java = _java_cached()
    jars = fetch_jars()
    log4j = _broker_file("tools-log4j2.properties")
    archive = _cds_archive(java)
    cmd = [java, *_JVM_OPTS]
    making: tuple[Path, Path] | None = None
    if archive.exists():
        # a stale or damaged archive is ignored by the JVM (silently: its logging is off)
        cmd.append(f"-XX:SharedArchiveFile={archive}")
    else:
        archive.parent.mkdir(parents=True, exist_ok=True)
        tmp = archive.with_name(f"{archive.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        cmd.append(f"-XX:ArchiveClassesAtExit={tmp}")
        making = (tmp, archive)
    cmd += [f"-Dlog4j2.configurationFile={log4j}", "-cp", str(jars / "*"), main_class]
    return cmd, making


def _finish_archive(making: tuple[Path, Path] | None, ok: bool) -> None:
    if making is None:
        return
    tmp, archive = making
    if ok and tmp.exists() and tmp.stat().st_size > 0:
        os.replace(tmp, archive)  # atomic: another process never maps half an archive
    else:
        tmp.unlink(missing_ok=True)


@dataclass
class ToolRun:
    """One run of a Kafka command-line tool: what was typed, what it printed (notebook 09).

    ``stdout`` is what the tool prints on purpose (tables, and its ``Error: ...`` messages);
    ``stderr`` holds its notes ("Consumer group 'g' has no active members.") and the
    tools' log warnings. Shown in a notebook, it reads like a terminal.
    """

    tool: str
    args: list[str]
    bootstrap: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    argv: list[str] = field(default_factory=list)  # the whole java command line that ran

    @property
    def command(self) -> str:
        """The command as you would type it with Kafka's scripts."""
        import shlex

        return " ".join([self.tool, "--bootstrap-server", self.bootstrap, *map(shlex.quote, self.args)])

    @property
    def errors(self) -> list[str]:
        """Every ``Error: ...`` message the tool printed (it prints them to stdout, exit code 0)."""
        return [line.split("Error:", 1)[1].strip() for line in self.stdout.splitlines()
                if line.startswith("Error:")]

    @property
    def warnings(self) -> list[str]:
        """The tool's log warnings (``[WARN] ...`` on stderr)."""
        return [line[len("[WARN]"):].strip() for line in self.stderr.splitlines()
                if line.startswith("[WARN]")]

    @property
    def ok(self) -> bool:
        """Exit code 0 and no ``Error:`` message."""
        return self.returncode == 0 and not self.errors

    @property
    def lines(self) -> list[str]:
        """The non-empty lines of stdout (``--list`` prints one group per line)."""
        return [line for line in self.stdout.splitlines() if line.strip()]

    def tables(self) -> list[pd.DataFrame]:
        """Every table in stdout, as DataFrames (see :func:`parse_tables`)."""
        return parse_tables(self.stdout)

    def table(self) -> pd.DataFrame:
        """The first table in stdout; an empty DataFrame if the tool printed none."""
        import pandas as pd

        found = self.tables()
        return found[0] if found else pd.DataFrame()

    def by_partition(self, column: str) -> dict[int, int | None]:
        """``{partition: value}`` of one numeric column of the first table (one topic)."""
        df = self.table()
        if df.empty:
            return {}
        if column not in df.columns:
            raise KeyError(f"no column {column!r}; the table has {list(df.columns)}")
        values = df[column].astype(object).where(df[column].notna(), None)  # <NA> -> None
        return dict(sorted((int(p), None if v is None else int(v))
                           for p, v in zip(df["PARTITION"], values, strict=True)))

    def text(self, max_lines: int = 40) -> str:
        """The command and its output, as a terminal shows them (long output cut)."""
        out = [f"$ {self.command}"]
        body = [ln for ln in (self.stdout.strip("\n") + "\n" + self.stderr.strip("\n")).splitlines()]
        while body and not body[-1].strip():
            body.pop()
        if len(body) > max_lines:
            body = body[:max_lines] + [f"... ({len(body) - max_lines} more lines)"]
        out += body
        out.append(f"(exit code {self.returncode}, {self.seconds:.1f} s)")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())


def _run_java(main_class: str, args: list[str], *, bootstrap: str, timeout_s: float,
              extra: Iterable[str] = ()) -> ToolRun:
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
        raise ValueError(f"timeout_s must be a positive number of seconds, not {timeout_s!r}")
    args = [str(a) for a in args]
    cmd, making = _java_command(main_class)
    cmd += ["--bootstrap-server", bootstrap, *args, *extra]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        _finish_archive(making, ok=False)
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise ToolError(f"{_SCRIPT.get(main_class, main_class)} {' '.join(args)} did not finish within "
                        f"{timeout_s:g} s. It printed:\n{out[-2000:]}") from None
    except OSError as e:
        _finish_archive(making, ok=False)
        raise ToolError(f"could not start Java ({cmd[0]}): {e}") from e
    _finish_archive(making, ok=proc.returncode == 0)
    run = ToolRun(_SCRIPT.get(main_class, main_class), args, bootstrap, proc.returncode,
                  proc.stdout, proc.stderr, time.monotonic() - t0, cmd)
    history.append(run)
    return run


def kafka_consumer_groups(*args: str, bootstrap: str | None = None, timeout_s: float = 60.0) -> ToolRun:
    """Run Kafka's ``kafka-consumer-groups`` with ``args``; return what it did (notebook 09).

    ``kafka_consumer_groups("--describe", "--group", "g")`` runs, with the machine's Java
    and the broker's jars, what ``kafka-consumer-groups.sh --bootstrap-server HOST:PORT
    --describe --group g`` runs. ``--bootstrap-server`` is added (the course's broker unless
    ``bootstrap`` is given). Never raises for what the tool refuses: read
    :attr:`ToolRun.errors`. Raises :class:`ToolError` if the JVM cannot start or the tool
    runs longer than ``timeout_s``.
    """
    return _run_java(TOOL_CLASS, list(args), bootstrap=bootstrap or ensure_broker().bootstrap,
                     timeout_s=timeout_s)


def _is_header(line: str) -> bool:
    tokens = line.split()
    return len(tokens) >= 2 and all(re.fullmatch(r"[A-Z#(][A-Z0-9#()\-]*", t) for t in tokens)


def _header_names(line: str) -> list[str]:
    names: list[str] = []
    for token in line.split():
        if token == "(ID)" and names:  # "COORDINATOR (ID)" is one column
            names[-1] += " (ID)"
        else:
            names.append(token)
    return names


def _row_values(line: str, names: list[str]) -> list[str]:
    tokens = line.split()
    if "COORDINATOR (ID)" in names:  # its values read "host:port  (id)"
        i = names.index("COORDINATOR (ID)")
        if len(tokens) > i + 1 and re.fullmatch(r"\(\d+\)", tokens[i + 1]):
            tokens[i:i + 2] = [f"{tokens[i]} {tokens[i + 1]}"]
    if len(tokens) > len(names):  # the last column may hold spaces (a STATUS message)
        tokens[len(names) - 1:] = [" ".join(tokens[len(names) - 1:])]
    return tokens + ["-"] * (len(names) - len(tokens))


def parse_tables(text: str) -> list[pd.DataFrame]:
    """The tables in a Kafka tool's output, as DataFrames (notebook 09).

    A table is a header line of upper-case column names (``GROUP  TOPIC  PARTITION ...``)
    and the lines after it up to a blank line. Values hold no spaces, except the last
    column's (``STATUS``) and ``COORDINATOR (ID)``'s, which are put back together. Number
    columns (``PARTITION``, ``CURRENT-OFFSET``, ``LAG``, ``NEW-OFFSET``...) become ``Int64``
    with the tool's ``-`` as ``<NA>``; other values stay as printed (``-`` included).
    """
    import pandas as pd

    tables = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not _is_header(lines[i]):
            i += 1
            continue
        names = _header_names(lines[i])
        rows = []
        i += 1
        while i < len(lines) and lines[i].strip() and not _is_header(lines[i]):
            rows.append(_row_values(lines[i], names))
            i += 1
        df = pd.DataFrame(rows, columns=names)
        for col in names:
            if col in _NUMERIC:
                df[col] = pd.array([None if v == "-" else int(v) for v in df[col]], dtype="Int64")
        tables.append(df)
    return tables


def tool_datetime(when: datetime) -> str:
    """``when`` as ``--to-datetime`` takes it: ``YYYY-MM-DDThh:mm:ss.sssZ``, in UTC (notebook 09).

    The tool reads a datetime without a zone as UTC; a naive ``when`` is refused here,
    because Python would read it as local time.
    """
    if when.tzinfo is None:
        raise ValueError("give a timezone-aware datetime (e.g. datetime.now(timezone.utc))")
    utc = when.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_millis(when: datetime) -> int:
    """``when`` in milliseconds since the epoch, exactly (no float rounding) (notebook 09)."""
    if when.tzinfo is None:
        raise ValueError("give a timezone-aware datetime (e.g. datetime.now(timezone.utc))")
    return (when - _EPOCH) // timedelta(milliseconds=1)


def from_millis(ms: int) -> datetime:
    """The UTC datetime of ``ms`` milliseconds since the epoch, exactly (notebook 09)."""
    return _EPOCH + timedelta(milliseconds=int(ms))


def seed_before_and_after(topic: str, before: int, after: int, partitions: int, *,
                          bootstrap: str | None = None, margin_ms: int = 3) -> datetime:
    """Seed ``before`` records per partition, then ``after`` more; return a moment between (notebook 09).

    The returned UTC datetime (whole milliseconds) is later than every record of the first
    batch and earlier than every record of the second, by at least ``margin_ms`` each way,
    so a reset "to that datetime" lands each partition exactly at offset ``before``. Uses
    :func:`helpers.topics.seed_messages` (numbers ``0..``) pinned to each partition.
    """
    from .topics import seed_messages

    for p in range(partitions):
        seed_messages(topic, before, start=p * (before + after), partition=p, bootstrap=bootstrap)
    middle = int(time.time() * 1000) + margin_ms  # every first-batch record is acked: stamped earlier
    while int(time.time() * 1000) < middle + margin_ms:  # wait for the clock, not for the broker
        time.sleep(0.001)
    for p in range(partitions):
        seed_messages(topic, after, start=p * (before + after) + before, partition=p, bootstrap=bootstrap)
    return from_millis(middle)


# ---------------------------------------------------------------- the same with the admin API


def committed_offsets(admin: KafkaAdminClient, group_id: str, topic: str | None = None) -> dict[int, int]:
    """``{partition: committed offset}`` of ``group_id`` (one topic), from OffsetFetch (notebook 09).

    A partition with no committed offset is left out (the tool prints ``-`` for it).
    """
    got = admin.list_group_offsets({group_id: None}).get(group_id, {})
    return {tp.partition: oam.offset for tp, oam in sorted(got.items())
            if oam.offset >= 0 and (topic is None or tp.topic == topic)}


def _owners(desc: Mapping[str, Any]) -> dict[Any, Mapping[str, Any]]:
    """TopicPartition -> the member it is assigned to, from a describe_groups() entry."""
    from kafka import TopicPartition

    owner: dict[Any, Mapping[str, Any]] = {}
    for member in desc.get("members") or []:
        assignment = member.get("member_assignment")
        if not isinstance(assignment, Mapping):
            continue
        for a in assignment.get("assigned_partitions") or []:
            for p in a["partitions"]:
                owner[TopicPartition(a["topic"], p)] = member
    return owner


def describe_offsets(admin: KafkaAdminClient, group_id: str) -> pd.DataFrame:
    """``kafka-consumer-groups --describe --group G``'s table, from kafka-python's admin API (notebook 09).

    Committed offsets (``list_group_offsets``), log end offsets (``list_partition_offsets``
    with ``OffsetSpec.LATEST``) and who owns which partition (``describe_groups``): one row
    per partition the group has committed or is assigned, ``-`` where the tool prints it.
    """
    import pandas as pd
    from kafka.admin import OffsetSpec

    committed = admin.list_group_offsets({group_id: None}).get(group_id, {})
    committed = {tp: oam.offset for tp, oam in committed.items() if oam.offset >= 0}
    owner = _owners(admin.describe_groups([group_id])[group_id])
    tps = sorted(set(committed) | set(owner))
    ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps}) if tps else {}
    rows = []
    for tp in tps:
        c = committed.get(tp)
        m = owner.get(tp)
        rows.append([group_id, tp.topic, tp.partition, c, ends[tp].offset,
                     None if c is None else ends[tp].offset - c,
                     m["member_id"] if m else "-", m["client_host"] if m else "-",
                     m["client_id"] if m else "-"])
    df = pd.DataFrame(rows, columns=list(TOOL_DESCRIBE_COLUMNS))
    for col in ("PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"):
        df[col] = pd.array(list(df[col]), dtype="Int64")
    return df


def describe_members(admin: KafkaAdminClient, group_id: str) -> pd.DataFrame:
    """``--describe --members``'s table (GROUP, CONSUMER-ID, HOST, CLIENT-ID, #PARTITIONS),
    from ``describe_groups`` (notebook 09)."""
    import pandas as pd

    desc = admin.describe_groups([group_id])[group_id]
    owner = _owners(desc)
    rows = [[group_id, m["member_id"], m["client_host"], m["client_id"],
             sum(1 for o in owner.values() if o is m)] for m in desc.get("members") or []]
    df = pd.DataFrame(rows, columns=["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"])
    df["#PARTITIONS"] = pd.array(list(df["#PARTITIONS"]), dtype="Int64")
    return df


def describe_state(admin: KafkaAdminClient, group_id: str) -> pd.DataFrame:
    """``--describe --state``'s table without the coordinator column (GROUP,
    ASSIGNMENT-STRATEGY, STATE, #MEMBERS), from ``describe_groups`` (notebook 09)."""
    import pandas as pd

    desc = admin.describe_groups([group_id])[group_id]
    members = desc.get("members") or []
    df = pd.DataFrame([[group_id, desc.get("protocol_data") or "", desc["group_state"], len(members)]],
                      columns=["GROUP", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"])
    df["#MEMBERS"] = pd.array(list(df["#MEMBERS"]), dtype="Int64")
    return df


def reset_plan(
    admin: KafkaAdminClient,
    group_id: str,
    partitions: Iterable[Any],
    *,
    to_earliest: bool = False,
    to_latest: bool = False,
    to_datetime: datetime | None = None,
    shift_by: int | None = None,
    to_offset: int | None = None,
) -> dict[Any, int]:
    """``{TopicPartition: new offset}``: what ``--reset-offsets --dry-run`` plans (notebook 09).

    Exactly one target, with the tool's rules (``ConsumerGroupCommand.prepareOffsetsToReset``):
    ``to_datetime`` is the first offset whose timestamp is at or after it (the log end if
    there is none); ``shift_by`` and ``to_offset`` are clamped into ``[log start, log end]``
    (the tool logs a warning when it clamps). ``shift_by`` needs a committed offset. Only
    reads the broker (ListOffsets, OffsetFetch): nothing is written.

    kafka-python's own ``reset_group_offsets`` resolves the same specs but clamps
    differently: an ``int`` below 0 or past the end becomes the log *end* (below the log
    start it becomes the start), so shift by computing the offset yourself.
    """
    from kafka.admin import OffsetSpec, OffsetTimestamp

    chosen = [name for name, v in (("to_earliest", to_earliest), ("to_latest", to_latest),
                                   ("to_datetime", to_datetime), ("shift_by", shift_by),
                                   ("to_offset", to_offset)) if v not in (None, False)]
    if len(chosen) != 1:
        raise ValueError(f"give exactly one reset target, not {chosen or 'none'}")
    tps = sorted(partitions)
    if not tps:
        return {}
    start = {tp: r.offset for tp, r in admin.list_partition_offsets(
        {tp: OffsetSpec.EARLIEST for tp in tps}).items()}
    end = {tp: r.offset for tp, r in admin.list_partition_offsets(
        {tp: OffsetSpec.LATEST for tp in tps}).items()}

    def clamp(tp: Any, offset: int) -> int:
        return min(end[tp], max(start[tp], offset))

    if to_earliest:
        return {tp: start[tp] for tp in tps}
    if to_latest:
        return {tp: end[tp] for tp in tps}
    if to_datetime is not None:
        ms = OffsetTimestamp(to_millis(to_datetime))
        found = admin.list_partition_offsets({tp: ms for tp in tps})
        return {tp: found[tp].offset if found[tp].offset >= 0 else end[tp] for tp in tps}
    if shift_by is not None:
        current = admin.list_group_offsets({group_id: tps}).get(group_id, {})
        missing = [tp for tp in tps if tp not in current or current[tp].offset < 0]
        if missing:
            raise ValueError(f"cannot shift {missing}: the group has no committed offset there "
                             "(the tool refuses too)")
        return {tp: clamp(tp, current[tp].offset + int(shift_by)) for tp in tps}
    assert to_offset is not None
    return {tp: clamp(tp, int(to_offset)) for tp in tps}


def wait_for_state(admin: KafkaAdminClient, group_id: str, states: Iterable[str] = ("Empty",),
                   timeout_s: float = 30.0) -> str:
    """Wait until the group's state is one of ``states``; return it (notebook 09).

    Polls ``describe_groups`` every 50 ms. Raises ``TimeoutError`` naming the state it
    stayed in.
    """
    wanted = set(states)
    deadline = time.monotonic() + timeout_s
    while True:
        state = admin.describe_groups([group_id])[group_id]["group_state"]
        if state in wanted:
            return state
        if time.monotonic() > deadline:
            raise TimeoutError(f"group {group_id!r} is still {state}, not {sorted(wanted)}, "
                               f"after {timeout_s:g} s")
        time.sleep(0.05)


def broker_config(admin: KafkaAdminClient, *names: str) -> dict[str, dict[str, Any]]:
    """The broker's settings ``names``, read from the broker (notebook 09).

    ``{name: {"value": ..., "source": "DEFAULT_CONFIG" | "STATIC_BROKER_CONFIG" | ...}}``, from
    ``describe_configs`` on the broker resource of the first broker that
    ``describe_cluster`` lists.
    """
    from kafka.admin import ConfigResource, ConfigResourceType

    broker_id = str(admin.describe_cluster()["brokers"][0]["broker_id"])
    found = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, broker_id,
                                                   dict.fromkeys(names))], config_filter="all")
    configs = found["broker"][broker_id]
    return {n: {"value": configs[n]["value"], "source": configs[n]["config_source"]}
            for n in names if n in configs}


def same_table(a: pd.DataFrame, b: pd.DataFrame, columns: Iterable[str] | None = None) -> bool:
    """True if two tables hold the same rows (order aside) in ``columns`` (notebook 09).

    Used to compare the tool's parsed output with the admin API's table: both sorted by
    their first columns, values compared as strings (``<NA>`` and ``-`` alike).
    """
    cols = list(columns) if columns is not None else list(a.columns)
    if not set(cols) <= set(a.columns) or not set(cols) <= set(b.columns) or len(a) != len(b):
        return False

    def norm(df: pd.DataFrame) -> list[tuple[str, ...]]:
        return sorted(tuple("-" if v is None or v != v else str(v)  # NA / NaN -> "-"
                            for v in row) for row in df[cols].astype(object).itertuples(index=False))

    return norm(a) == norm(b)


# ---------------------------------------------------------------- what the operations wrote


@dataclass
class OperationLog:
    """Wall-clock windows of named operations, to label the records they wrote (notebook 09).

    ``with ops.step("tool --to-earliest --execute"): ...`` notes when the step ran; then
    :meth:`label` names, for each ``__consumer_offsets`` record, the step whose window holds
    its timestamp (the group coordinator stamps a record when it appends it).
    """

    steps: list[tuple[str, int, int]] = field(default_factory=list)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = int(time.time() * 1000)
        try:
            yield
        finally:
            self.steps.append((name, t0, int(time.time() * 1000) + 1))

    def name_at(self, timestamp_ms: int) -> str | None:
        """The step that was running at ``timestamp_ms``, if any."""
        for name, t0, t1 in self.steps:
            if t0 <= timestamp_ms <= t1:
                return name
        return None

    def label(self, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``records`` (dicts with ``timestamp``) with an ``operation`` key added."""
        return [{"operation": self.name_at(int(r["timestamp"])) or "-", **r} for r in records]


# ---------------------------------------------------------------- Kafka's formatter vs our decoder


def _parse_json_stream(text: str) -> list[Any]:
    """JSON values written one after another (the formatter adds no newline between them)."""
    decoder = json.JSONDecoder()
    out: list[Any] = []
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        try:
            value, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError as e:
            raise ToolError(f"the formatter printed something that is not JSON at character {i}: "
                            f"{text[i:i + 200]!r} ({e})") from None
        out.append(value)


#: How long the console consumer may wait for a record when asked again, patiently.
_PATIENT_MS = 15_000


def offsets_formatter_records(partition: int, *, bootstrap: str | None = None, offset: int | None = None,
                              timeout_ms: int = 1500, patient_ms: int = _PATIENT_MS,
                              timeout_s: float = 90.0) -> tuple[ToolRun, list[dict[str, Any]]]:
    """One ``__consumer_offsets`` partition's offset commits, as Kafka's formatter prints them (notebook 09).

    Runs ``kafka-console-consumer --topic __consumer_offsets --partition N --offset earliest
    --formatter org.apache.kafka.tools.consumer.OffsetsMessageFormatter --timeout-ms ...``:
    it reads from the start (or from ``offset``) and stops after ``timeout_ms`` without a
    new record. ``--timeout-ms`` also runs while the tool starts up: on a busy machine its
    first fetch can come later, and it exits having read nothing (``TimeoutException``); then
    it is run once more with ``patient_ms``. Returns the last run and the printed JSON objects
    (``{"key": {"type", "data"}, "value": {"version", "data"} or None}``), in log order.
    Group-metadata records are not printed by this formatter.
    """
    for name, value in (("partition", partition), ("offset", 0 if offset is None else offset)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, not {value!r}")
    start = "earliest" if offset is None else str(offset)
    bootstrap = bootstrap or ensure_broker().bootstrap
    for wait_ms in (timeout_ms, max(timeout_ms, patient_ms)):
        run = _run_java(CONSOLE_CONSUMER_CLASS,
                        ["--topic", "__consumer_offsets", "--partition", str(partition), "--offset", start,
                         "--formatter", OFFSETS_FORMATTER_CLASS, "--timeout-ms", str(int(wait_ms))],
                        bootstrap=bootstrap, timeout_s=timeout_s)
        failed = "Exception" in run.stderr and not run.stdout.strip()
        if not failed or "TimeoutException" not in run.stderr:
            break
    if failed:
        raise ToolError(f"kafka-console-consumer failed:\n{run.stderr[-2000:]}")
    return run, _parse_json_stream(run.stdout)


#: The fields :func:`formatter_vs_decoder` compares, per offset-commit record.
COMPARED_FIELDS = ("group", "topic", "partition", "tombstone", "value_version", "offset", "leader_epoch",
                   "metadata", "commit_timestamp", "expire_timestamp", "topic_id")
_ZERO_UUID = str(uuid.UUID(int=0))


def _java_uuid(text: str | None) -> str | None:
    """Kafka's ``Uuid.toString()`` (URL-safe base64, no padding) as a standard UUID string."""
    if not text:
        return None
    value = str(uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))))
    return None if value == _ZERO_UUID else value


def _formatter_row(rec: Mapping[str, Any]) -> dict[str, Any]:
    key = rec["key"]["data"]
    value = rec.get("value")
    data = value["data"] if value else {}
    return {
        "group": key["group"], "topic": key["topic"], "partition": key["partition"],
        "tombstone": value is None, "value_version": value["version"] if value else None,
        "offset": data.get("offset"),
        # leaderEpoch exists from v3 on; the formatter prints -1 for "none", like the decoder
        "leader_epoch": data.get("leaderEpoch"), "metadata": data.get("metadata"),
        "commit_timestamp": data.get("commitTimestamp"), "expire_timestamp": data.get("expireTimestamp"),
        "topic_id": _java_uuid(data.get("topicId")),
    }


def _decoder_row(rec: Mapping[str, Any]) -> dict[str, Any]:
    tid = rec.get("topic_id")
    return {
        "group": rec["group"], "topic": rec["topic"], "partition": rec["committed_partition"],
        "tombstone": bool(rec["tombstone"]), "value_version": rec["value_version"],
        "offset": rec["committed_offset"], "leader_epoch": rec["leader_epoch"], "metadata": rec["metadata"],
        "commit_timestamp": rec["commit_timestamp"], "expire_timestamp": rec["expire_timestamp"],
        "topic_id": None if tid in (None, _ZERO_UUID) else tid,
    }


@dataclass
class FormatterCheck:
    """Our decoder and Kafka's formatter on the same records (notebook 09)."""

    group_id: str
    partition: int
    formatter_rows: list[dict[str, Any]]
    decoder_rows: list[dict[str, Any]]
    run: ToolRun
    raw: list[dict[str, Any]] = field(default_factory=list)  # the formatter's JSON, this group's records

    @property
    def agree(self) -> bool:
        """Same records, in the same order, field for field (and at least one)."""
        return bool(self.decoder_rows) and self.formatter_rows == self.decoder_rows

    def mismatches(self) -> list[dict[str, Any]]:
        """Where they differ: ``{"index", "field", "formatter", "decoder"}`` per difference."""
        out: list[dict[str, Any]] = []
        for i in range(max(len(self.formatter_rows), len(self.decoder_rows))):
            f = self.formatter_rows[i] if i < len(self.formatter_rows) else {}
            d = self.decoder_rows[i] if i < len(self.decoder_rows) else {}
            for name in COMPARED_FIELDS:
                if f.get(name, "(missing)") != d.get(name, "(missing)"):
                    out.append({"index": i, "field": name, "formatter": f.get(name, "(missing)"),
                                "decoder": d.get(name, "(missing)")})
        return out

    def table(self) -> pd.DataFrame:
        """One row per record as the formatter printed it, and whether the decoder read the same."""
        import pandas as pd

        n = max(len(self.formatter_rows), len(self.decoder_rows))
        rows = []
        for i in range(n):
            f = self.formatter_rows[i] if i < len(self.formatter_rows) else dict.fromkeys(COMPARED_FIELDS)
            d = self.decoder_rows[i] if i < len(self.decoder_rows) else None
            rows.append({**f, "decoder reads the same": f == d})
        return pd.DataFrame(rows, columns=[*COMPARED_FIELDS, "decoder reads the same"], dtype=object)

    def side_by_side(self) -> pd.DataFrame:
        """Both readings in full: columns (source, field), one row per record."""
        import pandas as pd

        n = max(len(self.formatter_rows), len(self.decoder_rows))
        f = pd.DataFrame(self.formatter_rows, columns=list(COMPARED_FIELDS), dtype=object).reindex(range(n))
        d = pd.DataFrame(self.decoder_rows, columns=list(COMPARED_FIELDS), dtype=object).reindex(range(n))
        return pd.concat({"OffsetsMessageFormatter": f, "helpers.inspection": d}, axis=1)


def formatter_vs_decoder(group_id: str, *, bootstrap: str | None = None, since: dict[int, int] | None = None,
                         timeout_ms: int = 1500, partitions: int | None = None) -> FormatterCheck:
    """Read ``group_id``'s offset commits twice: Kafka's formatter and the course's decoder (notebook 09).

    Both read the ``__consumer_offsets`` partition that holds the group
    (:func:`helpers.inspection.offsets_partition_for`), from its start or from the offset
    ``since`` gives it (an :func:`helpers.inspection.offsets_topic_snapshot`): Kafka's
    ``OffsetsMessageFormatter`` through ``kafka-console-consumer``, and
    :func:`helpers.inspection.read_offsets_topic`. Each keeps the group's offset-commit
    records (tombstones included), in log order, as rows of :data:`COMPARED_FIELDS`. Call
    it once the group's operations are done.
    """
    from .inspection import offsets_partition_for, offsets_topic_partitions, read_offsets_topic

    bootstrap = bootstrap or ensure_broker().bootstrap
    n = partitions or offsets_topic_partitions(bootstrap)
    if not n:
        raise ValueError("__consumer_offsets does not exist yet: nothing has been committed")
    partition = offsets_partition_for(group_id, n)
    start = (since or {}).get(partition)
    decoded = read_offsets_topic(bootstrap, partitions=[partition],
                                 since=None if start is None else {partition: start}, timeout_s=120)
    ours = [_decoder_row(r) for r in decoded if r["kind"] == "offset_commit" and r["group"] == group_id]
    run, printed = offsets_formatter_records(partition, bootstrap=bootstrap, offset=start,
                                             timeout_ms=timeout_ms)
    raw = [r for r in printed if r["key"]["data"].get("group") == group_id]
    if len(raw) < len(ours):  # it went quiet for timeout_ms before it read all of the group's records
        run, printed = offsets_formatter_records(partition, bootstrap=bootstrap, offset=start,
                                                 timeout_ms=max(timeout_ms, _PATIENT_MS))
        raw = [r for r in printed if r["key"]["data"].get("group") == group_id]
    return FormatterCheck(group_id, partition, [_formatter_row(r) for r in raw], ours, run, raw)


# ---------------------------------------------------------------- lag over time


def lag_sample(admin: KafkaAdminClient, group_id: str, topic: str,
               partitions: Iterable[Any] | None = None) -> dict[str, int]:
    """One look at ``group_id``'s lag on ``topic``, as a monitoring system takes it (notebook 09).

    ``{"log_end": sum of log end offsets, "committed": sum of committed offsets, "lag":
    their difference}``: the LAG column of ``kafka-consumer-groups --describe``, summed. A
    partition the group has not committed yet counts from its log start.
    """
    from kafka import TopicPartition
    from kafka.admin import OffsetSpec

    if partitions is None:
        (desc,) = admin.describe_topics([topic])
        partitions = [TopicPartition(topic, p["partition_index"]) for p in desc["partitions"]]
    tps = sorted(partitions)
    start = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in tps})
    end = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
    got = admin.list_group_offsets({group_id: tps}).get(group_id, {})
    committed = {tp: got[tp].offset if tp in got and got[tp].offset >= 0 else start[tp].offset for tp in tps}
    log_end = sum(end[tp].offset for tp in tps)
    done = sum(committed.values())
    return {"log_end": log_end, "committed": done, "lag": log_end - done}


@dataclass
class LagRun:
    """One lag experiment: what was produced, processed, and the lag sampled over time (notebook 09)."""

    topic: str
    group_id: str
    rate_per_s: float
    produce_s: float
    samples: list[dict[str, Any]] = field(default_factory=list)  # t, log_end, committed, lag, process_ms
    produced: int = 0
    consumed: int = 0
    produce_end_t: float | None = None
    caught_up_t: float | None = None
    seconds: float = 0.0
    stopped_because: str = ""
    figure: Any = None

    @property
    def peak_lag(self) -> int:
        return max((s["lag"] for s in self.samples), default=0)

    @property
    def final_lag(self) -> int | None:
        return self.samples[-1]["lag"] if self.samples else None

    def table(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.samples, columns=["t", "log_end", "committed", "lag", "process_ms"])

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "group_id": self.group_id, "rate_per_s": self.rate_per_s,
                "produce_s": self.produce_s, "samples": list(self.samples), "produced": self.produced,
                "consumed": self.consumed, "produce_end_t": self.produce_end_t,
                "caught_up_t": self.caught_up_t, "seconds": self.seconds,
                "stopped_because": self.stopped_because, "peak_lag": self.peak_lag,
                "final_lag": self.final_lag}


def run_lag_experiment(
    topic: str,
    group_id: str,
    *,
    rate_per_s: float = 50.0,
    produce_s: float = 3.0,
    process_ms: float | Callable[[], float] = 30.0,
    max_s: float = 30.0,
    sample_ms: int = 200,
    max_poll_records: int = 10,
    live: bool = False,
    on_sample: Callable[[LagRun], None] | None = None,
    redraw_s: float = 1.0,
    bootstrap: str | None = None,
) -> LagRun:
    """A producer at ``rate_per_s`` for ``produce_s`` seconds, a consumer that spends
    ``process_ms`` per record, and the group's lag sampled every ``sample_ms`` (notebook 09).

    The consumer (group ``group_id``, subscribed to the existing ``topic``) commits after
    each batch of at most ``max_poll_records``, so its committed offset follows its work;
    it can process ``1000 / process_ms`` records a second: slower than the producer, it
    falls behind; once the producer stops, it catches up. ``process_ms`` may be a function,
    read before every record (the widget's slider). The run ends when everything produced
    has been processed and committed (lag 0), or after ``max_s`` seconds.

    Producer, consumer and sampler run in threads; this thread shows progress every
    ``redraw_s`` seconds: ``live=True`` draws :func:`helpers.plots.plot_lag` in the notebook
    and redraws it in place, ``on_sample(run)`` is called with the samples so far. Returns
    a :class:`LagRun`.
    """
    from kafka.errors import KafkaError

    from .consumers import make_consumer, make_producer
    from .topics import admin_client

    for name, v in (("rate_per_s", rate_per_s), ("produce_s", produce_s), ("max_s", max_s),
                    ("sample_ms", sample_ms), ("redraw_s", redraw_s)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise ValueError(f"{name} must be a positive number, not {v!r}")
    proc_ms: Callable[[], float] = process_ms if callable(process_ms) else (lambda: float(process_ms))
    if proc_ms() < 0:
        raise ValueError("process_ms must be >= 0")
    bootstrap = bootstrap or ensure_broker().bootstrap
    run = LagRun(topic, group_id, float(rate_per_s), float(produce_s))
    stop = threading.Event()  # tells producer, consumer and sampler to end
    finished = threading.Event()  # the sampler saw the end (caught up, max_s or an error)
    produced_all = threading.Event()
    errors: list[BaseException] = []
    t0 = time.monotonic()

    def produce() -> None:
        try:
            producer = make_producer(bootstrap=bootstrap, linger_ms=5)
        except BaseException as e:  # reported by the calling thread
            errors.append(e)
            produced_all.set()
            return
        try:
            i = 0
            while not stop.is_set():
                due = t0 + i / rate_per_s
                if due - t0 >= produce_s:
                    break
                if due > time.monotonic():
                    time.sleep(due - time.monotonic())  # the producer's pace, not a wait on the broker
                producer.send(topic, key=f"key-{i}", value={"n": i})
                i += 1
            producer.flush(timeout=30)
            run.produced = i
            run.produce_end_t = time.monotonic() - t0
        except BaseException as e:
            errors.append(e)
        finally:
            producer.close()
            produced_all.set()

    def consume() -> None:
        try:
            consumer = make_consumer(topic, group_id=group_id, bootstrap=bootstrap, enable_auto_commit=False,
                                     max_poll_records=max_poll_records, auto_offset_reset="earliest")
        except BaseException as e:
            errors.append(e)
            return
        try:
            while not stop.is_set():
                batch = consumer.poll(timeout_ms=100)
                for records in batch.values():
                    for _rec in records:
                        time.sleep(max(0.0, proc_ms()) / 1000)  # the "work" for one record
                        run.consumed += 1
                if batch:
                    consumer.commit()
        except BaseException as e:
            errors.append(e)
        finally:
            consumer.close(autocommit=False)

    def sample() -> None:
        try:
            with admin_client(bootstrap) as admin:
                while not stop.is_set():
                    t = time.monotonic() - t0
                    try:
                        got = lag_sample(admin, group_id, topic)
                    except KafkaError as e:  # e.g. the coordinator is loading: skip this sample
                        if not getattr(e, "retriable", False):
                            raise
                    else:
                        run.samples.append({"t": round(t, 3), **got, "process_ms": proc_ms()})
                        if produced_all.is_set() and got["lag"] == 0 and got["log_end"] >= run.produced:
                            run.caught_up_t = t
                            run.stopped_because = "caught up"
                            break
                    if errors:
                        run.stopped_because = f"error: {errors[0]!r}"
                        break
                    if t >= max_s:
                        run.stopped_because = f"max_s ({max_s:g} s) reached"
                        break
                    stop.wait(sample_ms / 1000)
        except BaseException as e:
            errors.append(e)
            run.stopped_because = f"error: {e!r}"
        finally:
            finished.set()

    draw = _live_drawer(run) if live else None
    threads = [threading.Thread(target=f, name=f"lag-{f.__name__}", daemon=True)
               for f in (produce, consume, sample)]
    for th in threads:
        th.start()
    try:
        while not finished.wait(redraw_s):
            if time.monotonic() - t0 > max_s + 60:  # the sampler is stuck: give up
                run.stopped_because = "sampler did not finish"
                break
            if on_sample is not None and run.samples:
                on_sample(run)
            if draw is not None and run.samples:
                draw(False)
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=30)
    run.seconds = time.monotonic() - t0
    if errors:
        raise errors[0]
    if on_sample is not None:
        on_sample(run)
    if draw is not None:
        draw(True)
    return run


def _live_drawer(run: LagRun) -> Callable[[bool], None]:
    """Show :func:`helpers.plots.plot_lag` of ``run`` in the notebook and redraw it in place.

    Frames during the run are small PNGs (cheap to render on a busy machine); the last one
    is the figure itself, shown like any other.
    """
    import io

    from IPython.display import Image, display

    from .plots import plot_lag

    state: dict[str, Any] = {"handle": None}

    def draw(final: bool) -> None:
        fig = plot_lag(run)
        if final:
            run.figure = fig
            shown: Any = fig
        else:
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=60)
            shown = Image(data=buf.getvalue(), format="png")
        if state["handle"] is None:
            state["handle"] = display(shown, display_id=True)
        else:
            state["handle"].update(shown)

    return draw
