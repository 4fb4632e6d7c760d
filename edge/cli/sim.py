"""``edge-sim``: seeded simulators for every input, with truth files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.cli.common import fail

EPILOG = """examples:
  edge-sim events --seed 1 --subscribers 10000 --hours 24 --out day.jsonl --truth day.truth.json
  edge-sim events --seed 2 --max-events 1000000 --out 1m.jsonl
  edge-sim score --reports reports.jsonl --truth day.truth.json --config site.toml
  edge-sim pcap --seed 3 --duration 600 --out voip.pcap      # + voip.truth.json
  edge-sim pcap --seed 4 --packets 1000000 --out 1m.pcap
  edge-sim play --pcap voip.pcap --iface lo --speed 10
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edge-sim", description="Simulators for every input the agent reads.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from simulators.depot.cli import add_parser as add_depot

    add_depot(sub)
    e = sub.add_parser("events", help="base-station event feed (JSONL) with a truth file",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    e.add_argument("--seed", type=int, default=1, help="random seed (same seed, same feed)")
    e.add_argument("--subscribers", type=int, default=2000, help="subscribers at the site")
    e.add_argument("--hours", type=float, default=24.0, help="hours of event time")
    e.add_argument("--simbox-devices", type=int, default=3, help="SIM-boxes at the site")
    e.add_argument("--ports", type=int, default=8, help="SIM ports per SIM-box")
    e.add_argument("--start", type=float, default=1_767_225_600.0, help="start, epoch s")
    e.add_argument("--warmup-h", type=float, default=0.0,
                   help="of --hours, the first ones in which no SIM-box powers on (boxes "
                        "already on keep running): a detector's windows are full after them")
    e.add_argument("--max-events", type=int, help="stop after this many events")
    e.add_argument("--out", type=Path, required=True, help="events JSONL ('-' for stdout)")
    e.add_argument("--truth", type=Path, help="truth JSON to write")
    e.add_argument("--profile", choices=("train", "heldout"), default="train",
                   help="persona parameter ranges (held-out ranges differ from training)")
    e.add_argument("--evasion", default="naive,rotation,human,low_slow",
                   help="comma-separated SIM-box evasion levels, spread over the boxes")
    sc = sub.add_parser("score", help="score call-plane reports against a truth file",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog="example:\n  edge-agent replay --config site.toml --events "
                               "day.jsonl --out r.jsonl\n  edge-sim score --reports r.jsonl "
                               "--truth day.truth.json --config site.toml")
    sc.add_argument("--reports", type=Path, required=True, help="reports JSONL (replay --out)")
    sc.add_argument("--truth", type=Path, required=True, help="truth JSON from 'events'")
    sc.add_argument("--config", type=Path,
                    help="the agent's config (its privacy key pseudonymised the reports)")
    sc.add_argument("--key", help="the privacy key itself, instead of --config")
    sc.add_argument("--json", action="store_true", help="print JSON instead of tables")
    pc = sub.add_parser("pcap", help="labelled SIP/RTP/GoIP capture (pcap) with a truth file",
                        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    pc.add_argument("--seed", type=int, default=1, help="random seed (same seed, same capture)")
    pc.add_argument("--duration", type=float,
                    help="seconds of traffic (default 600, or 3600 cut at --packets)")
    pc.add_argument("--start", type=float, default=1_767_225_600.0, help="start, epoch s")
    pc.add_argument("--softphones", type=int, default=12, help="benign softphones")
    pc.add_argument("--ipphones", type=int, default=6, help="benign desk IP phones")
    pc.add_argument("--pbx-trunks", type=int, default=2, help="benign PBX trunks")
    pc.add_argument("--goip-plain", type=int, default=2, help="GoIPs with vendor signatures")
    pc.add_argument("--goip-masked", type=int, default=2, help="GoIPs with rewritten User-Agent/SDP")
    pc.add_argument("--simbank-clients", type=int, default=1, help="SIM-bank clients")
    pc.add_argument("--lines", type=int, default=8, help="lines (SIM ports) per GoIP")
    pc.add_argument("--gtp-share", type=float, default=0.3,
                    help="share of softphones/GoIPs carried inside GTP-U")
    pc.add_argument("--tcp-share", type=float, default=0.25,
                    help="share of benign endpoints using SIP over TCP")
    pc.add_argument("--no-rtp", action="store_true", help="signalling only")
    pc.add_argument("--packets", type=int,
                    help="stop after this many frames")
    pc.add_argument("--out", type=Path, required=True, help="pcap file to write")
    pc.add_argument("--truth", type=Path,
                    help="truth JSON (default: OUT with .truth.json instead of .pcap)")
    pl = sub.add_parser("play", help="play a pcap live onto an interface (root; default lo)",
                        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                        description="Send a capture's frames onto a network interface, paced "
                                    "by their timestamps. Needs root (a raw packet socket).")
    pl.add_argument("--pcap", type=Path, required=True, help="pcap/pcapng file to play")
    pl.add_argument("--iface", default="lo", help="interface to send on (default: lo)")
    pl.add_argument("--speed", type=float, default=1.0,
                    help="time acceleration (0: as fast as possible)")
    pl.add_argument("--max-packets", type=int, help="stop after this many frames")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "events":
        from simulators.telecom.events import EventSimConfig, write_events

        if args.subscribers < 1 or args.hours <= 0:
            return fail("--subscribers must be >= 1 and --hours > 0")
        if not 0 <= args.warmup_h < args.hours:
            return fail("--warmup-h must be >= 0 and under --hours")
        levels = tuple(x for x in args.evasion.split(",") if x)
        cfg = EventSimConfig(seed=args.seed, subscribers=args.subscribers, hours=args.hours,
                             simbox_devices=args.simbox_devices, ports_per_device=args.ports,
                             start_ts=args.start, profile=args.profile,
                             evasion=levels or ("naive",), warmup_h=args.warmup_h)
        out = sys.stdout.buffer if str(args.out) == "-" else args.out
        n = write_events(cfg, out, args.truth, max_events=args.max_events)
        print(f"wrote {n:,} events", file=sys.stderr)
        return 0
    if args.command == "score":
        return _score(args)
    if args.command == "pcap":
        return _pcap(args)
    if args.command == "play":
        return _play(args)
    if args.command == "depot":
        from simulators.depot.cli import run as run_depot

        return run_depot(args)
    return 2


def _score(args: argparse.Namespace) -> int:
    import orjson

    from edge.config import load_config
    from edge.errors import ConfigError
    from edge.eval.callplane import load_reports, markdown, score
    from edge.report.pseudonym import load_key

    for p in (args.reports, args.truth):
        if not p.exists():
            return fail(f"file not found: {p}")
    try:
        if args.key:
            key = args.key.encode()
        else:
            cfg = load_config(args.config)
            key = load_key(cfg.privacy.key, cfg.privacy.key_file, cfg.agent.data_dir)
        truth = orjson.loads(args.truth.read_bytes())
    except ConfigError as exc:
        return fail(f"invalid config: {exc}")
    except orjson.JSONDecodeError as exc:
        return fail(f"truth file is not JSON: {exc}")
    reports = load_reports(args.reports)
    matched, total = _subjects_in_truth(reports, truth, key)
    if total and not matched:
        return fail(f"none of the {total} SIM reports names a SIM of the truth file: the "
                    "reports were pseudonymised with another key (give the agent's --config "
                    "or --key) or belong to another simulated day", 3)
    res = score(reports, truth, key)
    if total and matched < total:
        print(f"warning: {total - matched} of {total} SIM reports name no SIM of the truth "
              "file", file=sys.stderr)
    if args.json:
        print(orjson.dumps(res.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(markdown(res), end="")
    return 0


def _subjects_in_truth(reports: list[dict], truth: dict, key: bytes) -> tuple[int, int]:
    """(SIM reports whose subject is a SIM of the truth, SIM reports): 0 of n = wrong key."""
    from edge.report.pseudonym import Pseudonymiser

    ps = Pseudonymiser(key)
    known = {ps.pseudonym("imsi", imsi) for imsi in truth.get("sims", {})}
    known.update(truth.get("sims", {}))  # reports written with pseudonymisation off
    subjects = [r.get("subject", {}).get("id") for r in reports
                if r.get("kind") == "simbox.sim" and r.get("subject", {}).get("type") == "imsi"]
    return sum(1 for s in subjects if s in known), len(subjects)


def _play(args: argparse.Namespace) -> int:
    import os
    import socket

    from simulators.telecom.playback import play_pcap

    if not args.pcap.exists():
        return fail(f"file not found: {args.pcap}")
    try:
        socket.if_nametoindex(args.iface)
    except OSError:
        names = ", ".join(n for _, n in socket.if_nameindex())
        return fail(f"no network interface named {args.iface!r} (this machine has: {names})")
    if os.geteuid() != 0:
        return fail("playing frames onto an interface needs a raw packet socket: run as root "
                    "(or give python CAP_NET_RAW); to feed the agent without root, use "
                    "'edge-agent replay --pcap FILE' instead")
    try:
        st = play_pcap(args.pcap, iface=args.iface, speed=args.speed,
                       max_packets=args.max_packets)
    except PermissionError as exc:
        return fail(f"not allowed to send on {args.iface}: {exc} (needs root or CAP_NET_RAW)")
    except OSError as exc:
        return fail(f"cannot send on {args.iface}: {exc}")
    print(f"sent {st.sent:,} frames on {args.iface} in {st.elapsed_s:.1f} s "
          f"({st.errors} errors)", file=sys.stderr)
    return 0


def _pcap(args: argparse.Namespace) -> int:
    from simulators.telecom.pcap import PcapSimConfig, simulate_pcap

    duration = args.duration or (3600.0 if args.packets else 600.0)
    if duration <= 0 or min(args.softphones, args.ipphones, args.pbx_trunks,
                                 args.goip_plain, args.goip_masked, args.simbank_clients,
                                 args.lines) < 0:
        return fail("--duration must be > 0 and persona counts >= 0")
    cfg = PcapSimConfig(seed=args.seed, duration_s=duration, start_ts=args.start,
                        softphones=args.softphones, ipphones=args.ipphones,
                        pbx_trunks=args.pbx_trunks, goip_plain=args.goip_plain,
                        goip_masked=args.goip_masked, simbank_clients=args.simbank_clients,
                        lines=args.lines, gtp_share=args.gtp_share, tcp_share=args.tcp_share,
                        rtp=not args.no_rtp, max_packets=args.packets)
    truth = args.truth or args.out.with_name(args.out.stem + ".truth.json")
    res = simulate_pcap(cfg, args.out, truth)
    print(f"wrote {res.packets:,} frames to {args.out}, truth in {truth}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
