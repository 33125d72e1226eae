"""Find or start the course's Apache Kafka broker (introduced in notebook 01).

Three ways to get a broker, tried in this order by :func:`ensure_broker`:

1. ``KAFKA_BOOTSTRAP_SERVERS`` is set: use that cluster (for example the one
   ``docker compose up`` starts, at ``127.0.0.1:9092``).
2. An embedded broker this course already started (its state file says where).
3. Start the embedded broker: real Apache Kafka jars resolved from Maven Central
   by ``mvn`` (``broker/pom.xml``), run with the machine's Java 17+, single-node
   KRaft in combined mode, bound to 127.0.0.1 on free ports, in the background
   so that every notebook shares it.

For a room, the embedded broker can listen on an address the instructor chooses
(``COURSE_BROKER_HOST``, e.g. ``0.0.0.0``) and tell clients another one
(``COURSE_BROKER_ADVERTISED``, the address learners reach); ``python -m helpers.broker
room`` (``make room-broker``) starts it so and prints what learners set.

Command line: ``python -m helpers.broker start|stop|restart|status|logs|fetch|room``.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
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
from typing import Any

import psutil

__all__ = [
    "BrokerError",
    "BrokerInfo",
    "ensure_broker",
    "start_broker",
    "stop_broker",
    "restart_broker",
    "outage_plan",
    "broker_status",
    "broker_logs",
    "probe",
    "check_addresses",
    "kafka_version",
]

ENV_BOOTSTRAP = "KAFKA_BOOTSTRAP_SERVERS"
ENV_HOME = "COURSE_HOME"
ENV_HOST = "COURSE_BROKER_HOST"              # the address the client listener binds (default 127.0.0.1)
ENV_ADVERTISED = "COURSE_BROKER_ADVERTISED"  # the address clients are told to use (default: the host)
ENV_PORT = "COURSE_BROKER_PORT"              # a fixed client port (default: a free one, kept across restarts)
LOOPBACK = "127.0.0.1"
_WILDCARDS = ("0.0.0.0", "::", "")
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
    shared: bool = False  # other people use it too (a room): never stop it from a notebook


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


def _state_root() -> Path:
    """Where running things keep their state: ``.course/``; ``COURSE_STATE_DIR`` gives a private one."""
    env = os.environ.get("COURSE_STATE_DIR")
    return Path(env).expanduser().resolve() if env else course_home() / ".course"


def _run_dir() -> Path:
    """The broker's config, data and logs (``.course/broker``)."""
    return _state_root() / "broker"


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


class _NotKafka(BrokerError):
    """Something answered on the port, and it is not a Kafka broker."""


#: How a few other servers start their answer (or greet us) when sent Kafka's bytes.
_OTHER_PROTOCOLS = ((b"HTTP/", "HTTP"), (b"SSH-", "SSH"), (b"\x15\x03", "TLS (use the PLAINTEXT listener)"),
                    (b"+OK", "POP3"), (b"220", "SMTP or FTP"), (b"-ERR", "Redis"))


def _not_kafka(host: str, port: int, data: bytes) -> _NotKafka:
    what = next((name for prefix, name in _OTHER_PROTOCOLS if data.startswith(prefix)), None)
    if what is None and data.lstrip()[:1] in (b"<", b"{"):
        what = "HTML or JSON (a web server)"
    first = data.split(b"\n")[0][:30]
    shown = "".join(c if c.isprintable() else "?" for c in first.decode("ascii", "replace")).strip()
    return _NotKafka(f"{host}:{port} answered, but it is not Kafka: "
                     + (f"it looks like {what}" if what else "its answer is not Kafka's")
                     + f" ({shown!r})")


