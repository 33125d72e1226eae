"""Checks that several notebooks' tests share."""
from __future__ import annotations

import os
from typing import Any

import helpers.broker as broker


def broker_down_ran(down: dict[str, Any], shared: bool) -> bool:
    """A section that stops the broker (notebooks 03, 04) ran unless the broker is shared, and a
    skip says why; True when it ran, so the caller goes on to check what it showed."""
    assert down["shared"] is shared
    if shared:
        assert down["skipped"] is True and down["why"] == "shared broker"
        return False
    assert down["skipped"] is False
    return True


def session_broker_kept(session: broker.BrokerInfo) -> None:
    """The notebook stopped a broker of its own (tests/conftest.py, ``STOPS_BROKER``): the session's
    broker, which the tests running beside it share, is still the process the session started."""
    if os.environ.get("COURSE_TEST_PRIVATE_STATE"):
        status = broker.broker_status()
        assert status["running"] and status["pid"] == session.pid, (status, session)
