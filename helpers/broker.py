"""Find or start the course's Apache Kafka broker (introduced in notebook 01).

Three ways to get a broker, tried in this order by :func:`ensure_broker`:

1. ``KAFKA_BOOTSTRAP_SERVERS`` is set: use that cluster (for example the one
   ``docker compose up`` starts, at ``127.0.0.1:9092``).
2. An embedded broker this course already started (its state file says where).
3. Start the embedded broker: real Apache Kafka jars resolved from Maven Central
   by ``mvn`` (``broker/pom.xml``), run with the machine's Java 17+, single-node
   KRaft in combined mode, bound to 127.0.0.1 on free ports, in the background
   so that every notebook shares it.

Command line: ``python -m helpers.broker start|stop|restart|status|logs|fetch``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = [
    "BrokerError",
    "BrokerInfo",
    "ensure_broker",
    "start_broker",
    "stop_broker",
    "restart_broker",
    "broker_status",
    "broker_logs",
    "probe",
    "kafka_version",
]

ENV_BOOTSTRAP = "KAFKA_BOOTSTRAP_SERVERS"
ENV_HOME = "COURSE_HOME"
MIN_JAVA = 17
HEAP = "512m"  # Kafka's scripts default to 1G; one small node needs far less.


class BrokerError(RuntimeError):
    """A broker problem, with a message that says what to do next (notebook 01)."""


@dataclass(frozen=True)
class BrokerInfo:
    """Where the broker is and how the course got it."""

    bootstrap: str
    source: str  # "env" (KAFKA_BOOTSTRAP_SERVERS), "embedded-reused" or "embedded-started"
    kafka_version: str | None = None
    pid: int | None = None
    ready_seconds: float | None = None


# ---------------------------------------------------------------- paths


def course_home() -> Path:
    """The repo folder (holds ``broker/pom.xml``); ``COURSE_HOME`` overrides it."""
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parent.parent


def _broker_file(name: str) -> Path:
    """A file of the repo's ``broker/`` folder: ``pom.xml`` and the broker's config templates."""
    path = course_home() / "broker" / name
    if not path.exists():
        raise BrokerError(
            f"{path} not found. Run from a clone of the course repo (pip install -e .), "
            f"or set {ENV_HOME} to the repo folder."
        )
    return path


def _pom() -> Path:
    return _broker_file("pom.xml")


_PLACEHOLDER = re.compile(r"(?<!\$)\{([A-Za-z_]\w*)\}")


def _render(template: str, **values: object) -> str:
    """Fill in a ``broker/`` template: ``{name}`` placeholders; ``##`` note lines are dropped.

    Strict both ways: an unknown placeholder or an unused value is a :class:`BrokerError`,
    so a typo in a template cannot reach the broker. ``${...}`` (log4j lookups) is kept.
    """
    path = _broker_file(template)
    text = "".join(line for line in path.read_text().splitlines(keepends=True)
                   if not line.startswith("##"))
    found = set(_PLACEHOLDER.findall(text))
    if found != set(values):
        raise BrokerError(
            f"{path}: placeholders {sorted(found)} do not match the values "
            f"helpers/broker.py fills in ({sorted(values)})"
        )
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)


def kafka_version() -> str:
    """The one Apache Kafka version the course pins (read from ``broker/pom.xml``)."""
    m = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", _pom().read_text())
    if not m:
        raise BrokerError(f"{_pom()} has no <kafka.version> property")
    return m.group(1).strip()


def _jar_dir() -> Path:
    return course_home() / ".course" / "jars" / kafka_version()


def _run_dir() -> Path:
    """The broker's config, data and logs; ``COURSE_STATE_DIR`` gives a second, private one."""
    env = os.environ.get("COURSE_STATE_DIR")
    return Path(env).expanduser().resolve() / "broker" if env else course_home() / ".course" / "broker"


def _state_file() -> Path:
    return _run_dir() / "broker.json"


def _log_file() -> Path:
    return _run_dir() / "logs" / "server.log"


def _stdout_file() -> Path:
    return _run_dir() / "logs" / "stdout.log"


# ---------------------------------------------------------------- probing