def _api_versions(host: str, port: int, timeout: float) -> None:
    """Send one ApiVersions v0 request and check the answer is Kafka's.

    Raises ``ConnectionRefusedError`` (nothing listens), ``TimeoutError`` (silent), other
    ``OSError``s, or :class:`_NotKafka` naming what answered instead. A text protocol such as
    HTTP waits for a line end that Kafka's bytes never contain: after 0.3 s of silence we
    send one, as the end of an HTTP/1.0 request line (a Kafka broker answers ApiVersions
    before it reads any further bytes), so an HTTP server answers and is named, instead of
    "timed out".
    """
    client_id = b"course-probe"
    body = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
    with socket.create_connection((host, port), timeout=timeout) as s:
        deadline = time.monotonic() + timeout
        s.sendall(struct.pack(">i", len(body)) + body)
        s.settimeout(min(0.3, timeout / 2))
        try:
            head = s.recv(4)
        except TimeoutError:
            s.sendall(b" HTTP/1.0\r\n\r\n")
            s.settimeout(max(0.05, deadline - time.monotonic()))
            head = s.recv(4)
        s.settimeout(max(0.05, deadline - time.monotonic()))
        if not head:
            raise _NotKafka(f"{host}:{port} accepted the connection and closed it without an answer: "
                            "it is not Kafka (or not its PLAINTEXT listener)")
        if len(head) < 4:
            head += _recv_upto(s, 4 - len(head))
        (size,) = struct.unpack(">i", head) if len(head) == 4 else (-1,)
        if not 6 <= size <= 1 << 20:  # an ApiVersions answer is a few hundred bytes
            raise _not_kafka(host, port, head + _recv_upto(s, 60))
        payload = _recv_exact(s, size)
    if struct.unpack(">i", payload[:4])[0] != 7:
        raise _not_kafka(host, port, head + payload)
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


def _recv_upto(s: socket.socket, n: int) -> bytes:
    """Up to ``n`` more bytes, whatever arrives before the socket's timeout or its close."""
    buf = b""
    with contextlib.suppress(OSError):
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                break
            buf += chunk
    return buf


def _verdict(host: str, port: int, timeout: float) -> str | None:
    """None if a Kafka broker answers at host:port; else what is wrong there, in words."""
    try:
        _api_versions(host, port, timeout)
        return None
    except BrokerError as e:
        return str(e).removeprefix(f"{host}:{port} ")
    except ConnectionRefusedError:
        return "refused the connection (nothing listens on that port)"
    except socket.gaierror:
        return f"host name {host!r} not found"
    except TimeoutError:
        return f"did not answer within {timeout:.1f} s"
    except (OSError, struct.error) as e:
        return f"failed: {e}"


def _final(verdict: str) -> bool:
    """Asking again will not change this verdict: something that is not Kafka, or no such host."""
    return verdict.startswith(("host name", "answered", "accepted"))


def _hopeless(verdict: str) -> bool:
    """Not worth the whole timeout: final, or refused (retried for ``refused_s`` only).

    A silent address is not hopeless: it may be a broker still starting.
    """
    return _final(verdict) or verdict.startswith("refused")


def check_addresses(bootstrap: str, timeout: float = 3.0) -> dict[str, str]:
    """Each address of ``bootstrap`` and whether it answers: ``"answers"`` or what is wrong (notebook 01).

    All addresses are asked at once, so this takes at most ``timeout`` seconds.
    """
    from concurrent.futures import ThreadPoolExecutor

    hosts = _parse_bootstrap(bootstrap)
    with ThreadPoolExecutor(len(hosts)) as pool:
        verdicts = list(pool.map(lambda hp: _verdict(hp[0], hp[1], timeout), hosts))
    return {f"{h}:{p}": v or "answers" for (h, p), v in zip(hosts, verdicts, strict=True)}


