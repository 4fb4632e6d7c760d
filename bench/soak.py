"""Soak: hours of simulated event time through every pipeline, RSS sampled (issue 16).

Generates (once, cached under --workdir) a base-station event feed of ``--hours`` of
event time and a backhaul capture of ``--pcap-hours`` (signalling, keepalives, GoIP
SMS protocol; RTP off so the file stays small), then replays both, merged on event
time, through the agent's whole pipeline in this process (decoders, call plane, IP
plane, watchlist, reporter, a JSONL sink), sampling RSS every ``--sample`` records.

RSS grows while the detectors' windows fill (24 h per SIM) and must then stay flat:
the figure is the drift after warm-up, (max RSS after warm-up - RSS at warm-up) /
RSS at warm-up, with warm-up = the first ``--warmup-hours`` of event time. Aim: within 5 %.

    python bench/soak.py --hours 48 --subscribers 5000 --pcap-hours 6
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def rss_mib() -> float:
    with open("/proc/self/statm", "rb") as fh:
        import os

        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def sampled(records: Iterable[Any], every: int, samples: list[tuple[float, float, int]]
            ) -> Iterator[Any]:
    n = 0
    for rec in records:
        n += 1
        if n % every == 0 and rec.ts is not None:
            samples.append((rec.ts, rss_mib(), n))
        yield rec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example:\n  python bench/soak.py --hours 48")
    ap.add_argument("--hours", type=float, default=48.0, help="hours of base-station events")
    ap.add_argument("--subscribers", type=int, default=5000, help="subscribers at the site")
    ap.add_argument("--pcap-hours", type=float, default=6.0, help="hours of backhaul capture")
    ap.add_argument("--warmup-hours", type=float, default=26.0,
                    help="event time before RSS is expected flat (24 h windows + slack)")
    ap.add_argument("--sample", type=int, default=50_000, help="records between RSS samples")
    ap.add_argument("--seed", type=int, default=5, help="simulator seed")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/afe-soak"), help="cache dir")
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    ev = a.workdir / f"events-{a.seed}-{a.subscribers}-{a.hours:g}h.jsonl"
    pcap = a.workdir / f"backhaul-{a.seed}-{a.pcap_hours:g}h.pcap"
    if not ev.exists():
        subprocess.run([sys.executable, "-m", "edge.cli.sim", "events", "--seed", str(a.seed),
                        "--subscribers", str(a.subscribers), "--hours", str(a.hours),
                        "--out", str(ev)], check=True)
    if a.pcap_hours > 0 and not pcap.exists():
        subprocess.run([sys.executable, "-m", "edge.cli.sim", "pcap", "--seed", str(a.seed),
                        "--duration", str(a.pcap_hours * 3600), "--no-rtp", "--out", str(pcap)],
                       check=True)

    from edge.assembly import assemble
    from edge.config import Config
    from edge.pipeline import merge_by_time
    from edge.report.sinks import JsonlSink

    cfg = Config()
    cfg.agent.data_dir = a.workdir / "state"
    agent = assemble(cfg, mode="replay", sinks=[JsonlSink(a.workdir / "reports.jsonl")],
                     inputs={"events": [ev], "pcap": [pcap] if a.pcap_hours > 0 else []})
    sources = agent.sources
    samples: list[tuple[float, float, int]] = []
    rss0 = rss_mib()
    t0 = time.perf_counter()
    agent.pipeline.run(sampled(merge_by_time(sources), a.sample, samples))
    dt = time.perf_counter() - t0
    agent.close()
    if not samples:
        print("no samples: feed too small for --sample")
        return 1
    ts0 = samples[0][0]
    warm = [s for s in samples if s[0] - ts0 >= a.warmup_hours * 3600]
    print(f"records {agent.pipeline.records:,} in {dt:.1f} s "
          f"({agent.pipeline.records / dt:,.0f}/s); event time {(samples[-1][0] - ts0) / 3600:.1f} h; "
          f"RSS at start {rss0:.1f} MiB")
    print("| event time (h) | records | RSS MiB |\n|---:|---:|---:|")
    step = max(1, len(samples) // 12)
    for ts, rss, n in samples[::step] + ([samples[-1]] if len(samples) % step else []):
        print(f"| {(ts - ts0) / 3600:.1f} | {n:,} | {rss:.1f} |")
    if warm:
        base = warm[0][1]
        peak = max(r for _, r, _ in warm)
        print(f"after warm-up ({a.warmup_hours:g} h): RSS {base:.1f} -> max {peak:.1f} MiB, "
              f"drift {100 * (peak - base) / base:+.1f} % (aim within 5 %)")
    else:
        print("feed shorter than the warm-up: no drift figure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