def _parse_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    hosts = []
    for part in bootstrap.split(","):
        part = part.strip()
        if not part:
            continue
        if "://" in part:
            part = part.split("://", 1)[1]
        host, sep, port = part.rpartition(":")
        if not sep or not port.isdigit():
            raise BrokerError(
                f"{bootstrap!r} is not a bootstrap address: use host:port[,host:port], "
                f"for example 127.0.0.1:9092"
            )
        hosts.append((host.strip("[]") or "127.0.0.1", int(port)))
    if not hosts:
        raise BrokerError("empty bootstrap address: use host:port, for example 127.0.0.1:9092")
    return hosts


def _api_versions(host: str, port: int, timeout: float) -> None:
    """Send one ApiVersions v0 request and check the answer is Kafka's."""
    client_id = b"course-probe"
    body = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(body)) + body)
        head = _recv_exact(s, 4)
        (size,) = struct.unpack(">i", head)
        if not 6 <= size <= 1 << 20:  # an ApiVersions answer is a few hundred bytes
            raise BrokerError(f"{host}:{port} answered, but not like a Kafka broker")
        payload = _recv_exact(s, size)
    if struct.unpack(">i", payload[:4])[0] != 7:
        raise BrokerError(f"{host}:{port} answered, but not like a Kafka broker")
    (error_code,) = struct.unpack(">h", payload[4:6])
    if error_code != 0:
        raise BrokerError(f"{host}:{port} answered ApiVersions with error code {error_code}")


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by peer")
        buf += chunk
    return buf


def probe(bootstrap: str, timeout: float = 10.0) -> float:
    """Wait until one broker in ``bootstrap`` answers an ApiVersions request.

    Returns the seconds it took; raises :class:`BrokerError` naming the address
    after ``timeout`` seconds.
    """
    hosts = _parse_bootstrap(bootstrap)
    start = time.monotonic()
    last: Exception | None = None
    while True:
        for host, port in hosts:
            left = timeout - (time.monotonic() - start)
            try:
                _api_versions(host, port, max(0.2, min(2.0, left)))
                return time.monotonic() - start
            except BrokerError:
                raise
            except (OSError, ConnectionError, struct.error) as e:
                last = e
        if time.monotonic() - start >= timeout:
            raise BrokerError(
                f"No Kafka broker answered at {bootstrap} within {timeout:.0f} s "
                f"(last error: {last}). Check the address and that the broker is running"
                + (
                    f"; or unset {ENV_BOOTSTRAP} to let the course start its own broker."
                    if os.environ.get(ENV_BOOTSTRAP)
                    else "."
                )
            )
        time.sleep(0.1)