def probe(bootstrap: str, timeout: float = 10.0, refused_s: float = 0.5) -> float:
    """Wait until one broker in ``bootstrap`` answers an ApiVersions request.

    Returns the seconds it took. Raises :class:`BrokerError` naming each address and what
    is wrong with it: after ``refused_s`` (one quick retry round) when every address is
    hopeless (refuses connections, is not Kafka, or its host name is unknown), else after
    ``timeout`` seconds (something accepts connections but stays silent).
    """
    hosts = _parse_bootstrap(bootstrap)
    start = time.monotonic()
    verdicts: dict[str, str] = {}
    while True:
        for host, port in hosts:
            if _final(verdicts.get(f"{host}:{port}", "")):
                continue
            left = timeout - (time.monotonic() - start)
            verdict = _verdict(host, port, max(0.2, min(2.0, left)))
            if verdict is None:
                return time.monotonic() - start
            verdicts[f"{host}:{port}"] = verdict
        elapsed = time.monotonic() - start
        if elapsed >= timeout or (elapsed >= refused_s and all(map(_hopeless, verdicts.values()))):
            listed = "".join(f"\n  {a}: {v}" for a, v in verdicts.items())
            raise BrokerError(
                f"No Kafka broker answered at {bootstrap} (asked for {elapsed:.1f} s):{listed}\n"
                "Check the address and that the broker is running"
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


def _is_our_broker(pid: int, props: Path | None = None) -> bool:
    """Guard against pid reuse: the process must be Java running ``kafka.Kafka`` with our config.

    ``props`` is that config (default: the embedded broker's ``server.properties``).
    """
    proc = _process(pid)
    if proc is None:
        return False
    try:
        args = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "kafka.Kafka" in args and str(props or _run_dir() / "server.properties") in args


def _read_state() -> dict | None:
    try:
        return json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _lock(folder: Path | None = None) -> Iterator[None]:
    """One start/stop at a time, across notebooks and processes (a lock file in ``folder``)."""
    folder = folder or _run_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as fh:
        try:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX)
        except ImportError:  # Windows: no lock, best effort
            pass
        yield


def _port_free(port: int, host: str = LOOPBACK) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # Java binds with SO_REUSEADDR, so TIME_WAIT leftovers do not count as in use.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str = LOOPBACK) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _choose_ports(host: str = LOOPBACK, fixed: int | None = None) -> tuple[int, int]:
    """Reuse the ports of the last run when free (a restart keeps its address).

    ``host`` is where the client port will listen (the controller stays on loopback);
    ``fixed`` is a client port the instructor asked for (``COURSE_BROKER_PORT``).
    """
    path = _run_dir() / "ports.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        old = json.loads(path.read_text())
        if (fixed in (None, old["broker"]) and _port_free(old["broker"], host)
                and _port_free(old["controller"])):
            return old["broker"], old["controller"]
    broker = fixed or _free_port(host)
    controller = _free_port()
    while controller == broker:
        controller = _free_port()
    path.write_text(json.dumps({"broker": broker, "controller": controller}))
    return broker, controller


def _local_addresses() -> list[str]:
    """This machine's IPv4 addresses (for messages that suggest one)."""
    return sorted({a.address for addrs in psutil.net_if_addrs().values() for a in addrs
                   if a.family == socket.AF_INET})


def _listen_addresses(like: dict | None = None) -> tuple[str, str, int | None]:
    """(bind host, advertised host, fixed port) from the environment; 127.0.0.1 by default.

    ``like``: the state of a broker being restarted, whose addresses are kept unless the
    environment names others.

    Raises :class:`BrokerError` when the host is not an address of this machine, when it is a
    wildcard (``0.0.0.0``) with no advertised address (clients cannot connect to 0.0.0.0), or
    when the port is not a port number.
    """
    like = like or {}
    host = os.environ.get(ENV_HOST, "").strip() or like.get("listen_host") or LOOPBACK
    advertised = os.environ.get(ENV_ADVERTISED, "").strip() or like.get("advertised_host", "")
    port_text = os.environ.get(ENV_PORT, "").strip()
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise BrokerError(f"{ENV_PORT}={port_text!r} is not a port number: use 1024-65535, e.g. 9092")
    if host not in _WILDCARDS:
        try:
            _free_port(host)
        except OSError as e:
            raise BrokerError(
                f"{ENV_HOST}={host} is not an address of this machine ({e.strerror or e}). Use 0.0.0.0 "
                f"(every interface) or one of: {', '.join(_local_addresses())}"
            ) from None
    if not advertised:
        if host in _WILDCARDS:
            raise BrokerError(
                f"{ENV_HOST}={host} listens on every interface, but clients need one address to connect "
                f"to: set {ENV_ADVERTISED} to the address learners reach this machine at (one of: "
                f"{', '.join(a for a in _local_addresses() if not a.startswith('127.')) or 'none found'})"
            )
        advertised = host
    return host, advertised, int(port_text) if port_text else None


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
    return BrokerInfo(state["bootstrap"], "embedded-reused", state.get("kafka_version"), state["pid"],
                      shared=bool(state.get("serves_room")))


