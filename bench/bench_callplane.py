"""Call-plane SIM-box detector: replay throughput and peak RSS (issue 4 figures).

Generates a base-station event feed with the simulator (once, cached in --workdir):
by default 5,000,000 events from 500,000 subscribers with SIM-boxes of every evasion
level, then runs ``edge-agent replay`` (JSONL decoder, pipeline, call-plane detector
with the committed ONNX model, reporter, JSONL sink) on it in a child process, and
prints events/s and the child's peak RSS, and the ratio of the replay's rate to a
bare ``json.loads`` loop over the same file measured in the same run (once before
and once after the replay, averaged, so a change in the box's load shows). A second, in-process pass times the decoder
alone and decoder + detector without the pipeline, to show where the time goes.

    python bench/bench_callplane.py                     # 5 M events, 500 k subscribers
    python bench/bench_callplane.py --events 1000000 --subscribers 100000
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def generate(path: Path, events: int, subscribers: int, seed: int) -> None:
    from simulators.telecom.events import EventSimConfig, write_events

    # Hours enough for the requested count at ~5 events per subscriber-hour.
    hours = max(1.0, events / (subscribers * 4.0))
    cfg = EventSimConfig(seed=seed, subscribers=subscribers, hours=hours,
                         simbox_devices=max(4, subscribers // 5000), ports_per_device=8,
                         profile="heldout")
    t = time.perf_counter()
    n = write_events(cfg, path, path.with_suffix(".truth.json"), max_events=events)
    print(f"generated {n:,} events ({subscribers:,} subscribers, {hours:.1f} h) in "
          f"{time.perf_counter() - t:.0f} s -> {path}")


def json_loads_rate(path: Path) -> tuple[float, float]:
    """(lines per wall second, lines per CPU second) of a bare stdlib ``json.loads``
    loop over the file."""
    import json

    loads = json.loads
    n = 0
    t = time.perf_counter()
    c = time.process_time()
    with open(path, "rb") as fh:
        for ln in fh:
            loads(ln)
            n += 1
    return n / (time.perf_counter() - t), n / (time.process_time() - c)


def in_process(path: Path, limit: int) -> None:
    from drivers.events.decoder import EventDecoder
    from edge.config import CallPlaneSection
    from edge.records import BaseStationEvent
    from edge.telecom.callplane.build import load_callplane_model
    from edge.telecom.callplane.detector import CallPlaneDetector

    lines = []
    with open(path, "rb") as fh:
        for i, ln in enumerate(fh):
            if i >= limit:
                break
            lines.append(ln)
    block = b"".join(lines)
    dec = EventDecoder()
    t = time.perf_counter()
    evs = dec.decode_block(block, 1)
    dt_dec = time.perf_counter() - t
    cfg = CallPlaneSection()
    det = CallPlaneDetector(cfg, load_callplane_model(cfg))
    t = time.perf_counter()
    nxt = -1.0
    for ev in evs:
        if type(ev) is BaseStationEvent:
            det.feed(ev)
            if ev.ts >= nxt:
                det.tick(ev.ts)
                nxt = ev.ts + 1.0
    det.flush(nxt)
    dt_det = time.perf_counter() - t
    n = len(lines)
    del evs
    # As replay runs: each line decoded just before the detector folds it.
    dec = EventDecoder()
    det = CallPlaneDetector(cfg, load_callplane_model(cfg))
    t = time.perf_counter()
    nxt = -1.0
    for ev in dec.iter_block(block, 1):
        if type(ev) is BaseStationEvent:
            det.feed(ev)
            if ev.ts >= nxt:
                det.tick(ev.ts)
                nxt = ev.ts + 1.0
    det.flush(nxt)
    dt_stream = time.perf_counter() - t
    print(f"in-process on {n:,} events: decoder {n / dt_dec:,.0f} ev/s, detector "
          f"{n / dt_det:,.0f} ev/s (each over a list of all events), decoder+detector "
          f"streamed {n / dt_stream:,.0f} ev/s; scored {det.scored:,} in "
          f"{det.batches:,} batches")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--subscribers", type=int, default=500_000)
    ap.add_argument("--seed", type=int, default=4711)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/afe-bench-callplane"))
    ap.add_argument("--in-process", type=int, default=1_000_000,
                    help="events for the in-process breakdown (0: skip)")
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    ev = a.workdir / f"events-{a.events}-{a.subscribers}-{a.seed}.jsonl"
    if not ev.exists():
        generate(ev, a.events, a.subscribers, a.seed)
    n = sum(1 for _ in open(ev, "rb"))
    cfg = a.workdir / "bench.toml"
    cfg.write_text('[privacy]\nkey = "bench-key-0123456789"\n[agent]\n'
                   'status_interval_s = 3600.0\n[detectors.ipplane]\nenabled = false\n')
    out = a.workdir / "reports.jsonl"
    build = subprocess.run([sys.executable, "-m", "edge.cli.agent", "--version"],
                           capture_output=True, text=True, check=True).stdout.splitlines()[-1]
    print(f"replay build: {build}")  # compiled (edge/native.py) or pure Python
    ref_before = json_loads_rate(ev)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the --version child's CPU
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "edge.cli.agent", "replay", "--config", str(cfg),
                    "--events", str(ev), "--out", str(out), "--quiet"], check=True)
    dt = time.perf_counter() - t
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss_mb = ru.ru_maxrss / 1024
    cpu = ru.ru_utime + ru.ru_stime - ru0.ru_utime - ru0.ru_stime
    print(f"edge-agent replay: {n:,} events in {dt:.1f} s = {n / dt:,.0f} events/s "
          f"(process start and model load included); CPU {cpu:.1f} s = {n / cpu:,.0f} "
          f"events per CPU-second; peak RSS {rss_mb:.0f} MB")
    ref_after = json_loads_rate(ev)
    ref = (ref_before[0] + ref_after[0]) / 2
    ref_cpu = (ref_before[1] + ref_after[1]) / 2
    print(f"bare json.loads loop over the same file: {ref_before[0]:,.0f} lines/s before, "
          f"{ref_after[0]:,.0f} after the replay ({ref_cpu:,.0f} per CPU-second); "
          f"replay / json.loads = {n / dt / ref:.2f}x wall, {n / cpu / ref_cpu:.2f}x CPU "
          f"(process start and model load included)")
    print(f"load average during the run: {os.getloadavg()[0]:.2f} (2 cores)")
    if a.in_process:
        in_process(ev, a.in_process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
