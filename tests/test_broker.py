"""The broker lifecycle: clear errors, stale state, start/reuse/stop with no JVM left behind.

Lifecycle tests use a private embedded broker (COURSE_STATE_DIR in a temp folder),
so they never disturb the broker the rest of the session shares.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

import helpers.broker as broker
from helpers.broker import BrokerError


@pytest.mark.parametrize("bad", ["", "nonsense", "127.0.0.1", "host:port", ",,"])
def test_bootstrap_nonsense_is_rejected_with_an_example(bad):
    with pytest.raises(BrokerError, match="127.0.0.1:9092"):
        broker.probe(bad, timeout=1)


def test_unreachable_bootstrap_env_fails_fast_naming_the_address(monkeypatch):
    address = f"127.0.0.1:{broker._free_port()}"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", address)
    t0 = time.monotonic()
    with pytest.raises(BrokerError) as err:
        broker.ensure_broker(timeout=2)
    assert time.monotonic() - t0 < 6
    assert address in str(err.value) and "KAFKA_BOOTSTRAP_SERVERS" in str(err.value)


def test_a_server_that_is_not_kafka_is_named_as_such():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def answer_like_http() -> None:
        conn, _ = srv.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        conn.close()

    threading.Thread(target=answer_like_http, daemon=True).start()
    try:
        with pytest.raises(BrokerError, match="it is not Kafka: it looks like HTTP"):
            broker.probe(f"127.0.0.1:{port}", timeout=3)
    finally:
        srv.close()


def test_a_refused_address_fails_at_once_naming_it():
    address = f"127.0.0.1:{broker._free_port()}"
    t0 = time.monotonic()
    with pytest.raises(BrokerError) as err:
        broker.probe(address, timeout=10)
    waited = time.monotonic() - t0
    assert waited < 5, f"waited {waited:.1f} s for a port that refuses connections"  # not the 10 s timeout
    assert f"{address}: refused the connection" in str(err.value)


@pytest.fixture
def http_server():
    """A real ``python -m http.server`` on a free port of 127.0.0.1 (it prints its port)."""
    import re

    proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        yield int(re.search(r"port (\d+)", line).group(1))
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def silent_server():
    """Accepts connections and never answers."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        yield srv.getsockname()[1]


def test_a_real_http_server_is_named_as_http_not_as_timed_out(http_server):
    t0 = time.monotonic()
    with pytest.raises(BrokerError) as err:
        broker.probe(f"127.0.0.1:{http_server}", timeout=10)
    assert time.monotonic() - t0 < 5
    assert f"127.0.0.1:{http_server}: answered, but it is not Kafka: it looks like HTTP" in str(err.value)
    assert "did not answer" not in str(err.value)


def test_a_silent_server_waits_the_timeout_and_says_it_did_not_answer(silent_server):
    t0 = time.monotonic()
    with pytest.raises(BrokerError, match=f"127.0.0.1:{silent_server}: did not answer within"):
        broker.probe(f"127.0.0.1:{silent_server}", timeout=1.0)
    assert time.monotonic() - t0 >= 1.0  # it may still be a broker starting: given the whole timeout


def test_every_wrong_address_is_named_with_its_own_reason(http_server, silent_server):
    refused = f"127.0.0.1:{broker._free_port()}"
    http, silent = f"127.0.0.1:{http_server}", f"127.0.0.1:{silent_server}"
    with pytest.raises(BrokerError) as err:
        broker.probe(f"{refused},{http},no-such-host.invalid:9092", timeout=10)
    lines = str(err.value).splitlines()
    assert any(line.strip().startswith(f"{refused}: refused") for line in lines)
    assert any(line.strip().startswith(f"{http}: answered, but it is not Kafka") for line in lines)
    assert any("no-such-host.invalid:9092: host name" in line for line in lines)
    verdicts = broker.check_addresses(f"{refused},{silent},{http}", timeout=1.0)
    assert verdicts[refused].startswith("refused") and verdicts[silent].startswith("did not answer")
    assert verdicts[http].startswith("answered, but it is not Kafka: it looks like HTTP")


def test_with_several_addresses_one_that_answers_is_enough_and_status_says_which(kafka, monkeypatch):
    refused = f"127.0.0.1:{broker._free_port()}"
    bootstrap = f"{refused},{kafka.bootstrap}"
    assert broker.probe(bootstrap, timeout=10) < 5
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
    status = broker.broker_status()
    assert status["running"] is True
    assert all(status["addresses"][a] == "answers" for a in kafka.bootstrap.split(","))  # 1 or 3 nodes
    assert status["addresses"][refused].startswith("refused")


def test_missing_java_says_what_to_install(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BrokerError, match="Java 17"):
        broker._java()


def test_missing_maven_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(broker, "_jar_dir", lambda: tmp_path / "jars")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BrokerError, match="Maven"):
        broker.fetch_jars()


def test_the_pinned_version_is_the_one_in_the_jar_cache(kafka):
    version = broker.kafka_version()
    assert version.startswith("4.")
    assert any(broker._jar_dir().glob(f"kafka_2.13-{version}.jar"))