def _check_same_address(running: BrokerInfo) -> None:
    """A broker already runs here; refuse to hand it out if the instructor asked for another address."""
    if not (os.environ.get(ENV_HOST, "").strip() or os.environ.get(ENV_ADVERTISED, "").strip()):
        return
    state = _read_state() or {}
    host, advertised, port = _listen_addresses()
    have = (state.get("listen_host", LOOPBACK), state.get("advertised_host", LOOPBACK))
    if have != (host, advertised) or port not in (None, state.get("broker_port")):
        raise BrokerError(
            f"A broker already runs here at {running.bootstrap} (listening on {have[0]}); you asked for "
            f"{host} advertised as {advertised}{f' port {port}' if port else ''}. Stop it first "
            f"(`python -m helpers.broker stop` with the same COURSE_STATE_DIR; `make room-stop` for the "
            f"room broker), then start again."
        )


def start_broker(timeout: float = 90.0, *, room: bool = False) -> BrokerInfo:
    """Start the embedded broker (or return the one already running); notebook 01.

    It listens on ``COURSE_BROKER_HOST`` (default 127.0.0.1) and advertises
    ``COURSE_BROKER_ADVERTISED``; ``room=True`` (or either variable set) marks it as
    serving a room, so notebooks never stop it.
    """
    return _start(timeout, room=room)


def _start(timeout: float, *, room: bool, like: dict | None = None) -> BrokerInfo:
    with _lock():
        running = _running_embedded()
        if running:
            _check_same_address(running)
            with contextlib.suppress(BrokerError):
                # Our own JVM: a refused port may be one still starting, so it gets the whole wait.
                probe(running.bootstrap, timeout=min(timeout, 30.0), refused_s=min(timeout, 30.0))
                return running
            _terminate(running.pid or 0)  # alive but not answering: replace it
        _state_file().unlink(missing_ok=True)  # stale or absent
        java = _java()
        jars = fetch_jars()
        run = _run_dir()
        data = run / "data"
        (run / "logs").mkdir(parents=True, exist_ok=True)
        host, advertised, fixed_port = _listen_addresses(like)
        room = room or bool((like or {}).get("serves_room")) or (host, advertised) != (LOOPBACK, LOOPBACK)
        broker_port, controller_port = _choose_ports(host, fixed_port)
        props = run / "server.properties"
        # What differs from Kafka's defaults, and why: broker/server.properties.
        props.write_text(_render("server.properties", broker_port=broker_port,
                                 controller_port=controller_port, data_dir=data,
                                 listen_host=host, advertised_host=advertised))
        log4j = run / "log4j2.properties"
        log4j.write_text(_render("log4j2.properties", log_file=_log_file()))
        if not (data / "meta.properties").exists():
            shutil.rmtree(data, ignore_errors=True)
            _format_storage(java, jars, log4j, props, _cluster_id(), run)
        for port, on in ((broker_port, host), (controller_port, LOOPBACK)):
            if not _port_free(port, on):
                raise BrokerError(
                    f"Port {port} on {on} is in use by another program. "
                    + (f"Choose another {ENV_PORT}, or unset it to pick a free port." if port == fixed_port
                       else f"Delete {run / 'ports.json'} to pick new free ports, and start again.")
                )
        log_pos = _log_file().stat().st_size if _log_file().exists() else 0
        t0 = time.monotonic()
        cds, dump = _cds_flags(java, dump=True)
        proc = _spawn_kafka(java, jars, log4j, props, HEAP, _stdout_file(), run, cds)
        bootstrap = f"[{advertised}]:{broker_port}" if ":" in advertised else f"{advertised}:{broker_port}"
        reach = LOOPBACK if host in _WILDCARDS else host  # where this machine can ask it
        state = {"pid": proc.pid, "bootstrap": bootstrap, "kafka_version": kafka_version(),
                 "broker_port": broker_port, "controller_port": controller_port,
                 "listen_host": host, "advertised_host": advertised, "serves_room": room,
                 "started_at": time.time(), "java": java, "jars": str(jars), "cds_dump": dump and str(dump)}
        _state_file().write_text(json.dumps(state, indent=1))
        while True:
            if proc.poll() is not None:
                _state_file().unlink(missing_ok=True)
                raise BrokerError(_exit_message(proc.returncode, log_pos, _log_file(),
                                                _stdout_file(), _run_dir() / "ports.json"))
            try:
                _api_versions(reach, broker_port, 1.0)
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
        return BrokerInfo(bootstrap, "embedded-started", kafka_version(), proc.pid, ready, shared=room)


