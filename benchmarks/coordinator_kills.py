"""Coordinator kills on the three-node cluster: many SIGKILLs, the kill table per commit mode (notebook 12).

Each kill is one :func:`helpers.failover.run_failover` trial: one consumer per commit mode, all
coordinated by the same node, which is SIGKILLed; then the node is restarted and the benchmark
waits until it is back in sync before the next kill. Prints one line per kill, then per mode:
kills, records lost, records replayed (processed twice), offsets acknowledged before the kill
against those read after the failover, by a stable read (``require_stable``) and by the admin
client's ordinary read (which can trail for a moment on a new leader), and the time from the
kill to the first successful commit (median and max). Rows go to a JSON-lines file as they come.

    .venv/bin/python benchmarks/coordinator_kills.py [--kills 20] [--modes sync,async,combined,auto]

Uses the course's cluster (``make cluster``; started if needed, left running). Figures are
printed, not asserted: the machine is shared and noisy.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def _table(rows: list[dict]) -> str:
    import pandas as pd

    out = []
    for mode in dict.fromkeys(m for r in rows for m in r["modes"]):
        got = [r["modes"][mode] for r in rows if mode in r["modes"]]
        waits = [g["kill_to_first_commit_s"] for g in got if g["kill_to_first_commit_s"] is not None]
        parts = [(p, a, (g["found_after"] or {}).get(p)) for g in got for p, a in g["acked_before"].items()]
        admin_parts = [(p, a, (g.get("found_after_admin") or {}).get(p))
                       for g in got for p, a in g["acked_before"].items()]
        out.append({
            "mode": mode, "kills": len(got), "lost": sum(g["lost"] for g in got),
            "replayed (total)": sum(g["duplicates"] for g in got),
            "replayed (max per kill)": max(g["duplicates"] for g in got),
            "replayed by the failover itself": sum(g["duplicates_run1"] for g in got),
            "offsets acked before": len(parts),
            "stable read >= acked": sum(1 for _, a, f in parts if f is not None and f >= a),
            "went backwards (stable read)": sum(1 for g in got if g["went_backwards"]),
            "admin read >= acked": sum(1 for _, a, f in admin_parts if f is not None and f >= a),
            "admin read behind": sum(1 for g in got if g.get("admin_read_behind")),
            "kill->commit median s": round(statistics.median(waits), 2) if waits else None,
            "kill->commit max s": round(max(waits), 2) if waits else None,
            "no commit after the kill": len(got) - len(waits),
            "commit() blocked max s": max((g["longest_commit_call_s"] or 0) for g in got),
        })
    return pd.DataFrame(out).set_index("mode").T.to_string()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20, help="node kills (each under every mode)")
    parser.add_argument("--modes", default="sync,async,combined,auto")
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--kill-after", default="0.5,1,2,3",
                        help="seconds after the first acknowledged commits, used in turn")
    parser.add_argument("--out", default=".course/bench/coordinator_kills.jsonl")
    parser.add_argument("--resume", action="store_true",
                        help="count the kills already in --out (an interrupted run) toward --kills")
    parser.add_argument("--restart-timeout", type=float, default=240.0,
                        help="seconds a restarted node may take to answer (a loaded machine is slow)")
    args = parser.parse_args()

    from helpers import cluster
    from helpers import failover as fo

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    moments = [float(x) for x in args.kill_after.split(",")]
    target = fo.failover_target()
    print(target.note, flush=True)
    for n, node in cluster.cluster_status()["nodes"].items():  # a node an interrupted run left down
        if not node["alive"]:
            print(f"node {n} is down: restarting it", flush=True)
            cluster.restart_node(int(n), timeout=args.restart_timeout)
    cluster.wait_in_sync(args.restart_timeout)
    topic = fo.make_topic(target.bootstrap, args.messages)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def kill_coordinator(group: str) -> int:
        node = cluster.coordinator_of(group)
        cluster.kill_node(node)
        return node

    rows: list[dict] = []
    if args.resume and out.exists():
        rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        print(f"resuming after {len(rows)} kills already in {out}", flush=True)
    t_all = time.perf_counter()
    for i in range(len(rows), args.kills):
        cluster.wait_in_sync()
        t0 = time.perf_counter()
        rep = fo.run_failover(modes, bootstrap=target.bootstrap, kill_coordinator=kill_coordinator,
                              topic=topic, kill_after_s=moments[i % len(moments)])
        trial_s = time.perf_counter() - t0
        restart_s = cluster.restart_node(rep.node, timeout=args.restart_timeout)
        in_sync_s = cluster.wait_in_sync(args.restart_timeout)
        row = {"kill": i + 1, **rep.summary(), "trial_s": round(trial_s, 1),
               "restart_s": round(restart_s, 1), "in_sync_s": round(in_sync_s, 1),
               "kill_after_s": moments[i % len(moments)]}
        rows.append(row)
        with out.open("a") as f:
            f.write(json.dumps(row, default=str) + "\n")
        waits = {m: r["kill_to_first_commit_s"] for m, r in rep.modes.items()}
        print(f"kill {i + 1}/{args.kills}: node {rep.node}, kill->first commit {waits}, lost "
              f"{sum(r['lost'] for r in rep.modes.values())}, replayed "
              f"{ {m: r['duplicates'] for m, r in rep.modes.items()} }, stable read behind "
              f"{[m for m, r in rep.modes.items() if r['went_backwards']] or 'none'}, admin read behind "
              f"{[m for m, r in rep.modes.items() if r['admin_read_behind']] or 'none'}, witness "
              f"{'went backwards' if rep.witness['went_backwards'] else 'kept'}; trial {trial_s:.0f} s, "
              f"restart {restart_s:.1f} s, in sync {in_sync_s:.1f} s", flush=True)
    print(f"\n{len(rows)} kills ({time.perf_counter() - t_all:.0f} s in this run); rows in {out}\n")
    print(_table(rows))
    restarts = [r["restart_s"] for r in rows]
    back = sum(1 for r in rows if r["witness"]["went_backwards"])
    behind = sum(1 for r in rows if r["witness"].get("admin_read_behind"))
    print(f"\nwitness groups: {back} of {len(rows)} went backwards (stable read); the admin read was "
          f"behind in {behind}")
    print(f"node restart until it answers: median {statistics.median(restarts):.1f} s, "
          f"max {max(restarts):.1f} s; then in sync: max {max(r['in_sync_s'] for r in rows):.1f} s")


if __name__ == "__main__":
    main()
