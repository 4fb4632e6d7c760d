"""A fleet of simulated agents against a broker: births, wills, heartbeats, reports.

Plays ``boxes`` agents from one thread: one paho MQTT 5 client per box (its own client
id, a retained birth with ``conn_ts``, the will ``offline``/``lost``, a heartbeat every
``heartbeat_s`` with the depth of what it has not had acknowledged), each publishing
afe.report/1 reports at QoS 1 at a Poisson rate, plus bursts (a share of the boxes
flush ``burst_size`` reports at once, as an agent does when its link comes back).
What paho has not had acknowledged is sent again after a reconnection, so like the
agent it delivers at least once. Every report handed to paho is recorded with its
publish time (:attr:`FleetLoad.published`), which the tests and the bench compare
with the collector's rows.

Reports are made here from a seeded population of identifiers (not from any
detector): telecom sites report SIMs, devices and GoIP endpoints, depot sites parcel
alerts with sender and receiver phones; identifiers are pseudonymised with a key per
site and, with ``fleet_key``, a fleet-scoped pseudonym as the agent does.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from edge.report.ids import IdFactory
from edge.report.presence import Identity as _Identity
from edge.report.presence import birth_payload, offline_payload
from edge.report.pseudonym import Pseudonymiser
from edge.report.reporter import rfc3339_ms
from edge.report.topics import heartbeat_topic, report_topic, status_topic

_TELECOM_KINDS = (("simbox.sim", "imsi", 0.5), ("simbox.device", "imei", 0.25),
                  ("goip.endpoint", "endpoint", 0.2), ("agent.status", "agent", 0.05))
_DEPOT_KINDS = (("parcel.card_batch", "waybill", 0.6), ("parcel.mismatch", "waybill", 0.35),
                ("agent.status", "agent", 0.05))


@dataclass(slots=True)
class LoadSpec:
    boxes: int = 100
    sites: int = 20              # boxes are spread over this many sites
    depot_share: float = 0.2     # share of sites that are courier depots
    report_rate: float = 0.05    # reports per second per box (Poisson)
    heartbeat_s: float = 60.0
    burst_every_s: float = 0.0   # 0 = no bursts
    burst_share: float = 0.05    # share of boxes in one burst
    burst_size: int = 50         # reports each bursting box flushes
    prefix: str = "afe/v1"
    seed: int = 1
    fleet_key: bytes | None = b"fleet-key-for-the-simulated-fleet"
    population: int = 5000       # distinct identifiers per kind over the fleet
    inflight: int = 100


@dataclass(slots=True)
class Box:
    idx: int
    site: str
    agent: str
    depot: bool
    pseudo: Pseudonymiser
    ids: IdFactory
    client: mqtt.Client
    boot_seq: int = 1
    sock: socket.socket | None = None
    connected: bool = False
    pending: dict[int, str] = field(default_factory=dict)  # mid -> report id
    next_misc: float = 0.0
    retry_at: float = 0.0


def site_name(j: int, depot: bool) -> str:
    return f"depot-{j:03d}" if depot else f"bs-{j:03d}"


class FleetLoad:
    """Drive with :meth:`run` (for a duration) or :meth:`step` from a test's loop."""

    def __init__(self, host: str, port: int, spec: LoadSpec) -> None:
        self.host, self.port, self.spec = host, port, spec
        self.rng = random.Random(spec.seed)
        self.sel = selectors.DefaultSelector()
        self.boxes: list[Box] = []
        self.published: dict[str, float] = {}  # report id -> wall time handed to paho
        self.acked = 0
        self.heartbeats = 0
        self.reconnects = 0
        self._want_write: set[int] = set()
        self._timers: list[tuple[float, int, int, str]] = []
        self._seq = 0
        self.paused = False
        self.hold = False  # True: boxes do not reconnect (their network is down)
        self.muted: set[int] = set()
        n_depot = max(1, round(spec.sites * spec.depot_share)) if spec.depot_share > 0 else 0
        for i in range(spec.boxes):
            j = i % spec.sites
            depot = j < n_depot
            site = site_name(j, depot)
            agent = f"box{i:05d}"
            key = f"site-key-{site}-{spec.seed}".encode()
            pseudo = Pseudonymiser(key, fleet_key=spec.fleet_key)
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                 client_id=f"afe-{site}-{agent}", protocol=mqtt.MQTTv5)
            client.max_inflight_messages_set(spec.inflight)
            client.max_queued_messages_set(0)
            box = Box(i, site, agent, depot, pseudo, IdFactory(f"{site}/{agent}/{spec.seed}"),
                      client)
            self._wire(box)
            self.boxes.append(box)

    # ------------------------------------------------------------------ callbacks
    def _wire(self, box: Box) -> None:
        c = box.client
        c.on_connect = lambda cl, u, f, rc, p=None: self._on_connect(box, rc)
        c.on_disconnect = lambda cl, u, f, rc, p=None: self._on_disconnect(box)
        c.on_publish = lambda cl, u, mid, rc, p=None: self._on_publish(box, mid)
        c.on_socket_register_write = lambda cl, u, s: self._want_write.add(box.idx)
        c.on_socket_unregister_write = lambda cl, u, s: self._want_write.discard(box.idx)

    def _identity(self, box: Box) -> _Identity:
        return _Identity(site=box.site, agent=box.agent, boot_seq=box.boot_seq,
                         versions={"agent": "sim"}, config_hash=f"cfg-{box.site}",
                         models={"callplane": "0" * 64} if not box.depot else {})

    def _on_connect(self, box: Box, rc: Any) -> None:
        if rc.is_failure:
            return
        box.connected = True

    def _on_disconnect(self, box: Box) -> None:
        box.connected = False

    def _on_publish(self, box: Box, mid: int) -> None:
        if box.pending.pop(mid, None) is not None:
            self.acked += 1

    # ------------------------------------------------------------------ connections
    def _connect(self, box: Box, now: float) -> None:
        conn_ts = time.time()
        ident = self._identity(box)
        box.client.will_set(status_topic(self.spec.prefix, box.site, box.agent),
                            offline_payload(ident, conn_ts, "lost"), qos=1, retain=True)
        try:
            if box.sock is None and not box.connected and box.retry_at == 0.0:
                box.client.connect(self.host, self.port, keepalive=30)
            else:
                box.client.reconnect()
                self.reconnects += 1
        except OSError:
            box.retry_at = now + 1.0 + self.rng.random()
            self._register(box, None)
            return
        box.retry_at = -1.0  # connecting
        self._register(box, box.client.socket())
        # the birth waits in paho's queue until the CONNACK
        box.client.publish(status_topic(self.spec.prefix, box.site, box.agent),
                           birth_payload(ident, time.time(), conn_ts=conn_ts), qos=1,
                           retain=True)

    def _register(self, box: Box, sock: Any) -> None:
        if box.sock is not None:
            try:
                self.sel.unregister(box.sock)
            except (KeyError, ValueError):
                pass
        box.sock = sock
        if sock is not None:
            self.sel.register(sock, selectors.EVENT_READ, box)

    def start(self) -> None:
        now = time.monotonic()
        for box in self.boxes:
            self._connect(box, now)
            self._schedule(now + self.rng.uniform(0, self.spec.heartbeat_s), box.idx, "hb")
            if self.spec.report_rate > 0:
                self._schedule(now + self.rng.expovariate(self.spec.report_rate), box.idx,
                               "report")
        if self.spec.burst_every_s > 0:
            self._schedule(now + self.spec.burst_every_s, -1, "burst")

    def _schedule(self, at: float, idx: int, what: str) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (at, self._seq, idx, what))

    # ------------------------------------------------------------------ content
    def _subject(self, box: Box, id_type: str, value: str) -> dict[str, Any]:
        ident, pseudo = box.pseudo.apply(id_type, value)
        out: dict[str, Any] = {"type": id_type, "id": ident, "pseudonymised": pseudo}
        if pseudo and box.pseudo.has_fleet_key:
            out["fleet_id"] = box.pseudo.fleet_pseudonym(id_type, value)
        return out

    def _value(self, id_type: str) -> str:
        n = self.rng.randrange(self.spec.population)
        if id_type == "imsi":
            return f"46001{n:010d}"
        if id_type == "imei":
            return f"86{n:012d}0"
        if id_type == "endpoint":
            return f"203.0.{n // 250 % 250}.{n % 250 + 1}:5060"
        if id_type == "waybill":
            return f"SF{self.rng.randrange(10**12):012d}"
        return f"13{n:09d}"

    def make_report(self, box: Box, now: float) -> tuple[str, bytes, str]:
        """(topic, payload, id) of one report of this box."""
        kinds = _DEPOT_KINDS if box.depot else _TELECOM_KINDS
        kind, id_type, _ = self.rng.choices(kinds, weights=[k[2] for k in kinds])[0]
        value = box.agent if id_type == "agent" else self._value(id_type)
        rid = box.ids.next(now)
        severity = "info" if kind == "agent.status" else self.rng.choice(
            ("medium", "high", "critical"))
        rep: dict[str, Any] = {
            "schema": "afe.report/1", "id": rid, "ts": rfc3339_ms(now), "site": box.site,
            "agent": box.agent, "kind": kind, "severity": severity,
            "score": round(self.rng.random(), 6),
            "subject": self._subject(box, id_type, value),
            "evidence": [{"reason": "simulated load", "features": {
                "n": self.rng.randrange(1000), "rate": round(self.rng.random(), 3)}}],
            "model": None, "route": ["ops"] if kind == "agent.status" else ["telecom"],
        }
        if box.depot and kind != "agent.status":
            rep["related"] = [self._subject(box, "sender_phone", self._value("phone")),
                              self._subject(box, "receiver_phone", self._value("phone"))]
            rep["route"] = ["police"]
        topic = report_topic(self.spec.prefix, box.site, box.agent, kind)
        return topic, orjson.dumps(rep), rid

    def publish_report(self, box: Box, topic: str, payload: bytes, rid: str) -> None:
        info = box.client.publish(topic, payload, qos=1)
        # rc NO_CONN: paho keeps it and sends it after the reconnection, like the agent
        box.pending[info.mid] = rid
        self.published[rid] = time.time()

    def _heartbeat(self, box: Box) -> None:
        now = time.time()
        body = {"site": box.site, "agent": box.agent, "boot_seq": box.boot_seq, "ts": now,
                "uptime_s": 0.0, "outbox": {"depth": len(box.pending), "bytes": 0,
                                            "oldest_pending_age_s": None, "drops": 0},
                "link": {"state": "connected" if box.connected else "retrying"}}
        box.client.publish(heartbeat_topic(self.spec.prefix, box.site, box.agent),
                           orjson.dumps(body), qos=0)
        self.heartbeats += 1

    # ------------------------------------------------------------------ loop
    def _due(self, now: float) -> None:
        wall = time.time()
        while self._timers and self._timers[0][0] <= now:
            _, _, idx, what = heapq.heappop(self._timers)
            if what == "burst":
                k = max(1, int(len(self.boxes) * self.spec.burst_share))
                for box in self.rng.sample(self.boxes, k):
                    for _ in range(self.spec.burst_size):
                        self.publish_report(box, *self.make_report(box, wall))
                self._schedule(now + self.spec.burst_every_s, -1, "burst")
                continue
            box = self.boxes[idx]
            if what == "hb":
                if idx not in self.muted:
                    self._heartbeat(box)
                self._schedule(now + self.spec.heartbeat_s, idx, "hb")
            elif what == "report":
                if not self.paused:
                    self.publish_report(box, *self.make_report(box, wall))
                self._schedule(now + self.rng.expovariate(self.spec.report_rate), idx,
                               "report")

    def step(self, timeout: float = 0.01) -> None:
        now = time.monotonic()
        self._due(now)
        for key, _ in self.sel.select(timeout):
            box = key.data
            if box.client.loop_read() != mqtt.MQTT_ERR_SUCCESS:
                self._lost(box, now)
        for idx in list(self._want_write):
            box = self.boxes[idx]
            if box.sock is not None and box.client.loop_write() not in (
                    mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
                self._lost(box, now)
        for box in self.boxes:
            if box.sock is None:
                if box.retry_at >= 0 and now >= box.retry_at and not self.hold:
                    self._connect(box, now)
            elif now >= box.next_misc:
                box.next_misc = now + 1.0
                if box.client.loop_misc() != mqtt.MQTT_ERR_SUCCESS:
                    self._lost(box, now)

    def _lost(self, box: Box, now: float) -> None:
        box.connected = False
        self._register(box, None)
        box.retry_at = now + 0.5 + self.rng.random() * 1.5

    def run(self, duration_s: float, until: Callable[[], bool] | None = None) -> None:
        end = time.monotonic() + duration_s
        while time.monotonic() < end and not (until and until()):
            self.step()

    def vanish(self, idx: int) -> None:
        """The box's link dies without a DISCONNECT (power cut): the broker publishes
        its will. It stays away until :attr:`Box.retry_at` is reset."""
        box = self.boxes[idx]
        if box.sock is not None:
            box.sock.close()
        box.connected = False
        self._register(box, None)
        box.retry_at = float("inf")

    def mute(self, idx: int) -> None:
        """The box stays connected but stops sending heartbeats (a hung process)."""
        self.muted.add(idx)

    def pending(self) -> int:
        return sum(len(b.pending) for b in self.boxes)

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Steps until paho has every report acknowledged (True) or time runs out."""
        self.paused = True
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            self.step()
            if self.pending() == 0:
                return True
        return False

    def close(self, clean: bool = True) -> None:
        for box in self.boxes:
            if clean and box.connected:
                box.client.publish(status_topic(self.spec.prefix, box.site, box.agent),
                                   offline_payload(self._identity(box), time.time(),
                                                   "shutdown"), qos=1, retain=True)
                box.client.disconnect()
                box.client.loop_write()
            self._register(box, None)
        self.sel.close()


def main() -> None:
    ap = argparse.ArgumentParser(description="Play a fleet of agents against an MQTT broker "
                                 "(births, wills, heartbeats, reports, bursts).")
    ap.add_argument("--host", default="127.0.0.1", help="broker host (loopback only here)")
    ap.add_argument("--port", type=int, default=1883, help="broker port")
    ap.add_argument("--boxes", type=int, default=1000, help="simulated agents")
    ap.add_argument("--sites", type=int, default=200, help="sites they are spread over")
    ap.add_argument("--rate", type=float, default=0.05, help="reports per second per box")
    ap.add_argument("--heartbeat-s", type=float, default=60.0, help="heartbeat period")
    ap.add_argument("--burst-every-s", type=float, default=0.0, help="burst period (0: none)")
    ap.add_argument("--burst-size", type=int, default=50, help="reports per bursting box")
    ap.add_argument("--duration-s", type=float, default=60.0, help="how long to run")
    ap.add_argument("--seed", type=int, default=1, help="random seed")
    ap.add_argument("--truth", type=Path, default=None,
                    help="write every published report id and its publish time (JSONL)")
    args = ap.parse_args()
    spec = LoadSpec(boxes=args.boxes, sites=args.sites, report_rate=args.rate,
                    heartbeat_s=args.heartbeat_s, burst_every_s=args.burst_every_s,
                    burst_size=args.burst_size, seed=args.seed)
    load = FleetLoad(args.host, args.port, spec)
    load.start()
    load.run(args.duration_s)
    drained = load.drain()
    load.close()
    if args.truth is not None:
        with open(args.truth, "w") as fh:
            for rid, t in load.published.items():
                fh.write(json.dumps({"id": rid, "published": t}) + "\n")
    print(json.dumps({"published": len(load.published), "acked": load.acked,
                      "heartbeats": load.heartbeats, "reconnects": load.reconnects,
                      "drained": drained}))


if __name__ == "__main__":
    main()
