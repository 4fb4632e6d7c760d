"""``edge-agent``: the live daemon, replay of recorded inputs, config check, demo."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import time
from pathlib import Path
from typing import Any

from edge import __version__
from edge.cli.common import fail, progress_bar, setup_logging, setup_logging_from
from edge.config import Config, load_config
from edge.errors import ConfigError, EdgeError

log = logging.getLogger("edge.agent")

EPILOG_RUN = """example:
  edge-agent run --config /etc/afe/agent.toml
"""
EPILOG_REPLAY = """examples:
  edge-sim events --seed 7 --out day.jsonl --truth day.truth.json
  edge-agent replay --events day.jsonl --out reports.jsonl
  edge-agent replay --config site.toml --pcap capture.pcapng --out reports.jsonl
"""
EPILOG_CHECK = """example:
  edge-agent check-config /etc/afe/agent.toml && echo ok
"""
EPILOG_DEMO = """examples:
  edge-agent demo                       # own broker on a free port, simulated site
  edge-agent demo --broker 127.0.0.1:1883 --subscribers 5000 --hours 6
"""


class _Version(argparse.Action):
    """``--version``: the version, and which build of the call plane runs (its
    compiled modules, or the pure-Python ones and why: :mod:`edge.native`)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        import edge.telecom.callplane.state  # noqa: F401  (which build loads)
        from edge import native

        print(f"{parser.prog} {__version__}\n{native.status()}")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edge-agent",
        description="Edge agent against telecom fraud: detects SIM-boxes, GoIP gateways "
                    "and card-batch parcels on the device and reports over MQTT.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="run 'edge-agent COMMAND --help' for each command's options and an example",
    )
    p.add_argument("--version", action=_Version, nargs=0,
                   help="show the version and which build of the call plane runs, and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run the live daemon", epilog=EPILOG_RUN,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Run the agent on its live inputs until SIGINT/SIGTERM.")
    r.add_argument("--config", required=True, type=Path, help="TOML config file")

    rp = sub.add_parser("replay", help="run the pipeline over recorded inputs",
                        epilog=EPILOG_REPLAY,
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Run the same pipeline as 'run' over recorded files, as "
                                    "fast as possible, on event time (deterministic), writing "
                                    "every report it would publish.")
    rp.add_argument("--config", type=Path, help="TOML config (default: embedded defaults)")
    rp.add_argument("--events", type=Path, action="append", default=[],
                    help="base-station events JSONL (repeatable)")
    rp.add_argument("--pcap", type=Path, action="append", default=[],
                    help="pcap/pcapng file (repeatable)")
    rp.add_argument("--depot", type=Path, action="append", default=[],
                    help="depot station recording folder (repeatable; see README 'Depot "
                         "station')")
    rp.add_argument("--out", type=Path, required=True, help="reports JSONL to write")
    rp.add_argument("--mqtt", action="store_true",
                    help="also publish to the MQTT broker of --config's [mqtt] section "
                         "(needs --config)")
    rp.add_argument("--quiet", action="store_true", help="no per-report lines on stdout")

    c = sub.add_parser("check-config", help="validate a config file and exit",
                       epilog=EPILOG_CHECK,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Validate a config and make every check 'run' makes "
                                   "before starting (live inputs present, interfaces and "
                                   "ports exist, keys readable, models verify); exit 0 if "
                                   "all pass, 2 listing every problem if not.")
    c.add_argument("file", type=Path)
    c.add_argument("--mode", choices=("run", "replay"), default="run",
                   help="check for 'run' (default: live inputs, interfaces, ports) or "
                        "'replay' (files only)")
    c.add_argument("--no-probe", action="store_true",
                   help="skip what depends on this machine (interfaces, ports, devices): "
                        "for configs prepared for another box")

    d = sub.add_parser("demo", help="simulated site -> agent -> MQTT -> subscriber",
                       epilog=EPILOG_DEMO,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Simulators feed the agent, the agent detects and reports "
                                   "to an MQTT broker (its own, unless --broker is given), "
                                   "and a subscriber shows what arrived.")
    d.add_argument("--broker", help="host:port of an existing broker (default: start a private "
                   "mosquitto on a free port)")
    d.add_argument("--subscribers", type=int, default=3000,
                   help="simulated subscribers at the site (default 3000)")
    d.add_argument("--hours", type=float, default=6.0,
                   help="hours of simulated base-station events (default 6)")
    d.add_argument("--seed", type=int, default=2026,
                   help="simulator seed (same seed, same site and reports)")
    d.add_argument("--pcap-seconds", type=float, default=480.0,
                   help="seconds of simulated backhaul traffic (0: none)")
    d.add_argument("--workdir", type=Path, default=Path("demo-out"),
                   help="where the simulated inputs, reports and state go (default demo-out)")

    from edge.cli import keys

    keys.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check-config":
            return _check_config(args.file, mode=args.mode, probe=not args.no_probe)
        if args.command == "replay":
            return _replay(args)
        if args.command == "keys":
            from edge.cli import keys

            return keys.run(args)
        if args.command == "run":
            from edge.live import run_live

            cfg = load_config(args.config)
            setup_logging_from(cfg)
            problems = _preflight(cfg, "run", True)
            if problems:
                return _print_problems(args.config, problems)
            return run_live(cfg)
        if args.command == "demo":
            from edge.demo import run_demo

            setup_logging("warning")
            return run_demo(broker=args.broker, subscribers=args.subscribers,
                            hours=args.hours, seed=args.seed, workdir=args.workdir,
                            pcap_s=args.pcap_seconds)
    except ConfigError as exc:
        return fail(f"invalid config: {exc}")
    except EdgeError as exc:
        return fail(str(exc), 1)
    except KeyboardInterrupt:
        return 130
    return 2


def _preflight(cfg: Config, mode: str, probe: bool) -> list[Any]:
    from edge.ops.preflight import preflight

    return preflight(cfg, mode=mode, probe=probe)


def _print_problems(path: Path, problems: list[Any]) -> int:
    print(f"{path}: {len(problems)} problem(s):", file=sys.stderr)
    for p in problems:
        print(f"  - {p}", file=sys.stderr)
    return 2


def _check_config(path: Path, *, mode: str = "run", probe: bool = True) -> int:
    cfg = load_config(path)
    problems = _preflight(cfg, mode, probe)
    if problems:
        return _print_problems(path, problems)
    print(f"{path}: ok for {mode} (site {cfg.agent.site}, agent {cfg.agent.id})")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from edge.assembly import assemble, make_sinks
    from edge.pipeline import merge_by_time

    if args.mqtt and not args.config:
        return fail("--mqtt publishes to the broker of the config's [mqtt] section: give "
                    "--config FILE (without it nothing says which broker, and a silent "
                    "default of 127.0.0.1:1883 could hand reports to the wrong one)")
    cfg: Config = load_config(args.config) if args.config else Config()
    setup_logging_from(cfg)
    for p in args.events + args.pcap + args.depot:
        if not p.exists():
            return fail(f"input file not found: {p}")
    if args.out.exists():
        args.out.unlink()
    sinks = make_sinks(cfg, out=args.out, mqtt=args.mqtt or None,
                       stdout=not args.quiet and sys.stdout.isatty())
    try:
        agent = assemble(cfg, mode="replay", sinks=sinks,
                         inputs={"events": args.events, "pcap": args.pcap,
                                 "depot": args.depot})
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    sources = agent.sources
    if not sources:
        agent.close()
        args.out.unlink(missing_ok=True)
        return fail("nothing to replay: give --events, --pcap or --depot, or inputs in the config")
    bar = progress_bar("replay", "rec")
    t0 = time.perf_counter()
    try:
        agent.pipeline.run(merge_by_time(sources), progress=bar)
    finally:
        if bar is not None:
            bar.close()
        agent.close()
    dt = time.perf_counter() - t0
    _print_summary(agent, dt, args.out)
    return 0


def _print_summary(agent: Any, dt: float, out: Path) -> None:
    p = agent.pipeline
    kinds = ", ".join(f"{k}={v}" for k, v in sorted(agent.reporter.count_by_kind.items()))
    print(f"replayed {p.records:,} records in {dt:.2f} s ({p.records / max(dt, 1e-9):,.0f}/s); "
          f"malformed {sum(p.malformed.values()):,}; reports: {kinds or 'none'} -> {out}",
          file=sys.stderr)


if __name__ == "__main__":
    code = main()
    # The process ends here: what the run built need not be collected on the way out
    # (CPython's last full collection walked every SIM's state: ~4 % of a replay).
    gc.freeze()
    sys.exit(code)
