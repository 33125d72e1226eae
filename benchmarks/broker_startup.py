"""Embedded broker figures: time to ready (cold format, warm restarts) and memory (RSS).

Runs a private broker (COURSE_STATE_DIR in a temp folder) so the shared one is untouched:
    .venv/bin/python benchmarks/broker_startup.py [--restarts 3]
Targets (issue 2): ready within 10 s warm on a 2-core machine. Printed, not asserted:
shared machines are noisy.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    os.environ.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    with tempfile.TemporaryDirectory(prefix="broker-bench-") as tmp:
        os.environ["COURSE_STATE_DIR"] = tmp
        import helpers as hp
        from helpers.broker import _rss_mb

        try:
            t0 = time.perf_counter()
            first = hp.start_broker()
            first_wall = time.perf_counter() - t0
            rss_idle = _rss_mb(first.pid)
            topic = hp.create_topic(hp.unique_name("bench"), 3)
            hp.seed_messages(topic, args.messages, progress=False)
            hp.consume("sync", topic, hp.unique_name("bench-g"), max_records=args.messages)
            rss_busy = _rss_mb(first.pid)
            warm = []
            for _ in range(args.restarts):
                hp.stop_broker()
                t0 = time.perf_counter()
                hp.start_broker()
                warm.append(time.perf_counter() - t0)
            status = hp.broker_status()
        finally:
            hp.stop_broker()
    print(f"Apache Kafka {status.get('kafka_version')} embedded broker, {os.cpu_count()} cores")
    print(f"first start (format + start) : {first_wall:6.2f} s")
    print(f"warm start, median of {len(warm)}   : {statistics.median(warm):6.2f} s "
          f"(min {min(warm):.2f}, max {max(warm):.2f})   target < 10 s")
    print(f"RSS idle after first start   : {rss_idle} MB")
    print(f"RSS after {args.messages} msgs produce+consume: {rss_busy} MB")
    print(f"RSS after warm restarts      : {status.get('rss_mb')} MB")


if __name__ == "__main__":
    main()