def _format_storage(java: str, jars: Path, log4j: Path, props: Path, cluster_id: str,
                    run: Path) -> None:
    """``kafka-storage format``: write ``meta.properties`` into the data folder of ``props``."""
    fmt = subprocess.run(
        [java, *_cds_flags(java, dump=False)[0], "-cp", str(jars / "*"),
         f"-Dlog4j2.configurationFile={log4j}", "kafka.tools.StorageTool", "format",
         f"--cluster-id={cluster_id}",
         f"--config={props}"],
        capture_output=True, text=True,
    )
    if fmt.returncode != 0:
        raise BrokerError(
            "Formatting the broker's storage failed:\n" + (fmt.stdout + fmt.stderr)[-2000:]
            + f"\nDelete {run} and try again."
        )


def _cds_archive(java: str) -> Path:
    """The class-data-sharing archive of the broker's classes, for this Java and Kafka version.

    A JVM that maps it starts in about half the time and CPU (1.8-2.1 s against 3.5-3.7 s,
    3.3-3.7 CPU s against 6.2-6.6, measured here): that is every ``make lab`` and restart, and
    every node of the cluster. The first broker stopped after a start without it writes it.
    """
    return course_home() / ".course" / "cds" / f"kafka-broker-{kafka_version()}-{_java_ident(java)}.jsa"


def _java_ident(java: str) -> str:
    """A short name for this Java installation: a class archive made by another one is not used."""
    real = Path(java).resolve()
    st = real.stat()
    return hashlib.sha1(f"{real}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]


def _cds_flags(java: str, *, dump: bool) -> tuple[list[str], Path | None]:
    """JVM flags that use the archive, or (``dump``) write a new one at exit to the path returned."""
    archive = _cds_archive(java)
    if archive.exists():
        return [f"-XX:SharedArchiveFile={archive}"], None  # a JVM that cannot map it just loads classes
    if not dump:
        return [], None
    archive.parent.mkdir(parents=True, exist_ok=True)
    for old in archive.parent.glob("*.tmp"):  # left by a broker that was killed, not stopped
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime > 3600:
                old.unlink()
    tmp = archive.with_name(f"{archive.name}.{os.getpid()}.{time.time_ns()}.tmp")
    return [f"-XX:ArchiveClassesAtExit={tmp}"], tmp


def _adopt_archive(java: str, jars: str, tmp: str | None) -> None:
    """Keep the archive a stopped broker wrote, if a JVM can map it (a killed JVM's is partial)."""
    if not tmp or not Path(tmp).exists():
        return
    check = subprocess.run([java, f"-XX:SharedArchiveFile={tmp}", "-Xshare:on", "-cp", str(Path(jars) / "*"),
                            "-version"], capture_output=True)
    archive = _cds_archive(java)
    if check.returncode == 0 and not archive.exists():
        os.replace(tmp, archive)  # atomic: another JVM never maps half an archive
    Path(tmp).unlink(missing_ok=True)


def _spawn_kafka(java: str, jars: Path, log4j: Path, props: Path, heap: str,
                 stdout_file: Path, cwd: Path, cds: list[str] | None = None) -> subprocess.Popen:
    """Start ``kafka.Kafka props`` in the background, in its own session (it outlives us)."""
    cmd = [
        java, *(cds if cds is not None else _cds_flags(java, dump=False)[0]),
        f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        # The quick compiler only (C1): a course broker's load is small, and the optimizing compiler's
        # threads were half its CPU (the same tests: 27 CPU s with it, 15 without).
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}",
        "-cp", str(jars / "*"), "kafka.Kafka", str(props),
    ]
    with open(stdout_file, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=cwd)


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


