"""The collector: MQTT 5 shared subscription in, PostgreSQL rows out, PUBACK last.

One collector instance:

- connects with a stable client id, ``clean_start=False`` and a long session expiry,
  so the broker keeps its subscriptions and queued messages while it is away;
- subscribes to ``$share/<group>/<prefix>/+/+/report/#`` and ``.../heartbeat`` (the
  group's members split these) and, unshared, to ``<prefix>/+/+/status``: retained
  messages are not sent to shared subscriptions, and every member wants the
  presence of every box anyway (the upsert is idempotent and ordered);
- with paho's ``manual_ack``, takes up to ``batch_max`` messages, stores them in ONE
  transaction and only after COMMIT sends their PUBACKs. A crash before the commit
  leaves them unacknowledged: the broker sends them again (to this member when it
  is back); a crash after the commit and before the PUBACK gets them again too, and
  the insert by report id drops the copy. So no report is lost and none is doubled;
- a database that is down is retried with backoff, holding the batch and its acks;
  a message PostgreSQL refuses by itself (bad data) is isolated row by row and kept
  in ``rejects`` with the reason, never retried forever;
- acknowledgements of messages received on an earlier connection are not sent
  (their packet ids belong to that connection; the broker re-sends them);
- on SIGTERM unsubscribes the shared filters first, so that the broker routes new
  messages to the other members, drains what it holds, then disconnects.

Housekeeping (partitions, retention, health sweep) runs in a second thread with its
own connection; of N collectors one does each job at a time (advisory locks).
"""

from __future__ import annotations

import logging
import queue
import random
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.fleet import health, maintenance
from edge.fleet.config import FleetConfig
from edge.fleet.ingest import Parsed, Rejected, parse
from edge.fleet.migrate import migrate
from edge.fleet.store import BatchCounts, write_batch

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Msg:
    mid: int
    qos: int
    topic: str
    payload: bytes
    user_id: str | None
    gen: int
    received_at: datetime


@dataclass(slots=True)
class CollectorStats:
    received: int = 0
    batches: int = 0
    acked: int = 0
    stale_acks_skipped: int = 0
    db_errors: int = 0
    isolated: int = 0
    connects: int = 0
    subscribed: int = 0
    disconnects: int = 0
    commit_ms_max: float = 0.0
    commit_ms_total: float = 0.0
    stored: BatchCounts = field(default_factory=BatchCounts)

    def as_dict(self) -> dict[str, float | int]:
        d: dict[str, float | int] = {k: getattr(self, k) for k in self.__slots__
                                     if k != "stored"}
        for k in self.stored.__slots__:
            d[f"stored_{k}"] = getattr(self.stored, k)
        return d


def subscriptions(cfg: FleetConfig) -> list[tuple[str, int]]:
    """(filter, QoS) the collector subscribes to."""
    p, g = cfg.mqtt.topic_prefix, cfg.mqtt.share_group
    return [(f"$share/{g}/{p}/+/+/report/#", 1), (f"$share/{g}/{p}/+/+/heartbeat", 0),
            (f"{p}/+/+/status", 1)]


def _user_id(msg: mqtt.MQTTMessage) -> str | None:
    props = getattr(msg, "properties", None)
    for k, v in getattr(props, "UserProperty", None) or ():
        if k == "id":
            return str(v)
    return None


