"""The broker lifecycle: clear errors, stale state, start/reuse/stop with no JVM left behind.

Lifecycle tests use a private embedded broker (COURSE_STATE_DIR in a temp folder),
so they never disturb the broker the rest of the session shares.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

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
        with pytest.raises(BrokerError, match="not like a Kafka broker"):
            broker.probe(f"127.0.0.1:{port}", timeout=3)
    finally:
        srv.close()


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
    return broker._pid_alive(pid)


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
    os.kill(first.pid, signal.SIGKILL)
    for _ in range(50):
        broker._reap(first.pid)
        if not _jvm_alive(first.pid):
            break
        time.sleep(0.1)
    status = broker.broker_status()
    assert status["running"] is False and status.get("stale") is True
    second = broker.ensure_broker()
    assert second.source == "embedded-started" and second.pid != first.pid
    assert second.bootstrap == first.bootstrap  # same ports, same address

    assert broker.stop_broker() is True
    assert not _jvm_alive(second.pid)
    assert broker.broker_status()["running"] is False
    assert broker.stop_broker() is False


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
        monkeypatch.setattr(broker, "_choose_ports", lambda: (taken, broker._free_port()))
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
