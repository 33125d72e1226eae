"""One broker for a whole room: each learner's names carry their own prefix (notebook 01).

On a private broker (the embedded one, started for you) names need no prefix. On a
shared one (``KAFKA_BOOTSTRAP_SERVERS`` is set, for example to the broker the
instructor started with ``make room-broker``), every topic, group and transactional id
the course makes starts with ``<learner>--``, so thirty learners never share a name and
each finds their own groups in ``kafka-consumer-groups --list``.

The learner is ``COURSE_LEARNER`` when set (lowercase letters, digits and single
dashes), else, on a shared broker, the OS user and the host name (``alice-lab07``).
The name ends at the first ``--``, which a learner name never contains: two
different learners' names can never be equal.
"""
from __future__ import annotations

import getpass
import os
import re
import socket

from .broker import ENV_BOOTSTRAP

__all__ = ["ENV_LEARNER", "SEPARATOR", "shared_broker", "learner", "learner_prefix", "own_name",
           "is_own", "valid_learner", "as_learner"]

ENV_LEARNER = "COURSE_LEARNER"
SEPARATOR = "--"
MAX_LEARNER = 40  # topic names may have 249 characters; keep room for the course's own part
_LEARNER = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def shared_broker() -> bool:
    """True when the course talks to a broker it did not start (``KAFKA_BOOTSTRAP_SERVERS``)."""
    return bool(os.environ.get(ENV_BOOTSTRAP, "").strip())


def valid_learner(name: str) -> bool:
    """A usable learner name: lowercase letters and digits, single dashes between them, at most 40."""
    return isinstance(name, str) and len(name) <= MAX_LEARNER and _LEARNER.fullmatch(name) is not None


def as_learner(text: str) -> str:
    """``text`` made into a valid learner name (``"Alice Smith"`` -> ``"alice-smith"``); may be ``""``."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return name[:MAX_LEARNER].rstrip("-")


def learner() -> str:
    """This learner's name on a shared broker, or ``""`` on a private one (notebook 01).

    ``COURSE_LEARNER`` when set (a bad value raises ``ValueError`` saying what to use);
    otherwise, when ``KAFKA_BOOTSTRAP_SERVERS`` is set, ``<user>-<host>``.
    """
    explicit = os.environ.get(ENV_LEARNER, "").strip()
    if explicit:
        if not valid_learner(explicit):
            hint = as_learner(explicit) or "alice"
            raise ValueError(
                f"{ENV_LEARNER}={explicit!r} cannot prefix Kafka names: use lowercase letters, digits "
                f"and single dashes, at most {MAX_LEARNER} characters, for example {ENV_LEARNER}={hint}"
            )
        return explicit
    if not shared_broker():
        return ""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password database
        user = ""
    host = socket.gethostname().split(".")[0]
    return as_learner(f"{user}-{host}")[:MAX_LEARNER].rstrip("-") or "learner"


def learner_prefix() -> str:
    """``"<learner>--"`` on a shared broker, ``""`` on a private one (notebook 01)."""
    name = learner()
    return f"{name}{SEPARATOR}" if name else ""


def own_name(name: str) -> str:
    """``name`` made this learner's own: ``alice--test_group_1`` on a shared broker (notebook 01).

    On a private broker it is ``name`` unchanged. For fixed names (the article's group);
    fresh names come from :func:`helpers.topics.unique_name`, which calls this.
    """
    return learner_prefix() + name


def is_own(name: str) -> bool:
    """Whether a topic or group name is this learner's (on a private broker, every name is) (notebook 09)."""
    prefix = learner_prefix()
    return not prefix or name.startswith(prefix)
