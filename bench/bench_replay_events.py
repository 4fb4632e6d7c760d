"""Replay throughput and peak RSS on simulated base-station events (issue 2 figure).

Generates N events with the simulator (once, cached in /tmp), then runs
``edge-agent replay`` on them in a child process and prints events/s and peak RSS.

    python bench/bench_replay_events.py --events 1000000
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--subscribers", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=99)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/afe-bench"))
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    ev = a.workdir / f"events-{a.events}-{a.subscribers}-{a.seed}.jsonl"
    if not ev.exists():
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "edge.cli.sim", "events", "--seed", str(a.seed),
                        "--subscribers", str(a.subscribers), "--hours", "1000",
                        "--max-events", str(a.events), "--out", str(ev)], check=True)
        print(f"generated {ev} in {time.perf_counter() - t:.1f} s")
    n = sum(1 for _ in open(ev, "rb"))
    out = a.workdir / "reports.jsonl"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "edge.cli.agent", "replay", "--events", str(ev),
                    "--out", str(out), "--quiet"], check=True)
    dt = time.perf_counter() - t
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"events: {n:,}  wall: {dt:.2f} s  rate: {n / dt:,.0f} events/s "
          f"(process start included)  peak RSS: {rss_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
