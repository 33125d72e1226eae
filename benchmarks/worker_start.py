"""What a crash-lab worker costs: forked by the fork server, a new interpreter, or a warm one.

Runs a private broker (COURSE_STATE_DIR in a temp folder), then crash trials that alternate
the three ways to start their workers, so the ratios come from one run. "warm pool" is what
the replay labs did before the fork server: two workers started ahead of the click, their
start counted in the CPU figure (2 s before the trial, out of its wall time):
    .venv/bin/python benchmarks/worker_start.py [--trials 10] [--messages 200]
Prints, per way, the machine's busy CPU seconds and the wall seconds per trial (two workers
each: the killed run and the rerun). Printed, not asserted: shared machines are noisy.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

from _private import private_broker


def _busy_cpu_s() -> float:
    """CPU seconds every process on the machine used so far (/proc/stat: user, nice, system, irq)."""
    with open("/proc/stat") as fh:
        f = [int(x) for x in fh.readline().split()[1:8]]
    return (f[0] + f[1] + f[2] + f[5] + f[6]) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=10, help="trials per way")
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    with private_broker("worker-bench-"):
        import helpers as hp
        from helpers.crashlab import CrashPlan, run_trial, trial
        from helpers.crashlab.warm import WarmWorkers

        try:
            hp.start_broker()
            topic = hp.create_topic(hp.unique_name("bench-workers"), 3)
            hp.seed_messages(topic, args.messages, progress=False)
            ways = ("forked", "new interpreter", "warm pool")
            figures: dict[str, list[tuple[float, float]]] = {way: [] for way in ways}
            pool = WarmWorkers(2)
            for i in range(args.trials + 1):
                for way in figures:
                    trial.FORK = way != "new interpreter"
                    c0 = _busy_cpu_s()
                    if way == "warm pool":
                        pool.fill()
                        time.sleep(2)  # the click comes after the workers have imported everything
                    t0 = time.perf_counter()
                    report = run_trial("sync", CrashPlan(after_records=args.messages // 2), topic=topic,
                                       n_messages=args.messages, max_poll_records=50,
                                       workers=pool if way == "warm pool" else None)
                    assert report.lost == 0, report.summary()
                    if i:  # the first round warms up (the fork server starts in it)
                        figures[way].append((_busy_cpu_s() - c0, time.perf_counter() - t0))
            pool.close()
        finally:
            trial.FORK = hasattr(os, "fork")
    print(f"crash trials of {args.messages} records, {args.trials} per way, alternating:")
    for way, rows in figures.items():
        cpu, wall = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
        print(f"  {way:16s} median busy CPU {cpu:5.2f} s, wall {wall:5.2f} s per trial")
    cpu_of = {way: statistics.median(r[0] for r in rows) for way, rows in figures.items()}
    wall_of = {way: statistics.median(r[1] for r in rows) for way, rows in figures.items()}
    print(f"  forked workers use {cpu_of['new interpreter'] / cpu_of['forked']:.2f}x less CPU per trial than "
          f"new interpreters, and {cpu_of['warm pool'] / cpu_of['forked']:.2f}x less than a warm pool")
    print(f"  a trial's wall time, warm pool / forked: {wall_of['warm pool'] / wall_of['forked']:.2f}")


if __name__ == "__main__":
    main()
