"""Watchlists at scale (issue 14): load a 1 M-entry list, and replay speed with it.

1. builds a snapshot of ``--entries`` entries (IMSIs, numbers pseudonymised with the
   site key, IMEIs, addresses and prefixes, domains), applies it to a store and reloads
   it from disk as a restarted agent would, timing both (aim: under 5 s);
2. replays the same simulated event feed with an empty list and with the big list
   (which also holds some of the feed's own numbers, so hits happen) and prints
   events/s of each and their ratio, and the whole process's CPU seconds without
   the list's load (measured in step 1) against the empty list's: on a shared box
   the CPU ratio is the figure that means something.

    python bench/bench_watchlist.py --entries 1000000
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# ``edge-agent replay`` with the CPU seconds of its pipeline run (records in to
# reports out, without start-up and loading the list) printed to stderr
_TIMED_REPLAY = """
import sys, time
import edge.pipeline
from edge.cli.agent import main
run = edge.pipeline.Pipeline.run
def timed(self, *a, **k):
    c = time.process_time()
    try:
        return run(self, *a, **k)
    finally:
        print("pipeline-cpu", time.process_time() - c, file=sys.stderr)
edge.pipeline.Pipeline.run = timed
sys.exit(main(sys.argv[1:]))
"""

# The three replays in one process, a chunk of records each in turn, each pipeline's CPU
# summed over its chunks: the box's load falls on all three alike (argv: data dir,
# chunk). Prints "empty E small S state M" in CPU-s.
_INTERLEAVED = """
import itertools, sys, time
from pathlib import Path
from edge.assembly import assemble, make_sinks
from edge.config import load_config
from edge.pipeline import merge_by_time
d, chunk = Path(sys.argv[1]), int(sys.argv[2])
agents, its, cpu = {}, {}, {}
for name in ("empty", "small", "state"):
    cfg = load_config(d / f"{name}.toml")
    a = agents[name] = assemble(cfg, mode="replay", inputs={"events": [d / "events.jsonl"]},
                                sinks=make_sinks(cfg, out=d / f"i-{name}.jsonl", mqtt=None,
                                                 stdout=False))
    its[name], cpu[name] = iter(merge_by_time(a.sources)), 0.0
live, k = list(agents), 0
while live:
    for name in live[k % len(live):] + live[:k % len(live)]:  # who goes first rotates
        c = time.process_time()
        recs = list(itertools.islice(its[name], chunk))
        if recs:
            agents[name].pipeline._feed_all(recs, None)
        else:
            agents[name].pipeline.finish()
            live.remove(name)
        cpu[name] += time.process_time() - c
    k += 1
for a in agents.values():
    a.close()
