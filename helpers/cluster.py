"""A local three-node Kafka cluster, to kill one node of (introduced in notebook 12).

The same pinned jars and Java as the embedded broker (:mod:`helpers.broker`), run as
three KRaft nodes in combined mode (each is a broker and one of three controller voters),
on 127.0.0.1, on free ports, with data and logs under ``.course/cluster/node-N/``.
Configuration: ``broker/cluster.properties`` (Kafka's defaults for a real cluster:
``__consumer_offsets`` with 3 replicas, min ISR 2, unclean leader election off).

Which node coordinates a group is not a secret: the leader of the ``__consumer_offsets``
partition that notebook 01's formula gives (:func:`helpers.inspection.offsets_partition_for`).
:func:`cluster_status` shows both that leader and the coordinator the cluster names when
asked (FindCoordinator), and whether they agree.

Command line: ``python -m helpers.cluster start|stop|status [--group G]|kill N|stop-node N|restart N``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil

from .broker import (
    ENV_BOOTSTRAP,
    BrokerError,
    _api_versions,
    _cluster_id,
    _exit_message,
    _format_storage,
    _free_port,
    _is_our_broker,
    _java,
    _lock,
    _port_free,
    _process,
    _render,
    _rss_mb,
    _spawn_kafka,
    _state_root,
    _tail,
    _terminate,
    _wait_gone,
    fetch_jars,
    kafka_version,
)

__all__ = [
    "ClusterInfo",
    "NODE_IDS",
    "start_cluster",
    "ensure_cluster",
    "stop_cluster",
    "cluster_status",
    "kill_node",
    "stop_node",
    "restart_node",
    "coordinator_of",
    "wait_in_sync",
    "node_logs",
]

NODE_IDS = (1, 2, 3)
#: Heap per node (the single broker has 512m; the README has the measured RSS).
HEAP = "384m"
OFFSETS_TOPIC = "__consumer_offsets"
T = TypeVar("T")


@dataclass(frozen=True)
class ClusterInfo:
    """Where the cluster is: ``bootstrap`` lists all three nodes; ``nodes[id]`` has pid and ports."""

    bootstrap: str
    nodes: dict[int, dict] = field(default_factory=dict)
    ready_seconds: float | None = None  # set when this call started nodes


# ---------------------------------------------------------------- paths and state


def _cluster_dir() -> Path:
    return _state_root() / "cluster"


def _node_dir(node_id: int) -> Path:
    return _cluster_dir() / f"node-{node_id}"


def _props(node_id: int) -> Path:
    return _node_dir(node_id) / "server.properties"


def _log_file(node_id: int) -> Path:
    return _node_dir(node_id) / "logs" / "server.log"


def _stdout_file(node_id: int) -> Path:
    return _node_dir(node_id) / "logs" / "stdout.log"


def _state_file() -> Path:
    """``cluster.json``: the cluster id, each node's ports (kept across stops) and pid."""
    return _cluster_dir() / "cluster.json"


def _read_state() -> dict[str, Any]:
    try:
        state = json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return {}
    state["nodes"] = {int(k): v for k, v in state.get("nodes", {}).items()}
    return state


def _write_state(state: dict[str, Any]) -> None:
    _cluster_dir().mkdir(parents=True, exist_ok=True)
    tmp = _state_file().with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(_state_file())


def _bootstrap(state: dict[str, Any]) -> str:
    return ",".join(f"127.0.0.1:{state['nodes'][n]['port']}" for n in NODE_IDS)


def _check_node_id(node_id: int) -> int:
    if isinstance(node_id, bool) or not isinstance(node_id, int) or node_id not in NODE_IDS:
        raise BrokerError(f"node_id must be one of {list(NODE_IDS)}, not {node_id!r}")
    return node_id


def _alive(state: dict[str, Any], node_id: int) -> bool:
    pid = state.get("nodes", {}).get(node_id, {}).get("pid")
    return bool(pid) and _is_our_broker(int(pid), _props(node_id))


def _answers(port: int, timeout: float = 1.0) -> bool:
    try:
        _api_versions("127.0.0.1", port, timeout)
        return True
    except (OSError, ConnectionError, struct.error, BrokerError):
        return False


