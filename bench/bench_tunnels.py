"""Benchmark: whole replay of a capture with every frame inside ERSPAN or MPLS, against
the same capture plain and against tshark field extraction, in the same run.

One seeded simulator capture (same seed, same packets) is written three times: plain,
every frame in ERSPAN II over GRE, every frame under a two-label MPLS stack. Then, in
rounds that interleave the variants (so a noisy neighbour hits them alike), each file
is replayed by ``edge-agent replay --pcap F`` (the whole process, the best of
``--rounds``), and tshark extracts the SIP fields once per file. Printed: packets/s,
the ratio of each tunnelled replay to the plain one, and each replay's ratio to tshark
on the same file.

Run by hand:  python bench/bench_tunnels.py [--packets 500000] [--rounds 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = (None, "erspan2", "mpls")


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=500_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--workdir", type=Path)
    a = ap.parse_args()
    from simulators.telecom.pcap import PcapSimConfig, simulate_pcap

    work = a.workdir or Path(tempfile.mkdtemp(prefix="bench-tunnels-"))
    work.mkdir(parents=True, exist_ok=True)
    agent = shutil.which("edge-agent") or "edge-agent"
    tshark = shutil.which("tshark")
    files = {}
    for v in VARIANTS:
        f = work / f"cap-{v or 'plain'}.pcap"
        simulate_pcap(PcapSimConfig(seed=a.seed, duration_s=3600.0, max_packets=a.packets,
                                    encap=v), f)
        files[v] = f
    best = dict.fromkeys(VARIANTS, float("inf"))
    for _ in range(a.rounds):
        for v in VARIANTS:
            out = work / f"rep-{v or 'plain'}.jsonl"
            best[v] = min(best[v], timed([agent, "replay", "--pcap", str(files[v]),
                                          "--out", str(out), "--quiet"]))
    ts = {}
    for v in VARIANTS:
        ts[v] = timed([tshark, "-r", str(files[v]), "-T", "fields", "-e", "sip.Method",
                       "-e", "sip.Call-ID", "-e", "sip.User-Agent"]) if tshark else float("nan")
    n = a.packets
    print("| capture | file MiB | edge-agent replay pkt/s (best of rounds, whole process) | "
          "vs plain replay | tshark fields pkt/s | replay / tshark |")
    print("|---|---:|---:|---:|---:|---:|")
    for v in VARIANTS:
        print(f"| {v or 'plain'} | {files[v].stat().st_size >> 20} | {n / best[v]:,.0f} | "
              f"{best[None] / best[v]:.2f} | {n / ts[v]:,.0f} | {ts[v] / best[v]:.1f}x |")
    print(f"\n({n:,} packets, {a.rounds} rounds; files in {work}; python "
          f"{sys.version.split()[0]}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
