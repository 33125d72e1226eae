"""The benchmarks' own broker, so the course's broker is untouched (benchmarks/*.py)."""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def private_broker(prefix: str) -> Iterator[str]:
    """For this block, ``KAFKA_BOOTSTRAP_SERVERS`` is ignored and ``COURSE_STATE_DIR`` is a new
    temporary folder (its path is yielded): ``hp.start_broker()`` starts a broker of the
    benchmark's own, stopped and deleted at the end."""
    os.environ.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        os.environ["COURSE_STATE_DIR"] = tmp
        try:
            yield tmp
        finally:
            from helpers.broker import stop_broker

            stop_broker()
            os.environ.pop("COURSE_STATE_DIR", None)