# ---------------------------------------------------------------- starting nodes


def _choose_ports(state: dict[str, Any]) -> None:
    """Keep each node's ports of the last run when all are free (same address); else pick new ones."""
    nodes = state.get("nodes", {})
    old = [nodes.get(n, {}).get(key) for n in NODE_IDS for key in ("port", "controller_port")]
    if all(old) and len(set(old)) == len(old) and all(_port_free(int(p)) for p in old):
        return
    ports: list[int] = []
    while len(ports) < 2 * len(NODE_IDS):
        port = _free_port()
        if port not in ports:
            ports.append(port)
    state["nodes"] = {n: {**nodes.get(n, {}), "port": ports[2 * i], "controller_port": ports[2 * i + 1]}
                      for i, n in enumerate(NODE_IDS)}


def _write_configs(state: dict[str, Any]) -> None:
    voters = ",".join(f"{n}@127.0.0.1:{state['nodes'][n]['controller_port']}" for n in NODE_IDS)
    for n in NODE_IDS:
        nd = _node_dir(n)
        (nd / "logs").mkdir(parents=True, exist_ok=True)
        # What differs from Kafka's defaults, and why: broker/cluster.properties.
        _props(n).write_text(_render(
            "cluster.properties", node_id=n, broker_port=state["nodes"][n]["port"],
            controller_port=state["nodes"][n]["controller_port"], quorum_voters=voters,
            data_dir=nd / "data"))
        (nd / "log4j2.properties").write_text(_render("log4j2.properties", log_file=_log_file(n)))


def _format_all(state: dict[str, Any], java: str, jars: Path) -> None:
    """A new cluster: every node's storage formatted with one new cluster id."""
    state["cluster_id"] = _cluster_id()
    for n in NODE_IDS:
        shutil.rmtree(_node_dir(n) / "data", ignore_errors=True)
    with ThreadPoolExecutor(len(NODE_IDS)) as pool:
        list(pool.map(lambda n: _format_storage(java, jars, _node_dir(n) / "log4j2.properties",
                                                _props(n), state["cluster_id"], _cluster_dir()),
                      NODE_IDS))


def _launch(state: dict[str, Any], node_id: int, java: str, jars: Path) -> subprocess.Popen:
    node = state["nodes"][node_id]
    for port in (node["port"], node["controller_port"]):
        # Right after a SIGKILL a port can stay taken for a moment (a client reconnecting to it
        # from the ephemeral range, sockets still closing): wait a little before blaming another program.
        deadline = time.monotonic() + 15.0
        while not _port_free(int(port)) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not _port_free(int(port)):
            raise BrokerError(
                f"Port {port} on 127.0.0.1 (node {node_id} of the cluster) is in use by another "
                f"program. Stop the cluster (`make cluster-stop`), delete {_state_file()} to pick "
                "new free ports, and start again."
            )
    nd = _node_dir(node_id)
    node["log_pos"] = _log_file(node_id).stat().st_size if _log_file(node_id).exists() else 0
    proc = _spawn_kafka(java, jars, nd / "log4j2.properties", _props(node_id), HEAP,
                        _stdout_file(node_id), nd)
    node["pid"] = proc.pid
    node["started_at"] = time.time()
    return proc


def _wait_answering(state: dict[str, Any], procs: dict[int, subprocess.Popen], timeout: float,
                    t0: float) -> dict[int, float]:
    """Wait until every launched node answers ApiVersions; seconds per node since ``t0``.

    A node that exits, or a timeout, stops the nodes launched here and raises with its log.
    """
    ready: dict[int, float] = {}
    while len(ready) < len(procs):
        for n, proc in procs.items():
            if n in ready:
                continue
            if proc.poll() is not None:
                _stop_launched(procs)
                node = state["nodes"][n]
                raise BrokerError(_exit_message(
                    proc.returncode, int(node.get("log_pos", 0)), _log_file(n), _stdout_file(n),
                    _state_file(), what=f"Node {n} of the cluster"))
            if _answers(int(state["nodes"][n]["port"])):
                ready[n] = time.monotonic() - t0
        if len(ready) == len(procs):
            break
        if time.monotonic() - t0 > timeout:
            _stop_launched(procs)
            late = [n for n in procs if n not in ready]
            raise BrokerError(
                f"Node(s) {late} of the cluster did not answer within {timeout:.0f} s. Last lines "
                f"of node {late[0]}'s log ({_log_file(late[0])}):\n{_tail(_log_file(late[0]), 20)}"
            )
        time.sleep(0.1)
    return ready