# ---------------------------------------------------------------- prerequisites


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise BrokerError(
            "Java was not found. The embedded broker needs Java 17 or newer: install it "
            "(Debian/Ubuntu: apt install openjdk-17-jre-headless; macOS: brew install openjdk@17; "
            "or use the conda environment in environment.yml), or run a broker with "
            f"`docker compose up -d` and set {ENV_BOOTSTRAP}=127.0.0.1:9092."
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(m.group(1)) if m else 0
    if major == 1 and m and m.group(2):
        major = int(m.group(2))
    if major < MIN_JAVA:
        raise BrokerError(
            f"{java} is Java {major or '?'}; Apache Kafka {kafka_version()} needs Java {MIN_JAVA}+. "
            "Install a newer JDK and put it first on PATH (or set JAVA_HOME)."
        )
    return java


def fetch_jars(quiet: bool = True) -> Path:
    """Copy the broker's jars into the git-ignored cache, once: from the offline bundle if
    `make setup` unpacked one (``make bundle``), else from Maven Central with ``mvn``."""
    jars = _jar_dir()
    if (jars / ".complete").exists():
        return jars
    bundled = course_home() / ".course" / "bundle" / "jars"  # `make setup` unpacks the offline bundle there
    if (bundled / ".complete").exists() and (bundled / ".complete").read_text().strip() == kafka_version():
        tmp = jars.with_name(jars.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(bundled, tmp)
        shutil.rmtree(jars, ignore_errors=True)
        tmp.rename(jars)
        print(f"Broker jars copied from the offline bundle ({bundled}), no Maven.", file=sys.stderr)
        return jars
    mvn = shutil.which("mvn")
    if not mvn:
        raise BrokerError(
            "Maven (mvn) was not found; it fetches the broker's jars once. Install it "
            "(Debian/Ubuntu: apt install maven; macOS: brew install maven; or use the conda "
            f"environment), or use `docker compose up -d` with {ENV_BOOTSTRAP}=127.0.0.1:9092."
        )
    tmp = jars.with_name(jars.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    print(f"Fetching Apache Kafka {kafka_version()} jars with Maven (once)...", file=sys.stderr)
    cmd = [
        mvn, "-B", "-f", str(_pom()), "dependency:copy-dependencies",
        f"-DoutputDirectory={tmp}", "-DincludeScope=runtime",
    ]
    if quiet:
        cmd.insert(2, "-q")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        shutil.rmtree(tmp, ignore_errors=True)
        raise BrokerError(
            "Maven could not fetch the Kafka jars from Maven Central. Check your network or "
            "proxy (~/.m2/settings.xml) and run `make broker` again. Maven said:\n" + tail
        )
    (tmp / ".complete").write_text(kafka_version())
    shutil.rmtree(jars, ignore_errors=True)
    tmp.rename(jars)
    return jars


# ---------------------------------------------------------------- process state


def _process(pid: int) -> psutil.Process | None:
    """The running process with this pid; None if there is none (or only a zombie)."""
    if pid <= 0:
        return None
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None
    try:
        if proc.status() == psutil.STATUS_ZOMBIE:  # a zombie is not a running broker
            return None
    except psutil.NoSuchProcess:  # ZombieProcess included
        return None
    except psutil.AccessDenied:  # someone else's process: it exists (and is not ours)
        pass
    return proc


def _pid_alive(pid: int) -> bool:
    return _process(pid) is not None


def _is_our_broker(pid: int) -> bool:
    """Guard against pid reuse: the process must be Java running ``kafka.Kafka`` with our config."""
    proc = _process(pid)
    if proc is None:
        return False
    try:
        args = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "kafka.Kafka" in args and str(_run_dir() / "server.properties") in args


def _read_state() -> dict | None:
    try:
        return json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    """One start/stop at a time, across notebooks and processes."""
    _run_dir().mkdir(parents=True, exist_ok=True)
    with open(_run_dir() / ".lock", "w") as fh:
        try:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX)
        except ImportError:  # Windows: no lock, best effort
            pass
        yield


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Java binds with SO_REUSEADDR, so TIME_WAIT leftovers do not count as in use.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _choose_ports() -> tuple[int, int]:
    """Reuse the ports of the last run when free (a restart keeps its address)."""
    path = _run_dir() / "ports.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        old = json.loads(path.read_text())
        if _port_free(old["broker"]) and _port_free(old["controller"]):
            return old["broker"], old["controller"]
    broker, controller = _free_port(), _free_port()
    while controller == broker:
        controller = _free_port()
    path.write_text(json.dumps({"broker": broker, "controller": controller}))
    return broker, controller


def _tail(path: Path, n: int) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log yet)"
    return "\n".join(lines[-n:])


# ---------------------------------------------------------------- lifecycle


def _running_embedded() -> BrokerInfo | None:
    state = _read_state()
    if not state or not _is_our_broker(int(state.get("pid", 0))):
        return None
    return BrokerInfo(state["bootstrap"], "embedded-reused", state.get("kafka_version"), state["pid"])


def start_broker(timeout: float = 90.0) -> BrokerInfo:
    """Start the embedded broker (or return the one already running); notebook 01."""
    with _lock():
        running = _running_embedded()
        if running:
            with contextlib.suppress(BrokerError):
                probe(running.bootstrap, timeout=min(timeout, 30.0))
                return running
            _terminate(running.pid or 0)  # alive but not answering: replace it
        _state_file().unlink(missing_ok=True)  # stale or absent
        java = _java()
        jars = fetch_jars()
        run = _run_dir()
        data = run / "data"
        (run / "logs").mkdir(parents=True, exist_ok=True)
        broker_port, controller_port = _choose_ports()
        props = run / "server.properties"
        # What differs from Kafka's defaults, and why: broker/server.properties.
        props.write_text(_render("server.properties", broker_port=broker_port,
                                 controller_port=controller_port, data_dir=data))
        log4j = run / "log4j2.properties"
        log4j.write_text(_render("log4j2.properties", log_file=_log_file()))
        classpath = str(jars / "*")
        if not (data / "meta.properties").exists():
            shutil.rmtree(data, ignore_errors=True)
            fmt = subprocess.run(
                [java, "-cp", classpath, f"-Dlog4j2.configurationFile={log4j}",
                 "kafka.tools.StorageTool", "format", f"--cluster-id={_cluster_id()}",
                 f"--config={props}"],
                capture_output=True, text=True,
            )
            if fmt.returncode != 0:
                raise BrokerError(
                    "Formatting the broker's storage failed:\n" + (fmt.stdout + fmt.stderr)[-2000:]
                    + f"\nDelete {run} and try again."
                )
        for port in (broker_port, controller_port):
            if not _port_free(port):
                raise BrokerError(
                    f"Port {port} on 127.0.0.1 is in use by another program. "
                    f"Delete {run / 'ports.json'} to pick new free ports, and start again."
                )
        cmd = [
            java, f"-Xms{HEAP}", f"-Xmx{HEAP}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}",
            "-cp", classpath, "kafka.Kafka", str(props),
        ]
        log_pos = _log_file().stat().st_size if _log_file().exists() else 0
        t0 = time.monotonic()
        with open(_stdout_file(), "ab") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, cwd=run)
        bootstrap = f"127.0.0.1:{broker_port}"
        state = {"pid": proc.pid, "bootstrap": bootstrap, "kafka_version": kafka_version(),
                 "broker_port": broker_port, "controller_port": controller_port,
                 "started_at": time.time()}
        _state_file().write_text(json.dumps(state, indent=1))
        while True:
            if proc.poll() is not None:
                _state_file().unlink(missing_ok=True)
                raise BrokerError(_exit_message(proc.returncode, log_pos))
            try:
                _api_versions("127.0.0.1", broker_port, 1.0)
                break
            except (OSError, ConnectionError, struct.error, BrokerError):
                pass
            if time.monotonic() - t0 > timeout:
                _terminate(proc.pid)
                _state_file().unlink(missing_ok=True)
                raise BrokerError(
                    f"The broker did not answer within {timeout:.0f} s. Last lines of its log "
                    f"({_log_file()}):\n{_tail(_log_file(), 20)}"
                )
            time.sleep(0.05)
        ready = time.monotonic() - t0
        return BrokerInfo(bootstrap, "embedded-started", kafka_version(), proc.pid, ready)


