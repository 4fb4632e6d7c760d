"""Durable QoS 1 reports/s through the outbox and MQTT link, next to bare paho-mqtt,
and RSS with 1 M reports pending.

    python bench/bench_outbox.py                  # all parts, defaults below
    python bench/bench_outbox.py --n 50000 --windows 20,50,100 --pending 1000000

Parts (same run, same private mosquitto on loopback, same payloads):
  bare     paho-mqtt alone: QoS 1, MQTT 5, max_inflight = window, loop_start, publish
           as fast as possible, time until every PUBACK is in. Nothing durable.
  durable  MqttLink over the SQLite outbox: ``publish()`` returns only after the report
           is committed (one transaction per report, sync=normal); time until every
           report is acknowledged and deleted from the outbox.
  batch    the same with ``publish_many()`` in batches of 100 (one transaction each).
  rss      a fresh process, broker down: RSS before and after 1 M reports are
           committed to the outbox (they stay pending), and the outbox file size.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.config import MqttSection  # noqa: E402
from edge.report.link import MqttLink  # noqa: E402
from edge.report.outbox import Outbox  # noqa: E402
from edge.report.presence import rss_bytes  # noqa: E402
from simulators.broker import LocalBroker  # noqa: E402


def make_report(i: int) -> tuple[dict, bytes]:
    """A report shaped like the reporter's (about 600 bytes of JSON)."""
    rep = {
        "schema": "afe.report/1", "id": f"01J{i:023d}", "ts": "2026-11-22T23:00:00.000Z",
        "site": "s1", "agent": "a1", "kind": "simbox.sim", "severity": "high",
        "score": 0.97, "subject": {"type": "imsi", "id": "h1:" + "0f" * 16,
                                   "pseudonymised": True},
        "evidence": [{"reason": "outgoing-only calls to many distinct B-numbers",
                      "features": {"calls": 212, "distinct_peers": 187, "mo_share": 1.0,
                                   "mean_duration_s": 31.5, "sms": 0, "cells": 1}}],
        "model": {"name": "callplane", "version": "1", "sha256": "ab" * 32},
        "route": ["telecom", "police"], "detector": "callplane",
    }
    return rep, orjson.dumps(rep)


def bench_bare(port: int, n: int, window: int, payloads: list[bytes]) -> float:
    import paho.mqtt.client as mqtt

    done = threading.Event()
    acked = 0

    def on_publish(c, u, mid, rc, props):  # noqa: ANN001
        nonlocal acked
        acked += 1
        if acked == n:
            done.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bare-{window}",
                    protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(window)
    c.max_queued_messages_set(0)
    c.on_publish = on_publish
    c.connect("127.0.0.1", port)
    c.loop_start()
    time.sleep(0.3)
    t0 = time.perf_counter()
    for p in payloads:
        c.publish("afe/v1/s1/a1/report/simbox.sim", p, qos=1)
    done.wait(300)
    dt = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return n / dt


def bench_durable(port: int, n: int, window: int, reports: list[tuple[dict, bytes]],
                  batch: int, workdir: Path) -> float:
    d = Path(tempfile.mkdtemp(dir=workdir))
    cfg = MqttSection(enabled=True, host="127.0.0.1", port=port, inflight=window,
                      heartbeat_s=3600, client_id=f"dur-{window}-{batch}")
    link = MqttLink(cfg, Outbox(d / "outbox.sqlite"), site="s1", agent="a1", data_dir=d)
    link.wait_connected(10)
    time.sleep(0.3)
    t0 = time.perf_counter()
    if batch <= 1:
        for rep, payload in reports:
            link.publish(rep, payload)
    else:
        for i in range(0, n, batch):
            link.publish_many(reports[i:i + batch])
    t_sub = time.perf_counter() - t0
    link.wait_drained(600)
    dt = time.perf_counter() - t0
    assert link.counters()["acked"] >= n
    link.close()
    print(f"    (submit side alone: {n / t_sub:,.0f}/s)")
    return n / dt


def rss_child(pending: int, workdir: Path) -> None:
    """Run in a fresh process: RSS growth with ``pending`` reports in the outbox."""
    import gc

    d = Path(tempfile.mkdtemp(dir=workdir))
    cfg = MqttSection(enabled=True, host="127.0.0.1", port=1, heartbeat_s=3600,
                      backoff_base_s=1.0, backoff_cap_s=5.0, connect_timeout_s=1.0)
    link = MqttLink(cfg, Outbox(d / "outbox.sqlite", max_bytes=4 * 1024**3), site="s1",
                    agent="a1", data_dir=d)
    _, payload = make_report(0)
    rep = {"kind": "simbox.sim", "severity": "high"}
    gc.collect()
    time.sleep(0.5)
    before = rss_bytes()
    t0 = time.perf_counter()
    batch = 1000
    for i in range(0, pending, batch):
        items = []
        for j in range(i, min(pending, i + batch)):
            r = dict(rep, id=f"01J{j:023d}")
            items.append((r, payload))
        link.publish_many(items)
    dt = time.perf_counter() - t0
    gc.collect()
    time.sleep(1.0)
    after = rss_bytes()
    st = link.outbox.stats()
    size = sum(p.stat().st_size for p in d.iterdir() if p.name.startswith("outbox"))
    print(f"pending={st.depth} rss_before={before} rss_after={after} "
          f"growth={after - before} file_bytes={size} submit_s={dt:.1f}")
    link.close(timeout_s=0.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50_000, help="reports per throughput run")
    ap.add_argument("--windows", default="20,50,100", help="in-flight windows to try")
    ap.add_argument("--pending", type=int, default=1_000_000, help="reports for the RSS part")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--parts", default="bare,durable,batch,rss")
    ap.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args.pending, args.workdir)
        return 0
    parts = set(args.parts.split(","))
    reports = [make_report(i) for i in range(args.n)]
    payloads = [p for _, p in reports]
    print(f"payload {len(payloads[0])} bytes, n={args.n}, cpus={os.cpu_count()}")
    with LocalBroker() as b:
        for w in (int(x) for x in args.windows.split(",")):
            if "bare" in parts:
                print(f"window {w:>3}  bare paho QoS 1        : "
                      f"{bench_bare(b.port, args.n, w, payloads):>8,.0f} msg/s")
            if "durable" in parts:
                r = bench_durable(b.port, args.n, w, reports, 1, args.workdir)
                print(f"window {w:>3}  durable, 1 per commit  : {r:>8,.0f} msg/s")
            if "batch" in parts:
                r = bench_durable(b.port, args.n, w, reports, 100, args.workdir)
                print(f"window {w:>3}  durable, 100 per commit: {r:>8,.0f} msg/s")
    if "rss" in parts:
        out = subprocess.run([sys.executable, __file__, "--rss-child", "--pending",
                              str(args.pending), "--workdir", str(args.workdir)],
                             capture_output=True, text=True, check=True)
        line = out.stdout.strip().splitlines()[-1]
        kv = dict(x.split("=") for x in line.split())
        print(f"rss with {int(kv['pending']):,} pending: before {int(kv['rss_before']) / 1e6:.1f} MB, "
              f"after {int(kv['rss_after']) / 1e6:.1f} MB, growth "
              f"{int(kv['growth']) / 1e6:.1f} MB; outbox files "
              f"{int(kv['file_bytes']) / 1e6:.0f} MB; committed in {kv['submit_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
