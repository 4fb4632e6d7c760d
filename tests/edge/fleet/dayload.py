"""Puts a simulated multi-site day through a real broker into a real collector."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import psycopg

from edge.fleet.collector import Collector
from edge.fleet.config import FleetConfig, with_overrides
from simulators.fleet_day import Day


def load_day(day: Day, dsn: str, host: str, port: int, timeout_s: float = 30.0) -> None:
    cfg = with_overrides(FleetConfig(), dsn=dsn, mqtt_host=host, mqtt_port=port,
                         name="day-collector")
    collector = Collector(cfg)
    stop = threading.Event()
    th = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    th.start()
    deadline = time.monotonic() + timeout_s
    while collector.stats.subscribed == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="day-publisher",
                      protocol=mqtt.MQTTv5)
    pub.connect(host, port)
    pub.loop_start()
    infos = [pub.publish(m.topic, m.payload, qos=1) for m in day.messages]
    for info in infos:
        info.wait_for_publish(10)
    want = len(day.messages)
    while time.monotonic() < deadline:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT count(*) FROM reports").fetchone()
        if row and row[0] >= want:
            break
        time.sleep(0.1)
    pub.disconnect()
    pub.loop_stop()
    stop.set()
    th.join(20)
    assert collector.stats.stored.reports == want, collector.stats.as_dict()


def day_end(day: Day) -> datetime:
    last = max(m.report["ts"] for m in day.messages)
    return datetime.strptime(last, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
