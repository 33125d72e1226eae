"""Embedded broker figures: time to ready (cold format, warm restarts) and memory (RSS).

Runs a private broker (COURSE_STATE_DIR in a temp folder) so the shared one is untouched:
    .venv/bin/python benchmarks/broker_startup.py [--restarts 3]
Targets (issue 2): ready within 10 s warm on a 2-core machine. Warm starts alternate with and
without the class-data-sharing archive (helpers/broker.py), so their ratio comes from one run.
Printed, not asserted: shared machines are noisy.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

from _private import private_broker


def _cpu_s(pid: int | None) -> float:
    """CPU seconds the broker's JVM used to get ready."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    with private_broker("broker-bench-"):
        import helpers as hp
        import helpers.broker as broker
        from helpers.broker import _rss_mb

        t0 = time.perf_counter()
        first = hp.start_broker()
        first_wall = time.perf_counter() - t0
        rss_idle = _rss_mb(first.pid)
        topic = hp.create_topic(hp.unique_name("bench"), 3)
        hp.seed_messages(topic, args.messages, progress=False)
        hp.consume("sync", topic, hp.unique_name("bench-g"), max_records=args.messages)
        rss_busy = _rss_mb(first.pid)
        warm: list[tuple[float, float]] = []  # with the class-data-sharing archive
        plain: list[tuple[float, float]] = []  # and without it, alternating
        with_archive = broker._cds_flags
        for _ in range(args.restarts):
            for times, flags in ((warm, with_archive), (plain, lambda java, dump: ([], None))):
                hp.stop_broker()
                broker._cds_flags = flags
                t0 = time.perf_counter()
                info = hp.start_broker()
                times.append((time.perf_counter() - t0, _cpu_s(info.pid)))
                broker._cds_flags = with_archive
        status = hp.broker_status()
    print(f"Apache Kafka {status.get('kafka_version')} embedded broker, {os.cpu_count()} cores")
    print(f"first start (format + start) : {first_wall:6.2f} s")
    for label, times in (("warm start", warm), ("  without the archive", plain)):
        walls, cpus = [w for w, _ in times], [c for _, c in times]
        print(f"{label + ', median of ' + str(len(times)):32}: {statistics.median(walls):6.2f} s "
              f"(min {min(walls):.2f}, max {max(walls):.2f}), JVM CPU {statistics.median(cpus):.1f} s")
    wall_ratio = statistics.median(w for w, _ in plain) / statistics.median(w for w, _ in warm)
    cpu_ratio = statistics.median(c for _, c in plain) / statistics.median(c for _, c in warm)
    print(f"  without / with the archive: wall {wall_ratio:.2f}x, CPU {cpu_ratio:.2f}x   target < 10 s warm")
    print(f"RSS idle after first start   : {rss_idle} MB")
    print(f"RSS after {args.messages} msgs produce+consume: {rss_busy} MB")
    print(f"RSS after warm restarts      : {status.get('rss_mb')} MB")


if __name__ == "__main__":
    main()
