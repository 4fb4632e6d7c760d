"""Watchlists at scale (issue 14): load a 1 M-entry list, and replay speed with it.

1. builds a snapshot of ``--entries`` entries (IMSIs, numbers pseudonymised with the
   site key, IMEIs, addresses and prefixes, domains), applies it to a store and reloads
   it from disk as a restarted agent would, timing both (aim: under 5 s);
2. replays the same simulated event feed with an empty list and with the big list
   (which also holds some of the feed's own numbers, so hits happen) and prints
   events/s of each and their ratio.

    python bench/bench_watchlist.py --entries 1000000
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example:\n  python bench/bench_watchlist.py")
    ap.add_argument("--entries", type=int, default=1_000_000, help="entries in the list")
    ap.add_argument("--events", type=int, default=500_000, help="events in the replay feed")
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
    rates = {}
    for label, state in (("empty list", d / "empty"), ("1 M-entry list", d / "state")):
        conf = d / f"{state.name}.toml"
        conf.write_text(f'[agent]\ndata_dir = "{state}"\n[privacy]\nkey = "{key}"\n')
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        p = subprocess.run([sys.executable, "-m", "edge.cli.agent", "replay", "--config",
                            str(conf), "--events", str(ev), "--out", str(d / "r.jsonl"),
                            "--quiet"], check=True, capture_output=True, text=True)
        # the agent's own figure: the pipeline, without start-up and loading the list
        line = next(x for x in p.stderr.splitlines() if x.startswith("replayed"))
        rates[label] = float(line.split("(")[1].split("/s")[0].replace(",", ""))
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
        print(f"replay with {label}: {rates[label]:,.0f} events/s (pipeline, wall); "
              f"whole process {cpu:.2f} CPU-s")
    print(f"ratio: {rates['1 M-entry list'] / rates['empty list']:.2f}")
    shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
