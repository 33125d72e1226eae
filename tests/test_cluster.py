"""helpers.cluster (notebook 12): three KRaft nodes, who coordinates a group, kill and restart one.

One cluster for the module: reused if one is running (``make cluster``), else started
and stopped again at the end, with no JVM left behind.
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time

import psutil
import pytest
from kafka.admin import ConfigResource, ConfigResourceType

import helpers.cluster as cl
from helpers.broker import BrokerError, _render
from helpers.inspection import offsets_partition_for
from helpers.topics import unique_name


def test_the_cluster_template_fills_in_every_placeholder_and_keeps_kafkas_defaults():
    props = _render("cluster.properties", node_id=2, broker_port=1111, controller_port=2222,
                    quorum_voters="1@127.0.0.1:1,2@127.0.0.1:2222,3@127.0.0.1:3", data_dir="/d")
    assert "{" not in props and "##" not in props
    assert "node.id=2" in props and "process.roles=broker,controller" in props
    assert "listeners=PLAINTEXT://127.0.0.1:1111,CONTROLLER://127.0.0.1:2222" in props
    settings = dict(line.split("=", 1) for line in props.splitlines() if line and not line.startswith("#"))
    assert settings["offsets.topic.replication.factor"] == "3"
    assert settings["min.insync.replicas"] == "2"
    assert settings["unclean.leader.election.enable"] == "false"
    # failure detection keeps Kafka's defaults: notebook 12 measures the failover users get
    assert not any(k.startswith(("broker.session", "broker.heartbeat")) for k in settings)


def test_a_node_id_that_is_not_1_2_or_3_is_refused_by_name():
    for bad in (0, 4, "1", True):
        with pytest.raises(BrokerError, match=r"node_id must be one of \[1, 2, 3\]"):
            cl.kill_node(bad)  # type: ignore[arg-type]


@pytest.fixture
def private_cluster_dir(monkeypatch, tmp_path):
    """A cluster state folder of its own: nothing here touches the real cluster."""
    monkeypatch.setenv("COURSE_STATE_DIR", str(tmp_path))
    return tmp_path / "cluster"


def test_missing_java_says_what_to_install(private_cluster_dir, monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BrokerError, match="Java 17"):
        cl.start_cluster()


def test_a_port_taken_by_another_program_is_named_with_what_to_do(private_cluster_dir):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        taken = squatter.getsockname()[1]
        cl._write_state({"cluster_id": "x", "nodes": {
            n: {"port": taken if n == 2 else cl._free_port(), "controller_port": cl._free_port()}
            for n in cl.NODE_IDS}})
        with pytest.raises(BrokerError, match=f"Port {taken} on 127.0.0.1 \\(node 2 of the cluster\\) "
                                              "is in use.*make cluster-stop"):
            cl.restart_node(2)


def test_a_node_that_dies_on_start_shows_the_end_of_its_log(private_cluster_dir):
    state = {"nodes": {2: {"port": cl._free_port(), "controller_port": cl._free_port(), "log_pos": 0}}}
    cl._log_file(2).parent.mkdir(parents=True)
    cl._log_file(2).write_text("INFO starting\nERROR Invalid cluster.id in meta.properties\n")
    dying = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
    with pytest.raises(BrokerError) as err:
        cl._wait_answering(state, {2: dying}, timeout=30, t0=time.monotonic())
    assert "Node 2 of the cluster exited during start (exit code 1)" in str(err.value)
    assert "Invalid cluster.id" in str(err.value)


def _jvm_alive(pid: int) -> bool:
    """Checked with psutil directly, not with the code under test (a zombie counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def cluster():
    before = cl.cluster_status()
    started_here = not any(n["alive"] for n in before["nodes"].values())
    info = cl.start_cluster()
    pids = [n["pid"] for n in info.nodes.values()]
    yield info
    if started_here:
        assert cl.stop_cluster() is True
        pids += [n["pid"] for n in cl._read_state()["nodes"].values() if n.get("pid")]
        assert not any(_jvm_alive(p) for p in pids if p), "a node's JVM outlived stop_cluster()"



@pytest.mark.cluster
def test_three_nodes_run_and_answer(cluster):
    status = cl.cluster_status()
    assert status["running"] is True and sorted(status["nodes"]) == [1, 2, 3]
    assert all(n["alive"] and n["answering"] and n["rss_mb"] for n in status["nodes"].values())
    ports = {n["port"] for n in status["nodes"].values()}
    assert len(ports) == 3 and cluster.bootstrap == ",".join(f"127.0.0.1:{p}" for p in
                                                             (status["nodes"][i]["port"] for i in (1, 2, 3)))
    assert cl.start_cluster().nodes == cluster.nodes  # idempotent: the running one


@pytest.mark.cluster
def test_consumer_offsets_has_3_replicas_min_isr_2_and_no_unclean_election(cluster):
    with cl._admin(cluster.bootstrap) as admin:
        parts = cl._offsets_partitions(admin)
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, cl.OFFSETS_TOPIC,
                            {"min.insync.replicas": None, "unclean.leader.election.enable": None})],
            config_filter="all")["topic"][cl.OFFSETS_TOPIC]
    assert parts is not None and len(parts) == 50  # offsets.topic.num.partitions: Kafka's default
    assert all(p["replicas"] == [1, 2, 3] for p in parts)
    assert all(p["leader"] in (1, 2, 3) for p in parts)
    assert configs["min.insync.replicas"]["value"] == "2"
    assert configs["unclean.leader.election.enable"]["value"] == "false"


@pytest.mark.cluster
def test_notebook_01s_formula_names_the_coordinator_find_coordinator_names(cluster):
    groups = [unique_name("coord") for _ in range(6)]
    seen = set()
    for group in groups:
        g = cl.cluster_status(group)["group"]
        assert g["offsets_partition"] == offsets_partition_for(group)
        assert g["coordinator"] == g["partition_leader"] == cl.coordinator_of(group), g
        assert g["agree"] is True and g["coordinator_alive"] is True
        seen.add(g["coordinator"])
    assert seen <= {1, 2, 3}


@pytest.mark.cluster
def test_kill_a_node_that_does_not_coordinate_then_restart_it_and_it_catches_up(cluster):
    group = unique_name("survivor")
    coordinator = cl.coordinator_of(group)
    victim = next(n for n in (3, 2, 1) if n != coordinator)
    pid = cl.cluster_status()["nodes"][victim]["pid"]

    cl.kill_node(victim)
    try:
        assert not _jvm_alive(pid)
        status = cl.cluster_status(group)
        assert status["nodes"][victim]["alive"] is False and status["running"] is False
        assert all(status["nodes"][n]["answering"] for n in (1, 2, 3) if n != victim)
        assert status["group"]["coordinator"] == coordinator  # the group did not lose its coordinator
        with pytest.raises(BrokerError, match=f"Node {victim} of the cluster is not running"):
            cl.kill_node(victim)

        # generous: a JVM start took 59 s on the shared 2 cores at load average 36
        seconds = cl.restart_node(victim, timeout=240)
        assert seconds > 0
        assert cl.wait_in_sync(timeout=120) >= 0
        after = cl.cluster_status()
        assert after["running"] is True and after["nodes"][victim]["pid"] != pid
        with pytest.raises(BrokerError, match="already running"):
            cl.restart_node(victim)
    finally:  # whatever failed above, the rest of the suite gets three nodes again
        cl.start_cluster(timeout=240)
