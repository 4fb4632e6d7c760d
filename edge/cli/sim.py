"""``edge-sim``: seeded simulators for every input, with truth files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.cli.common import fail

EPILOG = """examples:
  edge-sim events --seed 1 --subscribers 10000 --hours 24 --out day.jsonl --truth day.truth.json
  edge-sim events --seed 2 --max-events 1000000 --out 1m.jsonl
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edge-sim", description="Simulators for every input the agent reads.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    e = sub.add_parser("events", help="base-station event feed (JSONL) with a truth file",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    e.add_argument("--seed", type=int, default=1)
    e.add_argument("--subscribers", type=int, default=2000)
    e.add_argument("--hours", type=float, default=24.0)
    e.add_argument("--simbox-devices", type=int, default=3)
    e.add_argument("--ports", type=int, default=8, help="SIM ports per SIM-box")
    e.add_argument("--start", type=float, default=1_767_225_600.0, help="start, epoch s")
    e.add_argument("--max-events", type=int, help="stop after this many events")
    e.add_argument("--out", type=Path, required=True, help="events JSONL ('-' for stdout)")
    e.add_argument("--truth", type=Path, help="truth JSON to write")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "events":
        from simulators.telecom.events import EventSimConfig, write_events

        if args.subscribers < 1 or args.hours <= 0:
            return fail("--subscribers must be >= 1 and --hours > 0")
        cfg = EventSimConfig(seed=args.seed, subscribers=args.subscribers, hours=args.hours,
                             simbox_devices=args.simbox_devices, ports_per_device=args.ports,
                             start_ts=args.start)
        out = sys.stdout.buffer if str(args.out) == "-" else args.out
        n = write_events(cfg, out, args.truth, max_events=args.max_events)
        print(f"wrote {n:,} events", file=sys.stderr)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
