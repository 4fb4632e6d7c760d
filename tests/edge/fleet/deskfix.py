"""A desk over a simulated day: database with the day's reports, users, a live server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import psycopg

from edge.fleet.config import FleetConfig, FleetDesk, with_overrides
from edge.fleet.migrate import migrate
from edge.fleet.web.auth import set_user
from edge.fleet.web.server import DeskServer
from simulators.broker import LocalBroker, free_port
from simulators.fleet_day import Day, make_day
from tests.edge.fleet.dayload import load_day

USERS = {"fiona": ("fraud", "fraud-desk-pw-1"), "ivan": ("inspection", "inspect-pw-22"),
         "ada": ("admin", "admin-desk-pw-3")}


@dataclass(slots=True)
class DeskEnv:
    url: str
    dsn: str
    day: Day


def desk_env(dsn: str) -> Iterator[DeskEnv]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
    day = make_day(seed=5)
    with LocalBroker() as broker:
        load_day(day, dsn, broker.host, broker.port)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, (role, pw) in USERS.items():
            set_user(conn, name, role, pw)
        conn.execute("""INSERT INTO agents (site, agent, state, boot_seq, versions,
            config_hash, last_heartbeat_at, outbox_depth) VALUES
            ('bs-00', 'gw1', 'online', 3, '{"agent": "0.1.0"}', 'abc123', now(), 0),
            ('bs-01', 'gw1', 'offline', 2, '{}', 'abc123', now(), 12)""")
        conn.execute("UPDATE agents SET reason = 'lost' WHERE site = 'bs-01'")
        conn.execute("""INSERT INTO fleet_alerts (site, agent, kind) VALUES
            ('bs-01', 'gw1', 'box.offline')""")
    port = free_port()
    cfg = with_overrides(FleetConfig(), dsn=dsn)
    cfg = replace(cfg, desk=FleetDesk(listen=f"127.0.0.1:{port}"))
    server = DeskServer(cfg)
    server.start()
    try:
        yield DeskEnv(f"http://127.0.0.1:{port}", dsn, day)
    finally:
        server.stop()
