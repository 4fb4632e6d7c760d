"""A/B of ``edge-agent replay`` between source trees, alternated, in one run.

Each replay runs in a child process (cwd = the tree, so the tree's own ``edge`` is
imported) under a small wrapper that reads ``RUSAGE_CHILDREN``: CPU seconds (user +
sys) and peak RSS of the replay alone. Bytecode is written (a first run per tree
compiles; installed agents do not pay that), so do a warm-up round first.

    git -C /work/main archive d68e0d5 | tar -x -C /tmp/seams-before
    python bench/ab_trees.py --tree before=/tmp/seams-before --tree after=. \\
        --tree after-nowarn=.@/tmp/nowarn.toml --inputs events,pcap,tiny --runs 2

``NAME=PATH@CONFIG`` passes ``--config CONFIG`` to that tree's replay. Inputs: the
500 k-event feed of ``bench_replay_events.py --events 500000`` and the 250 k-packet
capture of ``bench_pcap.py --sizes 250000`` (paths below, generated once with the
before tree's simulators so both trees read them), and a tiny real capture
(start-up cost).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

INPUTS = {
    "events": ["--events", "/tmp/seams-bench/events-500000-20000-99.jsonl"],
    "pcap": ["--pcap", "/tmp/seams-bench/sip-rtp-250000.pcap"],
    "tiny": ["--pcap", "../shared/captures/goip/ddns.pcap"],
}
_WRAP = ("import resource,subprocess,sys;"
         "p=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL);"
         "u=resource.getrusage(resource.RUSAGE_CHILDREN);"
         "print(p.returncode,u.ru_utime+u.ru_stime,u.ru_maxrss)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", action="append", required=True,
                    help="NAME=PATH[@CONFIG] (repeatable; alternated in this order)")
    ap.add_argument("--inputs", default="events,pcap,tiny",
                    help=f"comma list of {', '.join(INPUTS)}")
    ap.add_argument("--runs", type=int, default=2, help="rounds (default 2)")
    a = ap.parse_args()
    trees = [t.partition("=")[::2] for t in a.tree]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["OMP_NUM_THREADS"] = "1"
    tiny = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", INPUTS["tiny"][1]))
    for r in range(a.runs):
        for kind in a.inputs.split(","):
            args = INPUTS[kind] if kind != "tiny" else ["--pcap", tiny]
            for name, spec in trees:
                tree, _, conf = spec.partition("@")
                extra = ["--config", os.path.abspath(conf)] if conf else []
                t = time.time()
                res = subprocess.run(
                    [sys.executable, "-c", _WRAP, sys.executable, "-m", "edge.cli.agent",
                     "replay", *args, *extra, "--out", f"/tmp/ab-{name}-{kind}.jsonl",
                     "--quiet"], cwd=tree, capture_output=True, text=True, env=env)
                rc, cpu, rss = res.stdout.split()
                print(f"run {r} {kind:6} {name:12} rc {rc} cpu {float(cpu):6.2f} s  "
                      f"wall {time.time() - t:6.1f} s  peak RSS {int(rss) / 1024:6.0f} MB  "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