def _stop_launched(procs: dict[int, subprocess.Popen]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
    for proc in procs.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


def _info(state: dict[str, Any], ready_seconds: float | None = None) -> ClusterInfo:
    nodes = {n: {"pid": state["nodes"][n].get("pid"), "port": state["nodes"][n]["port"],
                 "controller_port": state["nodes"][n]["controller_port"]} for n in NODE_IDS}
    return ClusterInfo(_bootstrap(state), nodes, ready_seconds)


def start_cluster(timeout: float = 120.0) -> ClusterInfo:
    """Start the three nodes (or return the running cluster); notebook 12.

    Idempotent: nodes already running are kept, stopped or killed ones are started
    again with their data. A new cluster is formatted first, and the call returns once
    ``__consumer_offsets`` exists with all its replicas in sync.
    """
    with _lock(_cluster_dir()):
        state = _read_state()
        down = [n for n in NODE_IDS if not _alive(state, n)]
        if not down:
            return _info(state)
        java = _java()
        jars = fetch_jars()
        t0 = time.monotonic()
        if len(down) == len(NODE_IDS):
            _choose_ports(state)
        _write_configs(state)
        if not state.get("cluster_id") or not all(
                (_node_dir(n) / "data" / "meta.properties").exists() for n in NODE_IDS):
            if len(down) < len(NODE_IDS):
                raise BrokerError(
                    f"The cluster's storage in {_cluster_dir()} is incomplete while nodes are "
                    "running: stop the cluster (`make cluster-stop`), delete that folder, and start again."
                )
            _format_all(state, java, jars)
        procs: dict[int, subprocess.Popen] = {}
        try:
            for n in down:
                procs[n] = _launch(state, n, java, jars)
        except BrokerError:
            _stop_launched(procs)
            raise
        state["kafka_version"] = kafka_version()
        _write_state(state)
        _wait_answering(state, procs, timeout, t0)
    info = _info(state)
    _ensure_offsets_topic(max(10.0, timeout - (time.monotonic() - t0)))
    return ClusterInfo(info.bootstrap, info.nodes, time.monotonic() - t0)


def ensure_cluster() -> ClusterInfo:
    """The running local cluster, started (or completed) if needed (notebook 12)."""
    return start_cluster()


def stop_cluster() -> bool:
    """Stop all three nodes (SIGTERM, all at once), leaving no JVM; True if any ran (notebook 12).

    The cluster's data, ports and id are kept: the next start reuses them.
    """
    with _lock(_cluster_dir()):
        state = _read_state()
        procs = [p for n in NODE_IDS if _alive(state, n)
                 and (p := _process(int(state["nodes"][n]["pid"]))) is not None]
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.terminate()
        deadline = time.monotonic() + 30.0
        for proc in procs:
            if not _wait_gone(proc, max(0.1, deadline - time.monotonic())):
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.kill()
                _wait_gone(proc, 5.0)
        for node in state.get("nodes", {}).values():
            node["pid"] = None
        if state:
            _write_state(state)
        return bool(procs)


def _running_pid(node_id: int) -> tuple[dict[str, Any], int]:
    state = _read_state()
    if not state.get("nodes"):
        raise BrokerError("There is no local cluster: start it with `make cluster` "
                          "(or helpers.cluster.start_cluster()).")
    if not _alive(state, node_id):
        raise BrokerError(f"Node {node_id} of the cluster is not running: "
                          f"restart it with helpers.cluster.restart_node({node_id}).")
    return state, int(state["nodes"][node_id]["pid"])


def kill_node(node_id: int) -> None:
    """SIGKILL one node, as a crash would (notebook 12).

    Returns as soon as the process is gone (milliseconds): no shutdown, no goodbye to the
    controller; the cluster notices when its heartbeats stop (``broker.session.timeout.ms``).
    """
    _check_node_id(node_id)
    _, pid = _running_pid(node_id)
    proc = _process(pid)
    if proc is None:
        return
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.kill()
    _wait_gone(proc, 10.0)


def stop_node(node_id: int, timeout: float = 30.0) -> bool:
    """Stop one node gracefully (SIGTERM: controlled shutdown moves its leaders first); notebook 12.

    True if it was running.
    """
    _check_node_id(node_id)
    state = _read_state()
    if not _alive(state, node_id):
        return False
    return _terminate(int(state["nodes"][node_id]["pid"]), timeout)


def restart_node(node_id: int, timeout: float = 90.0) -> float:
    """Start a stopped or killed node again, with its data; seconds until it answers (notebook 12).

    It answers before it has caught up: :func:`wait_in_sync` waits for that.
    """
    _check_node_id(node_id)
    with _lock(_cluster_dir()):
        state = _read_state()
        if not state.get("nodes") or not state.get("cluster_id"):
            raise BrokerError("There is no local cluster: start it with `make cluster` "
                              "(or helpers.cluster.start_cluster()).")
        if _alive(state, node_id):
            raise BrokerError(f"Node {node_id} of the cluster is already running: "
                              f"kill_node({node_id}) or stop_node({node_id}) first.")
        java = _java()
        jars = fetch_jars()
        t0 = time.monotonic()
        proc = _launch(state, node_id, java, jars)
        _write_state(state)
        ready = _wait_answering(state, {node_id: proc}, timeout, t0)
    return ready[node_id]


# ---------------------------------------------------------------- asking the cluster


@contextlib.contextmanager
def _admin(bootstrap: str | None = None) -> Iterator[Any]:
    from .topics import admin_client

    with admin_client(bootstrap or _live_bootstrap()) as admin:
        yield admin


def _live_bootstrap() -> str:
    """The nodes that answer now: kafka-python's admin may otherwise pick a dead one and raise."""
    state = _read_state()
    if not state.get("nodes"):
        raise BrokerError("There is no local cluster: start it with `make cluster` "
                          "(or helpers.cluster.start_cluster()).")
    live = [f"127.0.0.1:{state['nodes'][n]['port']}" for n in NODE_IDS
            if _alive(state, n) and _answers(int(state["nodes"][n]["port"]), 0.5)]
    if not live:
        raise BrokerError("No node of the local cluster answers: `python -m helpers.cluster status` "
                          "shows them; `make cluster` starts them.")
    return ",".join(live)


def _ask(question: Callable[[Any], T], timeout: float = 15.0) -> T:
    """``question(admin)`` through the nodes that answer; asked again if a node dies meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with _admin() as admin:
                return question(admin)
        except BrokerError:
            if time.monotonic() > deadline:
                raise
        except Exception as e:  # a node that died since we looked (not yet fenced): ask again
            if time.monotonic() > deadline:
                raise BrokerError(f"The local cluster did not answer within {timeout:.0f} s ({e!r}). "
                                  "`python -m helpers.cluster status` shows its nodes.") from e
        time.sleep(0.2)


def _find_coordinator(admin: Any, group: str) -> tuple[int, int]:
    """FindCoordinator for ``group``: (node id, error code), asked fresh every time.

    kafka-python 3.0.12 has no public call for it (its admin caches the answer), so
    this sends the same FindCoordinatorRequest v4+ its admin sends.
    """
    from kafka.protocol.metadata import FindCoordinatorRequest

    request = FindCoordinatorRequest(key_type=0, coordinator_keys=[group], min_version=4)
    response = admin._manager.run(admin._manager.send, request)
    (row,) = response.coordinators
    return int(row.node_id), int(row.error_code)


def _offsets_partitions(admin: Any) -> list[dict[str, Any]] | None:
    """``__consumer_offsets``' partitions (partition, leader, replicas, isr); None if it does not exist."""
    (desc,) = admin.describe_topics([OFFSETS_TOPIC])
    if desc.get("error_code"):
        return None
    return sorted(({"partition": p["partition_index"], "leader": p["leader_id"],
                    "replicas": sorted(p["replica_nodes"]), "isr": sorted(p["isr_nodes"])}
                   for p in desc["partitions"]), key=lambda p: p["partition"])


def coordinator_of(group: str, timeout: float = 30.0, *, not_node: int | None = None) -> int:
    """The node id the cluster names as ``group``'s coordinator (FindCoordinator); notebook 12.

    While a coordinator is failing over the cluster answers "not available": asked again
    until ``timeout``. Right after a SIGKILL the cluster still names the dead node until
    it fences it (``broker.session.timeout.ms``, 9 s); ``not_node=`` waits for another one.
    """
    deadline = time.monotonic() + timeout
    while True:
        left = max(1.0, deadline - time.monotonic())
        node, error = _ask(lambda admin: _find_coordinator(admin, group), left)
        if error == 0 and node != not_node:
            return node
        if time.monotonic() > deadline:
            what = f"error code {error}" if error else f"still node {node}"
            raise BrokerError(f"No coordinator for group {group!r} within {timeout:.0f} s ({what}). "
                              "`python -m helpers.cluster status` shows the nodes.")
        time.sleep(0.1)


def _ensure_offsets_topic(timeout: float) -> None:
    """Kafka creates ``__consumer_offsets`` on the first FindCoordinator: ask, then wait for full ISR."""
    deadline = time.monotonic() + timeout
    with contextlib.suppress(BrokerError):
        coordinator_of("course-cluster-warmup", timeout=timeout)
    wait_in_sync(max(5.0, deadline - time.monotonic()))


def wait_in_sync(timeout: float = 120.0) -> float:
    """Wait until every ``__consumer_offsets`` partition has all 3 replicas in sync; seconds (notebook 12).

    After :func:`restart_node` this is the moment the node has caught up.
    """
    t0 = time.monotonic()
    behind: list[dict[str, Any]] | None = None
    while True:
        parts = _ask(_offsets_partitions, max(1.0, timeout - (time.monotonic() - t0)))
        if parts is not None:
            behind = [p for p in parts if p["leader"] < 0 or len(p["replicas"]) < len(NODE_IDS)
                      or p["isr"] != p["replicas"]]
            if not behind:
                return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            if behind is None:
                what = f"{OFFSETS_TOPIC} does not exist yet"
            else:
                missing = sorted({n for p in behind for n in NODE_IDS if n not in p["isr"]})
                what = (f"{len(behind)} partitions of {OFFSETS_TOPIC} are not fully in sync "
                        f"(not in their ISR: node(s) {missing})")
            raise BrokerError(f"{what} after {timeout:.0f} s. Is every node running? "
                              "`python -m helpers.cluster status` shows them; restart_node(N) starts one.")
        time.sleep(0.2)


def cluster_status(group: str | None = None) -> dict:
    """Each node (pid, port, alive, answering, RSS) and, for ``group``, who coordinates it and why.

    Never starts anything (notebook 12). For a group: its ``__consumer_offsets`` partition
    from notebook 01's formula, that partition's leader, replicas and ISR, the coordinator
    FindCoordinator names, and whether leader and coordinator agree.
    """
    state = _read_state()
    if not state.get("nodes"):
        return {"running": False, "state_dir": str(_cluster_dir()), "nodes": {}}
    nodes: dict[int, dict[str, Any]] = {}
    for n in NODE_IDS:
        node = state["nodes"][n]
        alive = _alive(state, n)
        nodes[n] = {"id": n, "pid": node.get("pid") if alive else None, "port": node["port"],
                    "controller_port": node["controller_port"], "alive": alive,
                    "answering": alive and _answers(int(node["port"])),
                    "rss_mb": _rss_mb(int(node["pid"])) if alive else None}
    out: dict[str, Any] = {
        "running": all(v["alive"] for v in nodes.values()),
        "bootstrap": _bootstrap(state), "state_dir": str(_cluster_dir()),
        "kafka_version": state.get("kafka_version"), "nodes": nodes,
        "total_rss_mb": round(sum(v["rss_mb"] or 0 for v in nodes.values()), 1),
    }
    if group is not None:
        out["group"] = _group_status(group) if any(
            v["answering"] for v in nodes.values()) else {"group": group, "error": "no node answers"}
    return out


def _group_status(group: str) -> dict[str, Any]:
    from .inspection import offsets_partition_for

    info: dict[str, Any] = {"group": group}
    try:
        parts = _ask(_offsets_partitions, 10.0)
        if parts is None:
            return {**info, "error": f"{OFFSETS_TOPIC} does not exist yet"}
        p = offsets_partition_for(group, len(parts))
        info.update(offsets_partition=p, partition_leader=parts[p]["leader"],
                    replicas=parts[p]["replicas"], isr=parts[p]["isr"])
        node, error = _ask(lambda admin: _find_coordinator(admin, group), 10.0)
        info["coordinator"] = node if error == 0 else None
        if error:
            info["coordinator_error"] = error
        info["agree"] = info["coordinator"] == info["partition_leader"]
        info["coordinator_alive"] = _alive(_read_state(), node) if node in NODE_IDS else False
    except BrokerError as e:  # status reports, it does not raise
        info["error"] = str(e)
    return info


def node_logs(node_id: int, lines: int = 50) -> str:
    """The last lines of one node's log (notebook 12, troubleshooting)."""
    return _tail(_log_file(_check_node_id(node_id)), lines)


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.cluster", description="The course's local three-node Kafka cluster.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("start", help="start the three nodes (or find them) and print the bootstrap")
    sub.add_parser("stop", help="stop all three nodes")
    status = sub.add_parser("status", help="print each node and, with --group, its coordinator (JSON)")
    status.add_argument("--group", help="a consumer group id")
    for cmd, what in (("kill", "SIGKILL one node"), ("stop-node", "stop one node gracefully (SIGTERM)"),
                      ("restart", "start a stopped or killed node again")):
        sub.add_parser(cmd, help=what).add_argument("node", type=int, choices=NODE_IDS)
    logs = sub.add_parser("logs", help="print the end of one node's log")
    logs.add_argument("node", type=int, choices=NODE_IDS)
    logs.add_argument("-n", type=int, default=50, help="how many lines (default 50)")
    sub.add_parser("bootstrap", help="print only the bootstrap addresses (starting if needed)")
    run = sub.add_parser("run", help=f"run a command with {ENV_BOOTSTRAP} set to the cluster, "
                                     "starting it if needed and stopping it afterwards if this started it")
    run.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args(argv)
    if args.cmd == "run":
        return _run_with_cluster(args.command[1:] if args.command[:1] == ["--"] else args.command)
    try:
        if args.cmd == "start":
            info = start_cluster()
            how = (f"started in {info.ready_seconds:.1f} s" if info.ready_seconds is not None
                   else "already running")
            print(f"Kafka cluster at {info.bootstrap} ({how}); "
                  f"for the notebooks: export {ENV_BOOTSTRAP}={info.bootstrap}")
        elif args.cmd == "bootstrap":
            print(ensure_cluster().bootstrap)
        elif args.cmd == "stop":
            print("stopped the cluster" if stop_cluster() else "no cluster node was running")
        elif args.cmd == "status":
            print(json.dumps(cluster_status(args.group), indent=1))
        elif args.cmd == "kill":
            kill_node(args.node)
            print(f"killed node {args.node} (SIGKILL)")
        elif args.cmd == "stop-node":
            stopped = stop_node(args.node)
            print(f"stopped node {args.node}" if stopped else f"node {args.node} was not running")
        elif args.cmd == "restart":
            print(f"node {args.node} answers after {restart_node(args.node):.1f} s")
        elif args.cmd == "logs":
            print(node_logs(args.node, args.n))
    except BrokerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _any_node_alive() -> bool:
    """Whether any node of the course's cluster runs (a cluster half up counts: it was started)."""
    return any(n["alive"] for n in cluster_status()["nodes"].values())


def _run_with_cluster(command: list[str]) -> int:
    """``make test-cluster``: the command's exit code; the cluster is left as it was found."""
    if not command:
        print("error: give a command after --, e.g. python -m helpers.cluster run -- pytest", file=sys.stderr)
        return 2
    started_here = not _any_node_alive()
    try:
        info = start_cluster()
    except BrokerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{ENV_BOOTSTRAP}={info.bootstrap}", flush=True)
    try:
        return subprocess.call(command, env={**os.environ, ENV_BOOTSTRAP: info.bootstrap})
    finally:
        if started_here:
            stop_cluster()


if __name__ == "__main__":
    sys.exit(main())
