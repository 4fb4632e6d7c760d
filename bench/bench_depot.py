"""Depot station throughput and memory: a simulated day through drivers and assembly.

    nice -n 10 python bench/bench_depot.py --parcels 30000

Writes a recording of ``--parcels`` parcels (simulators/depot, plain X-ray images so
the PNG decoding stays in but the physics rendering does not), then replays it
in-process on one core through the same protocol cores, X-ray core and parcel
assembly the agent runs (edge/courier/replay.py + assembly.py). Prints parcels per
CPU-second, device chunks per CPU-second, RSS sampled along the way (flat memory:
the last sample against the one after the first tenth), and the per-piece accuracy
against the truth file.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.courier.assembly import AssemblyStage, Geometry, ParcelAssembler  # noqa: E402
from edge.courier.parcel_log import parcel_line  # noqa: E402
from edge.courier.replay import DepotReplaySource  # noqa: E402
from edge.courier.waybills import WaybillStore  # noqa: E402
from simulators.depot.run import write_recording  # noqa: E402
from simulators.depot.score import load_jsonl, score  # noqa: E402
from simulators.depot.station import StationConfig, plan_station  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parcels", type=int, default=30000, help="parcels in the simulated day")
    ap.add_argument("--seed", type=int, default=3, help="station seed")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the recording here")
    ap.add_argument("--reuse", action="store_true",
                    help="replay the recording already in --workdir instead of writing one")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-depot-"))
    t0 = time.perf_counter()
    if not (args.reuse and (work / "manifest.json").exists()):
        plan = plan_station(StationConfig(parcels=args.parcels, seed=args.seed, render="flat",
                                          mm_per_px=3.0, unplugs=2))
        write_recording(plan, work, poll_s={"scale": 0.2, "dims": 0.5, "rfid": 0.25})
        del plan
        print(f"recording of {args.parcels:,} parcels written in "
              f"{time.perf_counter() - t0:.0f} s")
    size = sum(f.stat().st_size for f in work.rglob('*') if f.is_file()) / 2**20
    print(f"recording {work}: {size:.0f} MiB")
    rss_start = rss_mib()
    src = DepotReplaySource(work)
    store = WaybillStore(work / "waybills.jsonl")
    stage = AssemblyStage(ParcelAssembler("L1", Geometry(), store.get), store)
    sink = (work / "parcels.jsonl").open("wb")  # not kept in memory: memory must stay flat
    done = 0
    samples: list[tuple[int, float]] = []
    n = 0
    c0, w0 = time.process_time(), time.perf_counter()
    for rec in src:
        n += 1
        stage.feed(rec)
        if n % 512 == 0:
            for p in stage.tick(rec.ts):
                sink.write(orjson.dumps(parcel_line(p)) + b"\n")
                done += 1
            if n % 131_072 == 0:
                samples.append((done, rss_mib()))
    for p in stage.flush(0.0):
        sink.write(orjson.dumps(parcel_line(p)) + b"\n")
        done += 1
    sink.close()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    samples.append((done, rss_mib()))
    res = score(load_jsonl(work / "truth.jsonl"), load_jsonl(work / "parcels.jsonl"))
    chunks = src.counters()["chunks"]
    print(f"parcels: {done:,} in {cpu:.1f} CPU-s ({wall:.1f} s wall): "
          f"{done / cpu:,.0f} parcels per CPU-second; {chunks / cpu:,.0f} device chunks "
          f"and {n / cpu:,.0f} records per CPU-second")
    ref = samples[max(0, len(samples) // 10)] if len(samples) > 1 else samples[0]
    print("RSS MiB by parcels done: " + ", ".join(f"{p:,}: {m:.1f}" for p, m in samples[::max(
        1, len(samples) // 8)]) + f" | last {samples[-1][1]:.1f} vs {ref[1]:.1f} after "
          f"{ref[0]:,} parcels ({(samples[-1][1] - ref[1]) / ref[1] * 100:+.1f} %)")
    print(f"RSS before the replay {rss_start:.1f} MiB")
    print(f"accuracy: {res['accuracy']} all four: {res['all_four']} "
          f"(matched {res['matched']:,}/{res['parcels']:,}, extra {res['extra']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