def _exit_message(code: int, log_pos: int, log_file: Path, stdout_file: Path, ports_file: Path,
                  what: str = "The broker") -> str:
    """Why a Kafka JVM exited while starting: the new part of its log, and what to do."""
    try:
        with open(log_file, "rb") as fh:
            fh.seek(log_pos)
            new_log = fh.read().decode(errors="replace")
    except OSError:
        new_log = ""
    text = new_log + "\n" + _tail(stdout_file, 20)
    hint = ""
    if "Address already in use" in text or "BindException" in text:
        hint = (f" A port it needs is taken: delete {ports_file} to pick new "
                "free ports, and start again.")
    elif "OutOfMemory" in text:
        hint = " The JVM ran out of memory: close other programs and start again."
    lines = "\n".join(text.strip().splitlines()[-20:])
    return f"{what} exited during start (exit code {code}).{hint} Last lines of its log:\n{lines}"


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


def outage_plan(requested: bool, section: str, missed: str) -> dict[str, Any]:
    """Whether a notebook's broker-outage section may stop the broker (notebooks 03 and 04).

    Only the course's own embedded broker is ever stopped, never a shared one: one named by
    ``KAFKA_BOOTSTRAP_SERVERS`` (a Docker container, a cluster, a room's broker) or one serving
    a room, and only when ``requested`` (the notebook's ``STOP_BROKER``). Returns
    ``{"skipped", "shared", "why"}``; when the section is skipped it prints
    ``missed`` (what the learner does not see) and how to see it.
    """
    shared = ensure_broker().shared
    skipped = shared or not requested
    if shared:
        print(f"{section} skipped: this broker is shared, and stopping it would stop everyone's work. "
              f"What you miss: {missed}. To see it, run this notebook on a broker of your own: "
              "unset KAFKA_BOOTSTRAP_SERVERS, and the course starts one for you. (On a cluster, one node "
              "down is not 'the broker down': another node takes over as the group's coordinator; "
              "notebook 12 shows it.)")
    elif skipped:
        print(f"{section} skipped: STOP_BROKER is False. Set it to True to see {missed}.")
    return {"skipped": skipped, "shared": shared,
            "why": None if not skipped else "shared broker" if shared else "STOP_BROKER is False"}


def stop_broker() -> bool:
    """Stop the embedded broker, leaving no JVM behind; True if one was running (notebook 03)."""
    with _lock():
        state = _read_state()
        stopped = False
        if state and _is_our_broker(int(state.get("pid", 0))):
            stopped = _terminate(int(state["pid"]))
        if state and state.get("cds_dump"):
            _adopt_archive(str(state.get("java") or _java()), str(state.get("jars")), state["cds_dump"])
        _state_file().unlink(missing_ok=True)
        return stopped


def restart_broker(timeout: float = 90.0) -> BrokerInfo:
    """Stop and start the embedded broker on the same ports and addresses (notebook 04)."""
    like = _read_state()
    stop_broker()
    return _start(timeout, room=False, like=like)


def ensure_broker(timeout: float = 10.0, start_timeout: float = 90.0) -> BrokerInfo:
    """Return a reachable broker: ``KAFKA_BOOTSTRAP_SERVERS``, else ours, else start it.

    Introduced in notebook 01. An unreachable ``KAFKA_BOOTSTRAP_SERVERS`` fails within
    ``timeout`` seconds with a :class:`BrokerError` naming the address.
    """
    env = os.environ.get(ENV_BOOTSTRAP, "").strip()
    if env:
        seconds = probe(env, timeout=timeout)
        return BrokerInfo(env, "env", ready_seconds=seconds, shared=True)
    return start_broker(timeout=start_timeout)


