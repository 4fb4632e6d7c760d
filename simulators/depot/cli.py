"""``edge-sim depot record|live|score``: the depot station simulator's commands."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson

CONFIG_TEMPLATE = """[depot]
lane = "{lane}"
scanner_port = "{dev}/scanner"
scale_port = "{dev}/scale"
dims_port = "{dev}/dims"
rfid_port = "{dev}/rfid"
xray_dir = "{xray}"
waybills = "{waybills}"
belt_mps = {belt}
scale_poll_s = {scale_poll}
dims_poll_s = {dims_poll}
rfid_poll_s = {rfid_poll}
"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = sub.add_parser("depot", help="a courier depot station: serial devices on ptys, an "
                                     "X-ray folder, waybills and a truth file")
    dsub = d.add_subparsers(dest="depot_command", required=True, metavar="MODE")
    for name, helptext in (("record", "write a recording (edge-agent replay --depot DIR)"),
                           ("live", "run the station on ptys and a folder in real time")):
        s = dsub.add_parser(name, help=helptext)
        s.add_argument("--parcels", type=int, default=100, help="parcels to send down the belt")
        s.add_argument("--seed", type=int, default=1, help="random seed (same seed, same station)")
        s.add_argument("--lane", default="L1", help="lane name")
        s.add_argument("--profile", choices=("train", "heldout"), default="train",
                       help="contents profile of simulators/depot/contents.py")
        s.add_argument("--mm-per-px", type=float, default=1.5, help="X-ray image scale")
        s.add_argument("--render", choices=("physics", "flat"), default="physics",
                       help="physics X-ray rendering, or plain images (benchmarks)")
        s.add_argument("--unplugs", type=int, default=1, help="device unplugs during the run")
        s.add_argument("--dims-unit", choices=("cm", "in"), default="cm",
                       help="dimensioner units (in implies lb)")
    rec = dsub.choices["record"]
    rec.add_argument("--out", type=Path, required=True, help="recording folder to write")
    live = dsub.choices["live"]
    live.add_argument("--workdir", type=Path, required=True,
                      help="folder for dev/ symlinks, xray/, waybills.jsonl, truth.jsonl")
    live.add_argument("--speed", type=float, default=1.0,
                      help="run the station this many times faster than real time")
    sc = dsub.add_parser("score", help="per-piece assembly accuracy against a truth file")
    sc.add_argument("--truth", type=Path, required=True, help="truth.jsonl of the simulator")
    sc.add_argument("--parcels", type=Path, required=True,
                    help="assembled parcels ([depot] parcels_out)")


def run(args: argparse.Namespace) -> int:
    from simulators.depot.station import StationConfig, plan_station

    if args.depot_command == "score":
        from simulators.depot.score import load_jsonl, score

        res = score(load_jsonl(args.truth), load_jsonl(args.parcels))
        print(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode())
        return 0
    if args.parcels < 1:
        print("edge-sim: --parcels must be >= 1", file=sys.stderr)
        return 2
    cfg = StationConfig(parcels=args.parcels, seed=args.seed, lane=args.lane,
                        profile=args.profile, mm_per_px=args.mm_per_px, render=args.render,
                        unplugs=args.unplugs, dims_unit=args.dims_unit,
                        speed=getattr(args, "speed", 1.0))
    plan = plan_station(cfg)
    if args.depot_command == "record":
        from simulators.depot.run import write_recording

        write_recording(plan, args.out)
        print(f"wrote a recording of {len(plan.parcels)} parcels to {args.out}", file=sys.stderr)
        return 0
    from simulators.depot.run import LiveStation

    station = LiveStation(plan, args.workdir)
    print(CONFIG_TEMPLATE.format(lane=cfg.lane, dev=args.workdir.resolve() / "dev",
                                 xray=station.xray_dir.resolve(),
                                 waybills=(args.workdir / "waybills.jsonl").resolve(),
                                 belt=cfg.belt_mps * cfg.speed,
                                 scale_poll=round(0.1 / cfg.speed, 4),
                                 dims_poll=round(0.25 / cfg.speed, 4),
                                 rfid_poll=round(0.1 / cfg.speed, 4)), flush=True)
    station.start(lead_s=2.0)
    try:
        station.wait(plan.duration / cfg.speed + 30)
        time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        station.stop()
    print(f"played {len(plan.parcels)} parcels", file=sys.stderr)
    return 0
