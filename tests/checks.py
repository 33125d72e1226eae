"""Checks that several notebooks' tests share."""
from __future__ import annotations

from typing import Any


def broker_down_ran(down: dict[str, Any], shared: bool) -> bool:
    """A section that stops the broker (notebooks 03, 04) ran unless the broker is shared, and a
    skip says why; True when it ran, so the caller goes on to check what it showed."""
    assert down["shared"] is shared
    if shared:
        assert down["skipped"] is True and down["why"] == "shared broker"
        return False
    assert down["skipped"] is False
    return True