print(" ".join(f"{n} {c:.3f}" for n, c in cpu.items()))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example:\n  python bench/bench_watchlist.py")
    ap.add_argument("--entries", type=int, default=1_000_000, help="entries in the list")
    ap.add_argument("--events", type=int, default=500_000, help="events in the replay feed")
    ap.add_argument("--rounds", type=int, default=2,
                    help="rounds of the three replays, alternating (on a shared box the "
                         "per-round ratios move by +-20 %%: take 8 or more)")
    ap.add_argument("--interleaved", type=int, default=0, metavar="N",
                    help="also N runs of the three replays in one process, 5,000 records "
                         "each in turn (the steadier figure on a shared box)")
    a = ap.parse_args()
    from edge.downlink.watchlist import WatchlistStore
    from edge.report.pseudonym import Pseudonymiser

    d = Path(tempfile.mkdtemp(prefix="afe-bench-wl-"))
    key = "bench-watchlist-key-0123456789"
    ps = Pseudonymiser(key.encode())
    n = a.entries
    entries = []
    for i in range(n):
        r = i % 5
        if r == 0:
            entries.append({"kind": "imsi", "value": f"46009{i:010d}", "case": f"C-{i}"})
        elif r == 1:
            entries.append({"kind": "msisdn", "value": ps.pseudonym("phone", f"8615{i:09d}")})
        elif r == 2:
            entries.append({"kind": "imei", "value": f"{35000000000000 + i}"})
        elif r == 3:
            entries.append({"kind": "ip", "value": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}."
                                                   f"{i & 255}" + ("/30" if i % 10 == 3 else "")})
        else:
            entries.append({"kind": "domain", "value": f"s{i}.example"})
    body = {"id": "bench", "version": 1, "type": "snapshot", "entries": entries}
    # CPU seconds of this process (wall time on a shared box measures the neighbours)
    t0, w0 = time.process_time(), time.perf_counter()
    WatchlistStore(d / "state").apply(body)
    t_apply, w_apply = time.process_time() - t0, time.perf_counter() - w0
    t0, w0 = time.process_time(), time.perf_counter()
    wl = WatchlistStore(d / "state").current()
    t_load, w_load = time.process_time() - t0, time.perf_counter() - w0
    size = (d / "state" / "watchlist.json").stat().st_size / 2**20
    print(f"{len(wl):,} entries ({size:.0f} MiB file): applied and stored in {t_apply:.2f} "
          f"CPU-s ({w_apply:.2f} s wall); loaded at start in {t_load:.2f} CPU-s "
          f"({w_load:.2f} s wall) (aim < 5 s)")
    ev = d / "events.jsonl"
    subprocess.run([sys.executable, "-m", "edge.cli.sim", "events", "--seed", "99",
                    "--subscribers", "20000", "--hours", "1000", "--max-events",
                    str(a.events), "--out", str(ev)], check=True, capture_output=True)
    # a list of one entry per kind: the matcher does all its per-event work, so this
    # against the 1 M list is the cost of the list's size alone
    WatchlistStore(d / "small").apply({"id": "bench-small", "version": 1, "type": "snapshot",
                                       "entries": entries[:5]})
    labels = ("empty list", "5-entry list", "1 M-entry list")
    rates: dict[str, list[float]] = {k: [] for k in labels}
    cpus: dict[str, list[float]] = {k: [] for k in labels}
    pipe_cpu: dict[str, list[float]] = {k: [] for k in labels}
    # the replays alternate, round after round, so a change in the box's load hits
    # each; the best of each is compared (noise only ever adds time), and the median
    # of the ratios within a round (the replays of a round ran minutes apart at most)
    for label, state in tuple(zip(labels, (d / "empty", d / "small", d / "state"),
                                  strict=True)) * a.rounds:
        conf = d / f"{state.name}.toml"
        conf.write_text(f'[agent]\ndata_dir = "{state}"\n[privacy]\nkey = "{key}"\n')
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        p = subprocess.run([sys.executable, "-c", _TIMED_REPLAY, "replay", "--config",
                            str(conf), "--events", str(ev), "--out", str(d / "r.jsonl"),
                            "--quiet"], check=True, capture_output=True, text=True)
        pipe_cpu[label].append(float(next(x for x in p.stderr.splitlines()
                                          if x.startswith("pipeline-cpu")).split()[1]))
        # the agent's own figure: the pipeline, without start-up and loading the list
        line = next(x for x in p.stderr.splitlines() if x.startswith("replayed"))
        rates[label].append(float(line.split("(")[1].split("/s")[0].replace(",", "")))
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
        cpus[label].append(cpu)
        print(f"replay with {label}: {rates[label][-1]:,.0f} events/s (pipeline, wall); "
              f"whole process {cpu:.2f} CPU-s, of it the pipeline {pipe_cpu[label][-1]:.2f} "
              f"CPU-s (load average {os.getloadavg()[0]:.1f})")
    best = {k: min(v) for k, v in cpus.items()}
    # the replay's CPU without loading the list (measured above, in this process)
    matching = best["1 M-entry list"] - t_load
    print(f"ratio, pipeline events/s (best of {a.rounds}, wall): "
          f"{max(rates['1 M-entry list']) / max(rates['empty list']):.2f}")
    bp = {k: min(v) for k, v in pipe_cpu.items()}
    print(f"ratio, pipeline CPU seconds (best of {a.rounds}): empty {bp['empty list']:.2f} / 1 M "
          f"{bp['1 M-entry list']:.2f} = {bp['empty list'] / bp['1 M-entry list']:.2f}; "
          f"5-entry list {bp['5-entry list']:.2f} / 1 M = "
          f"{bp['5-entry list'] / bp['1 M-entry list']:.2f}; empty / 5-entry = "
          f"{bp['empty list'] / bp['5-entry list']:.2f}")
    per_round = {name: statistics.median(pipe_cpu[x][i] / pipe_cpu[y][i]
                                         for i in range(a.rounds))
                 for name, x, y in (("empty / 1 M", "empty list", "1 M-entry list"),
                                    ("5-entry / 1 M", "5-entry list", "1 M-entry list"),
                                    ("empty / 5-entry", "empty list", "5-entry list"))}
    print(f"ratio, pipeline CPU seconds, median of the {a.rounds} rounds' ratios: "
          + "; ".join(f"{k} {v:.2f}" for k, v in per_round.items()))
    print(f"ratio, whole-process CPU (best of {a.rounds}) without the list's load "
          f"({best['1 M-entry list']:.2f} - {t_load:.2f} CPU-s) against the empty list's "
          f"{best['empty list']:.2f}: {best['empty list'] / matching:.2f}")
    for _ in range(a.interleaved):
        p = subprocess.run([sys.executable, "-c", _INTERLEAVED, str(d), "5000"], check=True,
                           capture_output=True, text=True)
        c = dict(zip(p.stdout.split()[::2], map(float, p.stdout.split()[1::2]), strict=True))
        print(f"interleaved in one process: pipeline CPU empty {c['empty']:.2f}, 5-entry "
              f"{c['small']:.2f}, 1 M {c['state']:.2f} s: empty / 1 M "
              f"{c['empty'] / c['state']:.2f}; 5-entry / 1 M {c['small'] / c['state']:.2f}; "
              f"empty / 5-entry {c['empty'] / c['small']:.2f} (load average "
              f"{os.getloadavg()[0]:.1f})")
    shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