class Collector:
    """See the module docstring. ``run(stop)`` blocks until ``stop`` is set."""

    def __init__(self, cfg: FleetConfig) -> None:
        self.cfg = cfg
        self.name = cfg.instance
        self.stats = CollectorStats()
        self._q: queue.Queue[_Msg] = queue.Queue()
        self._gen = 0
        self._gen_lock = threading.Lock()
        self._connected = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._client = self._make_client()

    # ------------------------------------------------------------------ MQTT side
    def _make_client(self) -> mqtt.Client:
        m = self.cfg.mqtt
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.cfg.client_id,
                        protocol=mqtt.MQTTv5, manual_ack=True)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(1, 30)
        if m.username is not None:
            c.username_pw_set(m.username, m.password)
        if m.tls_ca_file or m.tls_cert_file:
            ctx = ssl.create_default_context(cafile=m.tls_ca_file)
            if m.tls_cert_file:
                ctx.load_cert_chain(m.tls_cert_file, m.tls_key_file)
            c.tls_set_context(ctx)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        return c

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any,
                    props: Any = None) -> None:
        if rc.is_failure:
            log.error("collector %s: broker refused the connection: %s", self.name, rc)
            return
        self.stats.connects += 1
        log.info("collector %s connected (session present: %s)", self.name,
                 getattr(flags, "session_present", None))
        client.subscribe(subscriptions(self.cfg))
        self._connected.set()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, rcs: Any,
                      props: Any = None) -> None:
        bad = [str(rc) for rc in rcs if getattr(rc, "is_failure", False)]
        if bad:
            log.error("collector %s: the broker refused subscriptions: %s", self.name, bad)
        else:
            self.stats.subscribed += 1
            log.info("collector %s subscribed (%d filters)", self.name, len(rcs))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any,
                       props: Any = None) -> None:
        with self._gen_lock:
            self._gen += 1  # acks of messages received so far are void from now on
        self._connected.clear()
        self.stats.disconnects += 1
        log.warning("collector %s disconnected from the broker: %s", self.name, rc)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.stats.received += 1
        self._q.put(_Msg(msg.mid, msg.qos, msg.topic, bytes(msg.payload), _user_id(msg),
                         self._gen, datetime.now(UTC)))

    def _ack(self, batch: list[_Msg]) -> None:
        with self._gen_lock:
            for m in batch:
                if m.qos == 0:
                    continue
                if m.gen != self._gen:
                    self.stats.stale_acks_skipped += 1
                    continue
                self._client.ack(m.mid, m.qos)
                self.stats.acked += 1

    def connect(self) -> None:
        m = self.cfg.mqtt
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = m.session_expiry_s
        props.ReceiveMaximum = m.receive_max
        self._client.connect_async(m.host, m.port, keepalive=m.keepalive_s,
                                   clean_start=False, properties=props)
        self._client.loop_start()

    # ------------------------------------------------------------------ DB side
    def _db(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.cfg.db.dsn, autocommit=True,
                                         application_name=f"afe-collector {self.name}")
        return self._conn

    def _drop_db(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        self._conn = None

    def _take(self, stop: threading.Event) -> list[_Msg]:
        try:
            first = self._q.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.cfg.db.batch_wait_s
        while len(batch) < self.cfg.db.batch_max:
            left = deadline - time.monotonic()
            try:
                batch.append(self._q.get(timeout=left) if left > 0 else self._q.get_nowait())
            except queue.Empty:
                break
        return batch

    def _store(self, items: list[tuple[Parsed, datetime]], give_up: threading.Event
               ) -> BatchCounts | None:
        """Commits the batch, retrying while the database is unreachable. None if
        ``give_up`` was set before it could (nothing acknowledged then)."""
        attempt = 0
        while True:
            try:
                conn = self._db()
                t0 = time.perf_counter()
                try:
                    with conn.transaction():
                        counts = write_batch(conn, items, self.name)
                except psycopg.OperationalError:
                    raise
                except psycopg.Error as exc:
                    log.warning("collector %s: batch refused (%s); storing row by row",
                                self.name, exc)
                    counts = self._isolate(conn, items)
                ms = (time.perf_counter() - t0) * 1000.0
                self.stats.commit_ms_total += ms
                self.stats.commit_ms_max = max(self.stats.commit_ms_max, ms)
                return counts
            except psycopg.OperationalError as exc:
                self.stats.db_errors += 1
                self._drop_db()
                attempt += 1
                delay = min(self.cfg.db.retry_cap_s, self.cfg.db.retry_base_s * 2 ** attempt)
                if attempt in (1, 5) or attempt % 20 == 0:
                    log.error("collector %s: database unavailable (%s); retry %d in %.1f s, "
                              "%d messages held unacknowledged", self.name,
                              str(exc).strip()[:200], attempt, delay, len(items))
                if give_up.wait(random.uniform(delay / 2, delay)):
                    return None

    def _isolate(self, conn: psycopg.Connection[Any], items: list[tuple[Parsed, datetime]]
                 ) -> BatchCounts:
        total = BatchCounts()
        with conn.transaction():
            for p, at in items:
                try:
                    with conn.transaction():
                        total.add(write_batch(conn, [(p, at)], self.name))
                except psycopg.OperationalError:
                    raise
                except psycopg.Error as exc:
                    self.stats.isolated += 1
                    bad = Rejected(getattr(p, "topic", "?"), f"database refused: {exc}"[:500],
                                   getattr(p, "body", getattr(p, "payload", b"")))
                    total.add(write_batch(conn, [(bad, at)], self.name))
        return total

    def process(self, batch: list[_Msg], give_up: threading.Event) -> bool:
        """Parse, store, commit, then acknowledge one batch. False if not stored."""
        prefix = self.cfg.mqtt.topic_prefix
        items = [(parse(m.topic, m.payload, prefix, m.user_id), m.received_at)
                 for m in batch]
        counts = self._store(items, give_up)
        if counts is None:
            return False
        self.stats.stored.add(counts)
        self.stats.batches += 1
        self._ack(batch)
        return True

    # ------------------------------------------------------------------ lifecycle
    def prepare_db(self) -> None:
        """Migrations and today's partitions, before the first message (retrying)."""
        attempt = 0
        while True:
            try:
                conn = self._db()
                migrate(conn)
                maintenance.ensure_partitions(conn, datetime.now(UTC).date(),
                                              self.cfg.housekeeping.partitions_back_days,
                                              self.cfg.housekeeping.partitions_ahead_days)
                return
            except psycopg.OperationalError as exc:
                attempt += 1
                self._drop_db()
                log.error("collector %s: database unavailable at start (%s)", self.name,
                          str(exc).strip()[:200])
                time.sleep(min(10.0, 0.5 * attempt))

    def run(self, stop: threading.Event, drain_s: float = 10.0) -> None:
        self.prepare_db()
        keeper = Housekeeper(self.cfg, stop)
        keeper.start()
        self.connect()
        try:
            while not stop.is_set():
                batch = self._take(stop)
                if batch:
                    self.process(batch, stop)
        finally:
            self._shutdown(drain_s)
            keeper.join(5)

    def _shutdown(self, drain_s: float) -> None:
        """Stop receiving new work, store what was received, leave the session."""
        if self._connected.is_set():
            shared = [f for f, _ in subscriptions(self.cfg) if f.startswith("$share/")]
            self._client.unsubscribe(shared)
        never = threading.Event()
        deadline = time.monotonic() + drain_s
        quiet_since = time.monotonic()
        timer = threading.Timer(drain_s, never.set)
        timer.start()
        while time.monotonic() < deadline:
            batch = self._take(never)
            if batch:
                quiet_since = time.monotonic()
                if not self.process(batch, never):
                    break
            elif time.monotonic() - quiet_since > 0.5:
                break
        timer.cancel()
        time.sleep(0.1)  # let paho write the last PUBACKs
        self._client.disconnect()
        self._client.loop_stop()
        self._drop_db()
        log.info("collector %s stopped: %s", self.name, self.stats.as_dict())


class Housekeeper(threading.Thread):
    """Health sweep every ``every_s``; partitions and retention every hour."""

    def __init__(self, cfg: FleetConfig, stop: threading.Event) -> None:
        super().__init__(name="fleet-housekeeping", daemon=True)
        self.cfg = cfg
        self.stop = stop
        self.runs = 0
        self._last_day: date | None = None

    def run(self) -> None:
        hk = self.cfg.housekeeping
        next_parts = 0.0
        conn: psycopg.Connection[Any] | None = None
        while not self.stop.wait(hk.every_s if self.runs else 0.5):
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.cfg.db.dsn, autocommit=True,
                                           application_name="afe-collector housekeeping")
                health.sweep(conn, self.cfg.health)
                if time.monotonic() >= next_parts:
                    next_parts = time.monotonic() + hk.partitions_every_s
                    with conn.transaction():
                        if maintenance.try_lock(conn, maintenance.LOCK_PARTITIONS):
                            maintenance.ensure_partitions(
                                conn, datetime.now(UTC).date(), hk.partitions_back_days,
                                hk.partitions_ahead_days)
                    with conn.transaction():
                        if maintenance.try_lock(conn, maintenance.LOCK_RETENTION):
                            maintenance.apply_retention(conn)
                self.runs += 1
            except psycopg.OperationalError as exc:
                log.warning("housekeeping: database unavailable (%s)", str(exc).strip()[:200])
                if conn is not None:
                    conn.close()
                conn = None
            except Exception:  # housekeeping must never stop the collector
                log.exception("housekeeping failed")
        if conn is not None:
            conn.close()
