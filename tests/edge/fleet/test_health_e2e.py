"""Fleet health through a real broker: a box that vanishes (its will) and a box that
goes silent raise fleet alerts; births carry versions, models and config hash."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import psycopg

from edge.fleet.collector import Collector
from edge.fleet.config import FleetConfig, FleetHealth, FleetHousekeeping, with_overrides
from simulators.broker import LocalBroker
from simulators.fleet_load import FleetLoad, LoadSpec


def _alerts(dsn: str) -> set[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return {(a, k) for a, k in conn.execute(
            "SELECT agent, kind FROM fleet_alerts WHERE cleared_at IS NULL").fetchall()}


def test_vanished_and_silent_boxes_raise_fleet_alerts(dsn: str) -> None:
    with LocalBroker() as broker:
        cfg = with_overrides(FleetConfig(), dsn=dsn, mqtt_host=broker.host,
                             mqtt_port=broker.port, name="h1")
        cfg = replace(cfg, health=FleetHealth(silent_after_s=2.5),
                      housekeeping=FleetHousekeeping(every_s=0.5))
        collector = Collector(cfg)
        stop = threading.Event()
        th = threading.Thread(target=collector.run, args=(stop,), daemon=True)
        th.start()
        try:
            while collector.stats.subscribed == 0:
                time.sleep(0.05)
            load = FleetLoad(broker.host, broker.port, LoadSpec(
                boxes=4, sites=2, report_rate=0.5, heartbeat_s=0.5, seed=3))
            load.start()
            load.run(1.5)
            with psycopg.connect(dsn) as conn:
                rows = conn.execute("SELECT agent, state, versions, config_hash, models, "
                                    "last_heartbeat_at IS NOT NULL FROM agents ORDER BY 1"
                                    ).fetchall()
            assert [r[1] for r in rows] == ["online"] * 4
            assert all(r[2] == {"agent": "sim"} and r[3].startswith("cfg-") and r[5]
                       for r in rows)
            assert _alerts(dsn) == set()
            load.vanish(0)   # power cut: the broker publishes its will
            load.mute(1)     # hung: connected, no heartbeats
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                load.run(0.3)
                if _alerts(dsn) == {("box00000", "box.offline"), ("box00001", "box.silent")}:
                    break
            assert _alerts(dsn) == {("box00000", "box.offline"), ("box00001", "box.silent")}
            with psycopg.connect(dsn) as conn:
                state = conn.execute("SELECT state, reason FROM agents WHERE agent = "
                                     "'box00000'").fetchone()
            assert state == ("offline", "lost")
            # the silent box speaks again: its alert clears
            load.muted.clear()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and ("box00001", "box.silent") in _alerts(dsn):
                load.run(0.3)
            assert _alerts(dsn) == {("box00000", "box.offline")}
            load.close()
        finally:
            stop.set()
            th.join(20)