def broker_status() -> dict:
    """What the course knows about its broker, as a dict; never starts one (notebook 01)."""
    env = os.environ.get(ENV_BOOTSTRAP, "").strip()
    if env:
        try:
            addresses = check_addresses(env, timeout=5.0)
        except BrokerError as e:  # not an address at all
            return {"source": "env", "bootstrap": env, "running": False, "error": str(e)}
        running = "answers" in addresses.values()
        out: dict = {"source": "env", "bootstrap": env, "running": running, "addresses": addresses}
        if not running:
            out["error"] = "no address answers: " + "; ".join(f"{a} {v}" for a, v in addresses.items())
        return out
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
    room = sub.add_parser("room", help="the broker for a room (state in .course/room): start it and "
                                       "print what learners set, or stop it, or its status")
    room.add_argument("action", nargs="?", choices=("start", "stop", "status"), default="start")
    room.add_argument("--host", help=f"address to listen on, e.g. 0.0.0.0 (or {ENV_HOST}; default 127.0.0.1)")
    room.add_argument("--advertised", help=f"address learners connect to (or {ENV_ADVERTISED})")
    room.add_argument("--port", type=int, help=f"a fixed client port, e.g. 9092 (or {ENV_PORT})")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "room":
            return _room(args.action, args.host, args.advertised, args.port)
        if args.cmd == "start":
            info = ensure_broker()
            how = {"env": f"from {ENV_BOOTSTRAP}", "embedded-reused": "already running",
                   "embedded-started": f"started in {info.ready_seconds or 0:.1f} s"}[info.source]
            print(f"Kafka broker at {info.bootstrap} ({how})")
            if info.source == "env" and "," in info.bootstrap:
                for address, verdict in check_addresses(info.bootstrap).items():
                    print(f"  {address}: {verdict}")
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


def _room(action: str, host: str | None, advertised: str | None, port: int | None) -> int:
    """``python -m helpers.broker room``: the instructor's broker for a room (its own state folder)."""
    os.environ.setdefault("COURSE_STATE_DIR", str(course_home() / ".course" / "room"))
    for name, value in ((ENV_HOST, host), (ENV_ADVERTISED, advertised), (ENV_PORT, port)):
        if value is not None:
            os.environ[name] = str(value)
    if action == "stop":
        print("stopped the room broker" if stop_broker() else "no room broker was running")
        return 0
    if action == "status":
        print(json.dumps(broker_status(), indent=1))
        return 0
    os.environ.pop(ENV_BOOTSTRAP, None)  # the room broker is always the embedded one
    info = start_broker(room=True)
    state = _read_state() or {}
    how = ("already running" if info.source == "embedded-reused"
           else f"started in {info.ready_seconds or 0:.1f} s")
    print(f"Room broker at {info.bootstrap} (listening on {state.get('listen_host')}, {how}; "
          f"state in {_run_dir()})")
    try:
        probe(info.bootstrap, timeout=5.0)
    except BrokerError as e:
        print(f"warning: this machine cannot reach the advertised address, so learners may not either: {e}",
              file=sys.stderr)
    if str(state.get("listen_host", LOOPBACK)).startswith("127."):
        print(f"note: it listens on loopback only, so only this machine reaches it. For a room: "
              f"make room-broker {ENV_HOST}=0.0.0.0 {ENV_ADVERTISED}=<this machine's address>")
    print("Each learner sets, before `make lab` (their own name: lowercase letters, digits, dashes):")
    print(f"    export {ENV_BOOTSTRAP}={info.bootstrap}")
    print("    export COURSE_LEARNER=<name>     # every topic and group they make starts with <name>--")
    print("Notebooks 03 and 04 then skip the sections that stop the broker. Stop it: make room-stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