@pytest.fixture
def private_state(monkeypatch, tmp_path):
    """A second embedded broker in a temp folder; always stopped afterwards."""
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("COURSE_STATE_DIR", str(tmp_path))
    yield tmp_path
    broker.stop_broker()


def _jvm_alive(pid: int) -> bool:
    """Checked with psutil directly, not with the code under test (a zombie counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_config_templates_fill_in_every_placeholder_and_drop_their_notes():
    props = broker._render("server.properties", broker_port=1111, controller_port=2222, data_dir="/d",
                           listen_host="127.0.0.1", advertised_host="127.0.0.1")
    assert "{" not in props and "##" not in props
    assert "listeners=PLAINTEXT://127.0.0.1:1111,CONTROLLER://127.0.0.1:2222" in props
    assert "advertised.listeners=PLAINTEXT://127.0.0.1:1111" in props
    room = broker._render("server.properties", broker_port=1111, controller_port=2222, data_dir="/d",
                          listen_host="0.0.0.0", advertised_host="10.0.0.5")
    assert "listeners=PLAINTEXT://0.0.0.0:1111,CONTROLLER://127.0.0.1:2222" in room  # controller: loopback
    assert "advertised.listeners=PLAINTEXT://10.0.0.5:1111" in room
    assert "controller.quorum.voters=1@127.0.0.1:2222" in props and "log.dirs=/d" in props
    log4j = broker._render("log4j2.properties", log_file="/l/server.log")
    assert "appender.file.filePattern = /l/server.log.%i" in log4j and "{" not in log4j


def test_a_template_placeholder_that_is_not_filled_in_is_an_error(monkeypatch, tmp_path):
    (tmp_path / "broker").mkdir()
    (tmp_path / "broker" / "server.properties").write_text(
        "## note\nlog.dirs={data_dir}\nlisteners=PLAINTEXT://127.0.0.1:{brokr_port}\nx=${sys:y}\n")
    monkeypatch.setenv("COURSE_HOME", str(tmp_path))
    with pytest.raises(BrokerError, match="brokr_port"):
        broker._render("server.properties", data_dir="/d", broker_port=1)
    assert broker._render("server.properties", data_dir="/d", brokr_port=1) == \
        "log.dirs=/d\nlisteners=PLAINTEXT://127.0.0.1:1\nx=${sys:y}\n"  # log4j-style lookups are kept


def test_a_live_pid_counts_as_our_broker_only_with_kafka_and_our_config(private_state):
    ours = str(broker._run_dir() / "server.properties")
    sleep = [sys.executable, "-c", "import time; time.sleep(120)"]
    procs = [subprocess.Popen(sleep + extra) for extra in
             ([], ["kafka.Kafka", "/elsewhere/server.properties"], ["kafka.Kafka", ours])]
    try:
        # wait until each child has exec'ed python (its command line is the final one)
        for p in procs:
            for _ in range(100):
                if "-c" in psutil.Process(p.pid).cmdline():
                    break
                time.sleep(0.05)
        assert [broker._is_our_broker(p.pid) for p in procs] == [False, False, True]
        # A state file whose pid is alive but not our broker is stale: reported, never signalled.
        (private_state / "broker").mkdir(parents=True, exist_ok=True)
        broker._state_file().write_text(json.dumps({"pid": procs[1].pid, "bootstrap": "127.0.0.1:1"}))
        status = broker.broker_status()
        assert status["running"] is False and status["stale"] is True
        assert broker.stop_broker() is False and procs[1].poll() is None
        assert not broker._is_our_broker(0) and not broker._is_our_broker(-1)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert not any(broker._pid_alive(p.pid) for p in procs)


def test_lifecycle_start_reuse_stale_stop(private_state):
    first = broker.ensure_broker()
    assert first.source == "embedded-started" and first.bootstrap.startswith("127.0.0.1:")
    assert first.ready_seconds is not None and first.ready_seconds < 60

    again = broker.ensure_broker()
    assert again.source == "embedded-reused" and again.pid == first.pid

    props = (private_state / "broker" / "server.properties").read_text()
    assert "offsets.topic.num.partitions" not in props  # Kafka's default (50) is kept
    assert "127.0.0.1" in props and "0.0.0.0" not in props

    # A broker killed without warning leaves a stale state file: detected and replaced.
    jvm = psutil.Process(first.pid)
    jvm.kill()
    jvm.wait(timeout=10)  # reaps it: the JVM is a child of this test process
    status = broker.broker_status()
    assert status["running"] is False and status.get("stale") is True
    second = broker.ensure_broker()
    assert second.source == "embedded-started" and second.pid != first.pid
    assert second.bootstrap == first.bootstrap  # same ports, same address

    assert broker.stop_broker() is True
    assert not _jvm_alive(second.pid)
    assert broker.broker_status()["running"] is False
    assert broker.stop_broker() is False


def test_the_first_stopped_broker_writes_the_class_archive_and_later_starts_map_it(private_state,
                                                                                   monkeypatch):
    archive = private_state / "cds" / "broker.jsa"
    monkeypatch.setattr(broker, "_cds_archive", lambda java: archive)
    first = broker.start_broker()
    cmdline = " ".join(psutil.Process(first.pid).cmdline())
    assert "-XX:ArchiveClassesAtExit=" in cmdline and "SharedArchiveFile" not in cmdline
    assert broker.stop_broker() is True
    assert archive.stat().st_size > 1_000_000 and not list(archive.parent.glob("*.tmp"))

    second = broker.start_broker()
    cmdline = " ".join(psutil.Process(second.pid).cmdline())
    assert f"-XX:SharedArchiveFile={archive}" in cmdline and "ArchiveClassesAtExit" not in cmdline
    assert broker.stop_broker() is True

    # What a killed JVM leaves (a partial archive) is refused, and deleted.
    archive.unlink()
    partial = archive.with_name("partial.tmp")
    partial.write_bytes(b"\0" * 4096)
    broker._adopt_archive(broker._java(), str(broker.fetch_jars()), str(partial))
    assert not archive.exists() and not partial.exists()


def test_a_broker_that_exits_during_start_shows_its_log(private_state):
    info = broker.ensure_broker()
    broker.stop_broker()
    meta = private_state / "broker" / "data" / "meta.properties"
    text = meta.read_text()
    meta.write_text(text.replace("node.id=1", "node.id=7"))  # storage from another node
    with pytest.raises(BrokerError) as err:
        broker.start_broker(timeout=60)
    message = str(err.value)
    assert "exited during start" in message and "Last lines of its log" in message
    assert not broker.broker_status()["running"]
    assert info.pid and not _jvm_alive(info.pid)


def test_status_and_logs_from_the_command_line(kafka, capsys):
    assert broker.main(["status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["running"] is True
    assert broker.main(["logs", "-n", "5"]) == 0
    assert capsys.readouterr().out.strip()


def test_command_line_errors_exit_2_with_a_message(monkeypatch, capsys):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "not-an-address")
    assert broker.main(["start"]) == 2
    assert "error:" in capsys.readouterr().err


def test_jars_that_cannot_be_fetched_say_what_maven_said(monkeypatch, tmp_path):
    pom = tmp_path / "broker" / "pom.xml"
    pom.parent.mkdir()
    text = (broker.course_home() / "broker" / "pom.xml").read_text()
    pom.write_text(text.replace(f"<kafka.version>{broker.kafka_version()}</kafka.version>",
                                "<kafka.version>0.0.0-no-such-release</kafka.version>"))
    monkeypatch.setenv("COURSE_HOME", str(tmp_path))
    with pytest.raises(BrokerError) as err:
        broker.fetch_jars()
    assert "Maven could not fetch" in str(err.value) and "Maven said" in str(err.value)
    jars = tmp_path / ".course" / "jars"
    assert not any(jars.glob("*/.complete"))  # nothing half-fetched is left to be trusted


def test_a_port_taken_by_another_program_is_named(private_state, monkeypatch):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        taken = squatter.getsockname()[1]
        monkeypatch.setattr(broker, "_choose_ports", lambda *_args: (taken, broker._free_port()))
        with pytest.raises(BrokerError, match=f"Port {taken} on 127.0.0.1 is in use"):
            broker.start_broker(timeout=30)


def test_cluster_ids_are_kraft_shaped_and_never_look_like_options(monkeypatch):
    import base64
    import uuid as uuid_mod

    ids = {broker._cluster_id() for _ in range(2000)}
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    # the case that once broke a fresh start: a UUID whose base64 begins with "-"
    dash = uuid_mod.UUID(bytes=b"\xf8" + bytes(15))
    assert base64.urlsafe_b64encode(dash.bytes).decode().startswith("-")
    fresh = iter([dash, uuid_mod.UUID(int=1)])
    monkeypatch.setattr(broker.uuid, "uuid4", lambda: next(fresh))
    assert not broker._cluster_id().startswith("-")


def test_the_suite_runs_on_a_fresh_broker_of_its_own_not_the_labs(kafka):
    """tests/conftest.py: never the broker `make lab` runs in .course/broker (notebooks 03 and 04 stop it)."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("COURSE_KEEP_BROKER"):
        pytest.skip("the suite was asked to use a given cluster, or the course's own broker")
    assert not broker._run_dir().is_relative_to(broker.course_home())
    assert broker.broker_status()["pid"] == kafka.pid


@pytest.mark.parametrize("requested, shared, why", [
    (True, False, None), (False, False, "STOP_BROKER is False"),
    (True, True, "shared broker"), (False, True, "shared broker")])
def test_an_outage_section_stops_only_a_broker_of_our_own_and_says_what_a_skip_misses(
        monkeypatch, capsys, requested, shared, why):
    info = broker.BrokerInfo("127.0.0.1:9", "env", shared=shared)
    monkeypatch.setattr(broker, "ensure_broker", lambda: info)
    plan = broker.outage_plan(requested, "Section 9z", "the thing")
    assert plan == {"skipped": why is not None, "shared": shared, "why": why}
    printed = capsys.readouterr().out
    if why is None:
        assert printed == ""
    else:
        assert printed.startswith("Section 9z skipped") and "the thing" in printed
        assert ("unset KAFKA_BOOTSTRAP_SERVERS" in printed) == shared