def _cluster_id() -> str:
    """A random KRaft cluster id: 22 chars of URL-safe base64 of a UUID.

    Like Kafka's own ``Uuid.randomUuid()``, never one that starts with ``-``: a
    command line would read it as an option.
    """
    import base64

    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _exit_message(code: int, log_pos: int) -> str:
    try:
        with open(_log_file(), "rb") as fh:
            fh.seek(log_pos)
            new_log = fh.read().decode(errors="replace")
    except OSError:
        new_log = ""
    text = new_log + "\n" + _tail(_stdout_file(), 20)
    hint = ""
    if "Address already in use" in text or "BindException" in text:
        hint = (f" A port it needs is taken: delete {_run_dir() / 'ports.json'} to pick new "
                "free ports, and start again.")
    elif "OutOfMemory" in text:
        hint = " The JVM ran out of memory: close other programs and start again."
    lines = "\n".join(text.strip().splitlines()[-20:])
    return f"The broker exited during start (exit code {code}).{hint} Last lines of its log:\n{lines}"


def _terminate(pid: int, timeout: float = 20.0) -> bool:
    """SIGTERM (a clean, controlled shutdown), then SIGKILL if it takes too long."""
    proc = _process(pid)
    if proc is None:
        return False
    # The same psutil.Process throughout: it refuses to signal a pid that has been reused.
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.terminate()
    if not _wait_gone(proc, timeout):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
        _wait_gone(proc, 5.0)
    return True


