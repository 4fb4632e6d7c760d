"""``edge-fleet``: the receiving side's command line.

    edge-fleet migrate  --dsn DSN                  apply the schema migrations
    edge-fleet collect  [--config fleet.toml] ...  run one collector (and the desks)
    edge-fleet user add NAME --role ROLE           create or reset a desk user
    edge-fleet health   --dsn DSN                  print the fleet's boxes and alerts
    edge-fleet cases    --dsn DSN                  print today's correlated cases
"""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from edge.errors import ConfigError
from edge.fleet.config import FleetConfig, load_fleet_config, with_overrides


def _cfg(args: argparse.Namespace) -> FleetConfig:
    cfg = load_fleet_config(args.config)
    return with_overrides(cfg, dsn=args.dsn, mqtt_host=getattr(args, "mqtt_host", None),
                          mqtt_port=getattr(args, "mqtt_port", None),
                          name=getattr(args, "name", None),
                          listen=getattr(args, "listen", None))


def _connect(cfg: FleetConfig) -> Any:
    import psycopg

    return psycopg.connect(cfg.db.dsn, autocommit=True)


def cmd_migrate(args: argparse.Namespace) -> int:
    from edge.fleet.migrate import current_version, migrate

    with _connect(_cfg(args)) as conn:
        done = migrate(conn)
        print(f"applied {done or 'nothing'}; schema version {current_version(conn)}")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from edge.fleet.collector import Collector

    cfg = _cfg(args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    collector = Collector(cfg)
    server = None
    if cfg.desk.listen:
        from edge.fleet.web.server import DeskServer

        server = DeskServer(cfg, stats=collector.stats)
        server.start()
    try:
        collector.run(stop)
    finally:
        if server is not None:
            server.stop()
    return 0


def cmd_user(args: argparse.Namespace) -> int:
    from edge.fleet.web.auth import set_user

    if args.password_file is not None:
        password = args.password_file.read_text().strip()
    elif not sys.stdin.isatty():
        password = sys.stdin.readline().strip()
    else:
        password = getpass.getpass(f"password for {args.user_name}: ")
    with _connect(_cfg(args)) as conn:
        set_user(conn, args.user_name, args.role, password)
    print(f"user {args.user_name} ({args.role}) saved")
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    with _connect(_cfg(args)) as conn:
        for row in conn.execute("""SELECT site, agent, state, coalesce(reason, ''),
                last_heartbeat_at, outbox_depth, oldest_pending_age_s, config_hash
                FROM agents ORDER BY site, agent""").fetchall():
            print(*[("-" if v is None else v) for v in row], sep="\t")
        for row in conn.execute("""SELECT raised_at, site, agent, kind, detail
                FROM fleet_alerts WHERE cleared_at IS NULL ORDER BY raised_at""").fetchall():
            print("ALERT", *row, sep="\t")
    return 0


def cmd_cases(args: argparse.Namespace) -> int:
    from edge.fleet.correlate import load_cases

    with _connect(_cfg(args)) as conn:
        for case in load_cases(conn, days=args.days):
            print(case.id, len(case.reports), "->".join(case.site_path), ",".join(case.kinds),
                  "cross-site" if case.cross_site else "one site", sep="\t")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edge-fleet", description="The fleet's receiving side: "
                                 "collector on PostgreSQL, desk views, fleet health.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, default=None,
                       help="TOML file with a [fleet] table (docs/fleet.md)")
        p.add_argument("--dsn", default=None, help="PostgreSQL connection string "
                       "(overrides fleet.db.dsn)")

    p = sub.add_parser("migrate", help="apply the schema migrations")
    common(p)
    p.set_defaults(fn=cmd_migrate)
    p = sub.add_parser("collect", help="run one collector instance")
    common(p)
    p.add_argument("--mqtt-host", default=None, help="broker host (overrides fleet.mqtt.host)")
    p.add_argument("--mqtt-port", type=int, default=None, help="broker port")
    p.add_argument("--name", default=None, help="instance name (default: host name); the "
                   "MQTT client id derives from it and must stay the same across restarts")
    p.add_argument("--listen", default=None, help="HOST:PORT to serve the desks on")
    p.add_argument("--log-level", default="INFO", help="logging level")
    p.set_defaults(fn=cmd_collect)
    p = sub.add_parser("user", help="manage desk users")
    usub = p.add_subparsers(dest="user_cmd", required=True)
    pa = usub.add_parser("add", help="create a user or reset its password and role")
    pa.add_argument("user_name", help="login name")
    pa.add_argument("--role", required=True, choices=["fraud", "inspection", "admin"],
                    help="the desk this user works at")
    pa.add_argument("--password-file", type=Path, default=None,
                    help="read the password from this file (else stdin or a prompt)")
    common(pa)
    pa.set_defaults(fn=cmd_user)
    p = sub.add_parser("health", help="print the boxes and open fleet alerts")
    common(p)
    p.set_defaults(fn=cmd_health)
    p = sub.add_parser("cases", help="print correlated cases")
    common(p)
    p.add_argument("--days", type=int, default=1, help="how many days back")
    p.set_defaults(fn=cmd_cases)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(getattr(args, "log_level", "INFO")).upper(),
                                      logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.fn(args))
    except ConfigError as exc:
        print(f"edge-fleet: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