def _wait_gone(proc: psutil.Process, timeout: float) -> bool:
    """Wait until ``proc`` has exited (reaping it if it is our child); True if it has."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            proc.wait(timeout=0.1)  # reaps our child; polls any other process
            return True
        except psutil.TimeoutExpired:
            pass
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:  # exited; its parent will reap it
                return True
        except psutil.NoSuchProcess:
            return True
        except psutil.AccessDenied:
            pass
        if time.monotonic() >= deadline:
            return False


def stop_broker() -> bool:
    """Stop the embedded broker, leaving no JVM behind; True if one was running (notebook 03)."""
    with _lock():
        state = _read_state()
        stopped = False
        if state and _is_our_broker(int(state.get("pid", 0))):
            stopped = _terminate(int(state["pid"]))
        _state_file().unlink(missing_ok=True)
        return stopped


def restart_broker(timeout: float = 90.0) -> BrokerInfo:
    """Stop and start the embedded broker on the same ports (notebook 04)."""
    stop_broker()
    return start_broker(timeout=timeout)


def ensure_broker(timeout: float = 10.0, start_timeout: float = 90.0) -> BrokerInfo:
    """Return a reachable broker: ``KAFKA_BOOTSTRAP_SERVERS``, else ours, else start it.

    Introduced in notebook 01. An unreachable ``KAFKA_BOOTSTRAP_SERVERS`` fails within
    ``timeout`` seconds with a :class:`BrokerError` naming the address.
    """
    env = os.environ.get(ENV_BOOTSTRAP, "").strip()
    if env:
        seconds = probe(env, timeout=timeout)
        return BrokerInfo(env, "env", ready_seconds=seconds)
    return start_broker(timeout=start_timeout)


def broker_status() -> dict:
    """What the course knows about its broker, as a dict; never starts one (notebook 01)."""
    env = os.environ.get(ENV_BOOTSTRAP, "").strip()
    if env:
        try:
            probe(env, timeout=5.0)
            return {"source": "env", "bootstrap": env, "running": True}
        except BrokerError as e:
            return {"source": "env", "bootstrap": env, "running": False, "error": str(e)}
    state = _read_state()
    if not state:
        return {"source": "embedded", "running": False, "state_dir": str(_run_dir())}
    alive = _is_our_broker(int(state.get("pid", 0)))
    out = {"source": "embedded", "running": alive, **state, "state_dir": str(_run_dir())}
    if alive:
        out["rss_mb"] = _rss_mb(int(state["pid"]))
        try:
            probe(state["bootstrap"], timeout=3.0)
            out["answering"] = True
        except BrokerError:
            out["answering"] = False
    else:
        out["stale"] = True
    return out


def _rss_mb(pid: int) -> float | None:
    """The process's resident memory in MiB; None if it cannot be read."""
    if not pid or pid <= 0:  # psutil.Process(None) would be this very process
        return None
    try:
        return round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    except (psutil.Error, ValueError):
        return None


def broker_logs(lines: int = 50) -> str:
    """The last lines of the embedded broker's log (notebook 01, troubleshooting)."""
    return _tail(_log_file(), lines)


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.broker", description="The course's Apache Kafka broker."
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("start", help="find or start the broker and print its address")
    sub.add_parser("stop", help="stop the embedded broker")
    sub.add_parser("restart", help="restart the embedded broker on the same ports")
    sub.add_parser("status", help="print what is known about the broker (JSON)")
    logs = sub.add_parser("logs", help="print the end of the embedded broker's log")
    logs.add_argument("-n", type=int, default=50, help="how many lines (default 50)")
    sub.add_parser("fetch", help="fetch the broker's jars with Maven, once")
    sub.add_parser("bootstrap", help="print only the bootstrap address (starting if needed)")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "start":
            info = ensure_broker()
            how = {"env": f"from {ENV_BOOTSTRAP}", "embedded-reused": "already running",
                   "embedded-started": f"started in {info.ready_seconds or 0:.1f} s"}[info.source]
            print(f"Kafka broker at {info.bootstrap} ({how})")
        elif args.cmd == "bootstrap":
            print(ensure_broker().bootstrap)
        elif args.cmd == "stop":
            print("stopped the embedded broker" if stop_broker() else "no embedded broker was running")
        elif args.cmd == "restart":
            info = restart_broker()
            print(f"Kafka broker at {info.bootstrap} (restarted in {info.ready_seconds:.1f} s)")
        elif args.cmd == "status":
            print(json.dumps(broker_status(), indent=1))
        elif args.cmd == "logs":
            print(broker_logs(args.n))
        elif args.cmd == "fetch":
            print(fetch_jars(quiet=False))
    except BrokerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
