"""The durable MQTT link: outbox -> paho-mqtt -> broker, and the downlink back.

``MqttLink`` is a report :class:`~edge.report.reporter.Sink`. ``publish`` commits the
report to the :class:`~edge.report.outbox.Outbox` and returns; one link thread owns
the paho client and does everything else:

- connects (MQTT 5 or 3.1.1, TLS / mTLS, user/password), with the will set to
  ``offline`` on the retained status topic, then publishes the retained birth
  message and subscribes to the downlink topics;
- sends pending reports oldest first, at most ``inflight`` unacknowledged at a time,
  each with its report id in the payload and as MQTT 5 user property ``id``;
- maps each PUBACK's mid back to the report's outbox sequence number through a map
  that lives exactly as long as the connection (paho's mids restart with every
  client and are no key), and deletes acknowledged reports in batches;
- on a lost connection drops the client, its mid map and whatever paho had queued
  (it is all still in the outbox) and reconnects after a full-jitter backoff; on the
  new connection everything unacknowledged is sent again, so the receiver may see a
  duplicate, which carries the same id;
- a PUBACK with a failure reason (MQTT 5, e.g. 0x87 not authorized from a broker ACL)
  moves the report to the outbox's dead letters and logs it: it is not retried
  forever. MQTT 3.1.1 has no such reason codes: mosquitto acknowledges and silently
  discards a denied publish, which no client can detect;
- publishes a heartbeat every ``heartbeat_s`` and expires reports past their TTL;
- reconnects when the TLS files change (certificate rotation).

The thread runs its own select loop over paho's socket and a wake-up socket pair, so
that ``publish`` from the pipeline thread only costs the outbox commit.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config import Config, MqttSection, OutboxSection, TlsSection
from edge.errors import LinkError
from edge.report.backoff import Backoff
from edge.report.outbox import CLASS_NAMES, Outbox, classify
from edge.report.presence import (
    Identity,
    birth_payload,
    config_hash,
    default_versions,
    heartbeat_payload,
    offline_payload,
    process_stats,
)
from edge.report.topics import (
    downlink_filter,
    heartbeat_topic,
    report_topic,
    response_topic,
    status_topic,
)

log = logging.getLogger(__name__)

# PUBACK reason codes that will not change by sending the same message again.
_TEMPORARY_PUBACK = {0x97}  # quota exceeded: left pending, re-sent on the next connection
_AUTH_CONNACK = {0x86, 0x87, 0x8C, 4, 5}  # bad user/password, not authorized, bad auth


class TlsFiles:
    """Builds the client's SSLContext from [mqtt.tls] and notices when its files change."""

    def __init__(self, tls: TlsSection) -> None:
        self.tls = tls
        self._sig: tuple[Any, ...] | None = None
        self._ctx: ssl.SSLContext | None = None

    def _signature(self) -> tuple[Any, ...]:
        sig: list[Any] = []
        for p in (self.tls.ca_file, self.tls.cert_file, self.tls.key_file):
            if p is None:
                sig.append(None)
                continue
            try:
                st = os.stat(p)
                sig.append((str(p), st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                sig.append((str(p), "missing"))
        return tuple(sig)

    def changed(self) -> bool:
        return self._sig is not None and self._signature() != self._sig

    def context(self) -> ssl.SSLContext:
        """The current context, rebuilt if a file changed. Raises LinkError with the
        file at fault when one cannot be read or does not hold what it should."""
        sig = self._signature()
        if self._ctx is not None and sig == self._sig:
            return self._ctx
        t = self.tls
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            if t.ca_file is not None:
                ctx.load_verify_locations(cafile=str(t.ca_file))
            else:
                ctx.load_default_certs()
        except (OSError, ssl.SSLError) as exc:
            raise LinkError(f"TLS: cannot load CA file {t.ca_file}: {exc}") from None
        if t.cert_file is not None:
            try:
                ctx.load_cert_chain(str(t.cert_file),
                                    str(t.key_file) if t.key_file else None)
            except (OSError, ssl.SSLError) as exc:
                raise LinkError(f"TLS: cannot load client certificate {t.cert_file} / key "
                                f"{t.key_file}: {exc}") from None
        if t.insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self._ctx is not None:
            log.info("TLS: certificate files changed, new context loaded")
        self._ctx, self._sig = ctx, sig
        return ctx


class MqttLink:
    """The durable report sink over MQTT (see the module docstring)."""

    name = "mqtt"

    def __init__(self, cfg: MqttSection, outbox: Outbox, *, site: str, agent: str,
                 identity: Identity | None = None, alert_min_severity: str = "medium",
                 downlink: Any = None, data_dir: Path = Path("."),
                 start: bool = True) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.site, self.agent = site, agent
        self.identity = identity or Identity(
            site=site, agent=agent, versions=default_versions(),
            config_hash=config_hash((cfg, alert_min_severity)))
        self.identity.tls = {"enabled": cfg.tls.enabled,
                             "insecure_skip_verify": cfg.tls.enabled and
                             cfg.tls.insecure_skip_verify}
        if self.identity.tls["insecure_skip_verify"]:
            log.warning("TLS: insecure_skip_verify = true: the broker's certificate is NOT "
                        "verified; anyone on the path can read and forge traffic (lab only)")
        if not self.identity.boot_seq:
            self.identity.boot_seq = outbox.bump("boot_seq")
        if not self.identity.boot_ts:
            self.identity.boot_ts = time.time()
        self.downlink = downlink
        self._alert_min = alert_min_severity
        self._data_dir = data_dir
        self._v5 = cfg.protocol == "5"
        self._client_id = cfg.client_id or f"afe-{site}-{agent}"
        self._tls = TlsFiles(cfg.tls) if cfg.tls.enabled else None
        self._backoff = Backoff(cfg.backoff_base_s, cfg.backoff_cap_s, cfg.backoff_reset_s)
        self._counters_fn: Callable[[], dict[str, Any]] | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._new = True
        self._sleeping = False
        self._stop = threading.Event()
        self._closing = False
        self._drain_deadline = 0.0
        self.connected = threading.Event()
        self.state = "starting"
        self.last_error: str | None = None
        self._last_logged_error: str | None = None
        self._last_logged_at = 0.0
        self.last_ack: float | None = None
        self.c: dict[str, int] = {
            "published": 0, "acked": 0, "denied": 0, "no_conn": 0, "connects": 0,
            "connect_failures": 0, "disconnects": 0, "downlink": 0, "heartbeats": 0,
            "tls_reloads": 0, "resent_after_loss": 0, "store_errors": 0}
        self._reconnect_now = False
        self._careful = False
        self._resent_once: set[int] = set()
        self._suspects: dict[int, int] = {}
        self._heartbeat_now = False
        self._rebirth = False
        if downlink is not None and hasattr(downlink, "register"):
            downlink.register("heartbeat", self._cmd_heartbeat)
            downlink.register("reconnect", self._cmd_reconnect)
            downlink.register("outbox_stats", self._cmd_outbox_stats)
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)
        if start:
            self._thread.start()

    # ------------------------------------------------------------------ Sink API
    def set_models(self, models: dict[str, str]) -> None:
        """The models this agent runs ({name: "version sha256"}): in the birth message,
        re-published (retained) when they change, e.g. after a model update."""
        self.identity.models = dict(models)
        self._rebirth = True

    def register_command(self, name: str, fn: Any) -> None:
        """A downlink command served by another part of the agent (model updates...)."""
        if self.downlink is not None and hasattr(self.downlink, "register"):
            self.downlink.register(name, fn)

    def publish(self, report: dict[str, Any], payload: bytes) -> None:
        """Commit the report to the outbox (durable on return) and wake the sender."""
        cls = classify(report["kind"], report["severity"], self._alert_min)
        topic = report_topic(self.cfg.topic_prefix, self.site, self.agent, report["kind"])
        try:
            self.outbox.submit(report["id"], cls, topic, payload)
        except LinkError as exc:
            # An I/O error of the store (disk full is handled inside, as a state): the
            # report is lost and counted; the detectors go on.
            self.c["store_errors"] += 1
            if self.c["store_errors"] in (1, 10, 100, 1000) or \
                    self.c["store_errors"] % 10_000 == 0:
                log.error("%s (%d reports lost so far)", exc, self.c["store_errors"])
            return
        self._poke()

    def publish_many(self, items: list[tuple[dict[str, Any], bytes]]) -> int:
        """Commit a batch in one transaction; returns how many were stored."""
        rows = [(r["id"], classify(r["kind"], r["severity"], self._alert_min),
                 report_topic(self.cfg.topic_prefix, self.site, self.agent, r["kind"]), p)
                for r, p in items]
        n = self.outbox.submit_many(rows)
        self._poke()
        return n

    def set_counters_provider(self, fn: Callable[[], dict[str, Any]]) -> None:
        """Per-detector counters for the heartbeat (e.g. ``pipeline.counters``)."""
        self._counters_fn = fn

    def counters(self) -> dict[str, int]:
        st = self.outbox.stats()
        out = dict(self.c)
        out["pending"] = st.depth
        out["pending_bytes"] = st.bytes
        out["dropped"] = sum(st.drops.values())
        return out

    def close(self, timeout_s: float | None = None) -> None:
        """Drain for up to ``timeout_s`` (default mqtt.drain_timeout_s), say offline,
        disconnect, close the outbox. What is still pending is sent on the next start."""
        if self._closing:
            return
        wait = self.cfg.drain_timeout_s if timeout_s is None else timeout_s
        self._drain_deadline = time.monotonic() + wait
        self._closing = True
        self._poke(force=True)
        if self._thread.is_alive():
            self._thread.join(wait + self.cfg.connect_timeout_s + 5.0)
        left = self.outbox.depth()
        if left:
            log.warning("MQTT: %d reports still pending at close; they stay in the outbox "
                        "%s and are sent after the next start", left, self.outbox.path)
        self.outbox.close()
        self._wake_r.close()
        self._wake_w.close()

    # ------------------------------------------------------------------ waiting helpers
    def wait_connected(self, timeout_s: float) -> bool:
        return self.connected.wait(timeout_s)

    def wait_drained(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.outbox.depth() == 0:
                return True
            time.sleep(0.02)
        return self.outbox.depth() == 0

    def request_reconnect(self) -> None:
        self._reconnect_now = True
        self._poke(force=True)

    def request_heartbeat(self) -> None:
        self._heartbeat_now = True
        self._poke(force=True)

    def _cmd_heartbeat(self, args: dict[str, Any]) -> dict[str, Any]:
        self._heartbeat_now = True
        return {"heartbeat": "queued"}

    def _cmd_reconnect(self, args: dict[str, Any]) -> dict[str, Any]:
        # after the ack is out: the flag is read at the end of this loop iteration
        self._reconnect_now = True
        return {"reconnect": "queued"}

    def _cmd_outbox_stats(self, args: dict[str, Any]) -> dict[str, Any]:
        st = self.outbox.stats()
        return {"depth": st.depth, "bytes": st.bytes, "max_bytes": st.max_bytes,
                "by_class": st.by_class, "drops": st.drops, "disk_full": st.disk_full,
                "oldest_created": st.oldest_created}

    # ------------------------------------------------------------------ thread
    def _poke(self, force: bool = False) -> None:
        self._new = True
        if self._sleeping or force:
            try:
                self._wake_w.send(b"\0")
            except (BlockingIOError, OSError):
                pass

    def _run(self) -> None:
        next_expire = 0.0
        while True:
            if self._closing and (self.outbox.depth() == 0
                                  or time.monotonic() >= self._drain_deadline):
                break
            now = time.time()
            if now >= next_expire:
                next_expire = now + 10.0
                try:
                    self.outbox.expire(now)
                except LinkError as exc:
                    log.error("%s", exc)
            try:
                self._session()
            except Exception:  # the link must outlive any one bad connection
                log.exception("MQTT: link error; reconnecting")
            self.connected.clear()
            if self._closing and (self.outbox.depth() == 0
                                  or time.monotonic() >= self._drain_deadline):
                break
            self._backoff.disconnected(time.monotonic())
            delay = self._backoff.next_delay()
            if self._closing:
                delay = min(delay, max(0.0, self._drain_deadline - time.monotonic()))
            self.state = "backoff"
            self._sleep(delay)
        self.state = "closed"

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            self._sleeping = True
            try:
                r, _, _ = select.select([self._wake_r], [], [], left)
            finally:
                self._sleeping = False
            if r:
                self._drain_wake()
                if self._closing or self._reconnect_now:
                    return

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _fail(self, kind: str, msg: str) -> None:
        """One clear log line per kind of failure (broker unreachable, TLS failure, auth
        failure, ...); repeats go to debug, with a reminder every 5 minutes."""
        self.last_error = f"{kind}: {msg}"
        self.c["connect_failures"] += 1
        now = time.monotonic()
        if kind != self._last_logged_error or now - self._last_logged_at >= 300.0:
            again = kind == self._last_logged_error
            self._last_logged_error, self._last_logged_at = kind, now
            log.error("MQTT %s%s (%s:%d): %s; retrying with backoff (up to %.1f s)",
                      kind, " still" if again else "", self.cfg.host, self.cfg.port, msg,
                      self.cfg.backoff_cap_s)
        else:
            log.debug("MQTT %s again: %s", kind, msg)

    def _new_client(self) -> mqtt.Client:
        cfg = self.cfg
        if self._v5:
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self._client_id,
                                 protocol=mqtt.MQTTv5)
        else:
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self._client_id,
                                 protocol=mqtt.MQTTv311,
                                 clean_session=cfg.session_expiry_s == 0)
        client.connect_timeout = cfg.connect_timeout_s
        client.max_inflight_messages_set(0)  # our window bounds what is in flight
        client.max_queued_messages_set(0)
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        if self._tls is not None:
            client.tls_set_context(self._tls.context())
            if cfg.tls.insecure_skip_verify:
                client.tls_insecure_set(True)
        # the will carries the time this connection began; the birth repeats it as
        # conn_ts, so a receiver can order a late will against the next birth
        self._conn_ts = time.time()
        client.will_set(status_topic(cfg.topic_prefix, self.site, self.agent),
                        offline_payload(self.identity, self._conn_ts, "lost"), qos=1,
                        retain=True)
        return client

    def _session(self) -> None:
        """One connection: connect, run until it is lost (or closing finished)."""
        cfg = self.cfg
        self.state = "connecting"
        self._reconnect_now = False
        try:
            client = self._new_client()
        except LinkError as exc:
            self._fail("TLS setup failure", str(exc).removeprefix("TLS: "))
            return
        sess = _Session()
        # paho's log lines go to our logger; errors are also kept to explain a failure
        client.enable_logger(sess)  # type: ignore[arg-type]
        client.on_connect = sess.on_connect
        client.on_disconnect = sess.on_disconnect
        client.on_publish = sess.on_publish
        client.on_message = sess.on_message
        props = None
        if self._v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = cfg.session_expiry_s
        try:
            client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive_s,
                           clean_start=cfg.session_expiry_s == 0 if self._v5 else
                           mqtt.MQTT_CLEAN_START_FIRST_ONLY, properties=props)
        except ssl.SSLCertVerificationError as exc:
            self._fail("TLS failure", f"broker certificate not trusted: {exc.verify_message} "
                       f"(check mqtt.tls.ca_file)")
            return
        except ssl.SSLError as exc:
            self._fail("TLS failure", f"handshake failed: {exc.reason or exc}")
            return
        except (OSError, TimeoutError) as exc:
            self._fail("broker unreachable", f"{exc.__class__.__name__}: {exc}")
            return
        deadline = time.monotonic() + cfg.connect_timeout_s
        while sess.connack is None and not sess.lost and time.monotonic() < deadline:
            self._io(client, sess, 0.05)
        if sess.connack is None:
            client.loop_misc()
            why = sess.last_log_error or "connection closed before CONNACK"
            if self._tls is not None and ("ssl" in why.lower() or "tls" in why.lower()
                                          or "certificate" in why.lower() or sess.lost):
                if "CERTIFICATE_REQUIRED" in why.upper():
                    hint = ("the broker requires a client certificate (set "
                            "mqtt.tls.cert_file and key_file)")
                elif "UNKNOWN_CA" in why.upper() or "BAD_CERTIFICATE" in why.upper():
                    hint = "the broker rejected the client certificate"
                else:
                    hint = ("is the client certificate missing or not trusted by the "
                            "broker?")
                self._fail("TLS failure", f"broker closed the TLS session before CONNACK "
                           f"({why}); {hint}")
            else:
                self._fail("broker unreachable", why)
            self._drop(client)
            return
        rc = sess.connack
        if rc.is_failure:
            code = rc.value
            kind = "auth failure" if code in _AUTH_CONNACK else "connection refused"
            self._fail(kind, f"CONNACK {rc} (0x{code:02x})")
            self._drop(client)
            return
        self._connected(client, sess)

    def _connected(self, client: mqtt.Client, sess: _Session) -> None:
        cfg = self.cfg
        self.c["connects"] += 1
        if self.last_error is not None:
            log.warning("MQTT connected to %s:%d again (after: %s)", cfg.host, cfg.port,
                        self.last_error)
        else:
            log.info("MQTT connected to %s:%d", cfg.host, cfg.port)
        if self.identity.tls.get("insecure_skip_verify"):
            log.warning("TLS: connected to %s:%d WITHOUT verifying its certificate "
                        "(insecure_skip_verify)", cfg.host, cfg.port)
        self.last_error = self._last_logged_error = None
        self._backoff.connected(time.monotonic())
        self.state = "connected"
        self.connected.set()
        prefix = cfg.topic_prefix
        client.publish(status_topic(prefix, self.site, self.agent),
                       birth_payload(self.identity, time.time(),
                                     conn_ts=getattr(self, "_conn_ts", None)),
                       qos=1, retain=True)
        if self.downlink is not None:
            client.subscribe(downlink_filter(prefix, self.site, self.agent), qos=1)
        inflight: dict[int, tuple[int, str]] = {}  # mid -> (outbox seq, topic); this connection only
        sess.inflight = inflight
        queue: deque[Any] = deque()
        cursor = 0  # highest outbox seq fetched on this connection
        # After a connection broke with reports in flight, start with one in flight:
        # some brokers (mosquitto 2.0.11 on an ACL denial) send the PUBACK with the
        # failure reason and then close the connection; with more in flight the next
        # write fails before that PUBACK is read, and the refused report would be sent
        # again forever. Back to the full window after 2 x inflight clean acks.
        window = 1 if self._careful else cfg.inflight
        careful_left = max(20, 2 * cfg.inflight)
        denied_here = False
        acks: list[int] = []
        acks_since = 0.0
        # Acknowledged reports are held back from deletion for ack_hold_s: if the
        # connection breaks abnormally within that time (a broker crash right after
        # its PUBACK, before it delivered or saved the message), they are sent again.
        hold = cfg.ack_hold_s
        held: deque[tuple[float, list[int]]] = deque()
        next_hb = time.monotonic() + cfg.heartbeat_s
        hb_period = cfg.heartbeat_s
        next_tls = time.monotonic() + cfg.tls.reload_check_s
        next_expire = time.monotonic() + 10.0
        exhausted = False
        self._new = True
        hb_topic = heartbeat_topic(prefix, self.site, self.agent)
        v5 = self._v5
        while True:
            # 1. acknowledgements that arrived -> outbox deletes (batched)
            if sess.acked:
                self.c["acked"] += len(sess.acked)
                if window < cfg.inflight:
                    careful_left -= len(sess.acked)
                    if careful_left <= 0:
                        window = cfg.inflight
                        self._careful = False
                self.last_ack = time.time()
                if hold > 0:
                    held.append((time.monotonic(), sess.acked))
                    sess.acked = []
                else:
                    if not acks:
                        acks_since = time.monotonic()
                    acks.extend(sess.acked)
                    sess.acked.clear()
            if held and not sess.lost:
                limit = time.monotonic() - hold
                while held and held[0][0] <= limit:
                    if not acks:
                        acks_since = time.monotonic()
                    acks.extend(held.popleft()[1])
            if sess.denied:
                denied_here = True
                for seq, topic, reason in sess.denied:
                    self._deny(seq, topic, reason)
                sess.denied.clear()
            if acks and (len(acks) >= 256 or time.monotonic() - acks_since >= 0.005
                         or sess.lost):
                self.outbox.ack(acks)
                acks = []
            if sess.lost:
                break
            # 2. downlink
            if sess.messages:
                msgs, sess.messages = sess.messages, []
                for m in msgs:
                    self._handle_downlink(client, m)
            # 3. fill the in-flight window
            if self._new:
                self._new = False
                exhausted = False
            while len(inflight) < window:
                if not queue:
                    if exhausted:
                        break
                    batch = self.outbox.fetch(cursor, max(window, 256))
                    if len(batch) < max(window, 256):
                        exhausted = True
                    if not batch:
                        break
                    queue.extend(batch)
                    cursor = batch[-1].seq
                p = queue[0]
                props: Any = _IdProps(p.id) if v5 else None  # paho only calls .pack()
                info = client.publish(p.topic, p.payload, qos=1, properties=props)
                if info.rc == mqtt.MQTT_ERR_NO_CONN:
                    # rc=4: paho queued it on a client that is going away; the report
                    # is still pending in the outbox and is sent on the next connection.
                    self.c["no_conn"] += 1
                    sess.lost = True
                    break
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    log.warning("MQTT publish returned %s; reconnecting", info.rc)
                    sess.lost = True
                    break
                queue.popleft()
                inflight[info.mid] = (p.seq, p.topic)
                self.c["published"] += 1
            if sess.lost:
                continue
            # 4. closing: drained -> say offline and leave
            now = time.monotonic()
            if self._closing:
                if self.outbox.depth() == 0 or now >= self._drain_deadline:
                    self._say_goodbye(client, sess)
                    for _, seqs in held:
                        acks.extend(seqs)
                    if acks:
                        self.outbox.ack(acks)
                    return
            # 5. periodic work
            if self._rebirth:  # the identity changed (models loaded or swapped)
                self._rebirth = False
                client.publish(status_topic(cfg.topic_prefix, self.site, self.agent),
                               birth_payload(self.identity, time.time()), qos=1, retain=True)
            if cfg.heartbeat_s != hb_period:  # a runtime config update: counts from now
                hb_period = cfg.heartbeat_s
                next_hb = min(next_hb, now + hb_period)
            if now >= next_hb or self._heartbeat_now:
                self._heartbeat_now = False
                next_hb = now + cfg.heartbeat_s
                self._heartbeat(client, hb_topic)
            if now >= next_expire:
                next_expire = now + 10.0
                self.outbox.expire()
            if self._tls is not None and now >= next_tls:
                next_tls = now + cfg.tls.reload_check_s
                if self._tls.changed():
                    log.warning("TLS: certificate files changed; reconnecting to use them")
                    self.c["tls_reloads"] += 1
                    self._reconnect_now = True
            if self._reconnect_now:
                for _, seqs in held:
                    acks.extend(seqs)
                if acks:
                    self.outbox.ack(acks)
                client.disconnect()
                self._drop(client)
                self.c["disconnects"] += 1
                self._backoff.attempt = 0
                return
            # 6. wait for the socket, a wake-up or the next deadline
            busy = bool(queue) and len(inflight) < window
            timeout = 0.0 if busy else min(
                0.005 if acks or held else 0.5, max(0.0, next_hb - now))
            self._io(client, sess, timeout)
        # connection lost
        if inflight:
            self._careful = True
        # Held acks are sent again once; a report whose delivery keeps breaking the
        # connection (a broker that closes instead of refusing, as mosquitto does on an
        # ACL denial over MQTT 3.1.1) must not be re-sent forever.
        again = [q for _, seqs in held for q in seqs]
        once = self._resent_once
        acks.extend(q for q in again if q in once)
        fresh = [q for q in again if q not in once]
        if len(once) > 100_000:
            once.clear()
        once.update(fresh)
        self.c["resent_after_loss"] += len(fresh)
        if window == 1 and len(inflight) == 1:
            self._suspect(next(iter(inflight.values())))
        if acks:
            self.outbox.ack(acks)
        self.c["disconnects"] += 1
        self.connected.clear()
        why = sess.last_log_error or sess.disconnect_reason or (
            "the broker closed the connection right after refusing a report (mosquitto "
            "does this on an ACL denial)" if denied_here else "the broker closed the "
            "connection")
        self._fail("connection lost", why)
        self.c["connect_failures"] -= 1  # a lost connection is not a failed attempt
        self._drop(client)

    def _io(self, client: mqtt.Client, sess: _Session, timeout: float) -> None:
        sock = client.socket()
        if sock is None:
            sess.lost = True
            return
        pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
        wl = [sock] if client.want_write() else []
        if not self._new:
            self._sleeping = True
        try:
            if self._new or pending:
                timeout = 0.0
            r, w, _ = select.select([sock, self._wake_r], wl, [], timeout)
        except (OSError, ValueError):
            sess.lost = True
            return
        finally:
            self._sleeping = False
        if self._wake_r in r:
            self._drain_wake()
        if sock in r or pending:
            rc = client.loop_read()
            if rc != mqtt.MQTT_ERR_SUCCESS and rc != mqtt.MQTT_ERR_AGAIN:
                sess.lost = True
                return
        if sock in w:
            rc = client.loop_write()
            if rc != mqtt.MQTT_ERR_SUCCESS and rc != mqtt.MQTT_ERR_AGAIN:
                sess.lost = True
                return
        rc = client.loop_misc()
        if rc != mqtt.MQTT_ERR_SUCCESS:
            sess.lost = True

    def _drop(self, client: mqtt.Client) -> None:
        try:
            sock = client.socket()
            if sock is not None:
                sock.close()
        except OSError:
            pass

    def _suspect(self, hit: tuple[int, str]) -> None:
        """The connection broke while this report was the only one in flight, with no
        PUBACK: after three times it is treated as refused (dead letter)."""
        seq, topic = hit
        n = self._suspects.get(seq, 0) + 1
        self._suspects[seq] = n
        if n >= 3:
            del self._suspects[seq]
            self._deny(seq, topic, "the broker closed the connection each of 3 times this "
                       "report was sent (probably not authorized; MQTT 3.1.1 has no "
                       "reason codes)")
        elif len(self._suspects) > 1000:
            self._suspects.clear()

    def _deny(self, seq: int, topic: str, reason: str) -> None:
        self.c["denied"] += 1
        self.outbox.dead_letter(seq, reason)
        if self.c["denied"] == 1 or self.c["denied"] % 1000 == 0:
            log.error("MQTT broker refused a report on %s: %s; the report is moved to the "
                      "outbox's dead letters (%d so far), not retried; check the broker "
                      "ACL for this agent", topic, reason, self.c["denied"])

    def _heartbeat(self, client: mqtt.Client, topic: str) -> None:
        now = time.time()
        try:
            counters = self._counters_fn() if self._counters_fn is not None else {}
        except RuntimeError:  # the pipeline thread changed a dict meanwhile: next time
            counters = {}
        except Exception:  # a counter provider must not take the link down
            log.exception("heartbeat: counters provider failed")
            counters = {}
        link = {"state": self.state, "last_ack": self.last_ack, **self.c,
                "backoff_attempt": self._backoff.attempt}
        payload = heartbeat_payload(self.identity, now, link=link,
                                    outbox=self.outbox.stats(),
                                    proc=process_stats(self._data_dir), counters=counters)
        client.publish(topic, payload, qos=0)
        self.c["heartbeats"] += 1

    def _say_goodbye(self, client: mqtt.Client, sess: _Session) -> None:
        info = client.publish(status_topic(self.cfg.topic_prefix, self.site, self.agent),
                              offline_payload(self.identity, time.time(), "shutdown"),
                              qos=1, retain=True)
        deadline = time.monotonic() + 2.0
        while not info.is_published() and not sess.lost and time.monotonic() < deadline:
            self._io(client, sess, 0.05)
        client.disconnect()
        try:
            self._io(client, sess, 0.0)
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
        self._drop(client)
        self.connected.clear()

    def _handle_downlink(self, client: mqtt.Client, msg: mqtt.MQTTMessage) -> None:
        self.c["downlink"] += 1
        props = getattr(msg, "properties", None)
        corr = getattr(props, "CorrelationData", None) if props is not None else None
        try:
            ack = self.downlink.handle(msg.topic, bytes(msg.payload), corr)
        except Exception:  # a hostile message must never take the agent down
            log.exception("downlink: handler failed on %s", msg.topic)
            return
        if ack is None:
            return
        out_props = None
        if self._v5:
            out_props = Properties(PacketTypes.PUBLISH)
            out_props.ContentType = "application/json"
            if corr is not None:
                out_props.CorrelationData = corr
        client.publish(response_topic(self.cfg.topic_prefix, self.site, self.agent),
                       ack.to_json(), qos=1, properties=out_props)


_paho_log = logging.getLogger("edge.report.paho")
_paho_log.setLevel(logging.WARNING)
_CONTENT_TYPE_JSON = b"\x03\x00\x10application/json"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


class _IdProps:
    """MQTT 5 PUBLISH properties (content type JSON, user property ``id``), packed
    directly: paho's generic Properties class costs more than the rest of a publish."""

    __slots__ = ("_id", "_packed")

    def __init__(self, report_id: str) -> None:
        self._id = report_id
        rid = report_id.encode()
        body = _CONTENT_TYPE_JSON + b"\x26\x00\x02id" + len(rid).to_bytes(2, "big") + rid
        self._packed = _varint(len(body)) + body

    def pack(self) -> bytes:
        return self._packed

    def __str__(self) -> str:
        return f"[ContentType: application/json, UserProperty: [('id', '{self._id}')]]"


class _Session:
    """paho callbacks of one connection; they only record, the link thread acts."""

    __slots__ = ("connack", "lost", "disconnect_reason", "inflight", "acked", "denied",
                 "messages", "last_log_error")

    def __init__(self) -> None:
        self.connack: Any = None
        self.lost = False
        self.disconnect_reason: str | None = None
        self.inflight: dict[int, tuple[int, str]] = {}
        self.acked: list[int] = []
        self.denied: list[tuple[int, str, str]] = []
        self.messages: list[mqtt.MQTTMessage] = []
        self.last_log_error: str | None = None

    def on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any,
                   props: Any = None) -> None:
        self.connack = rc

    def on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any,
                      props: Any = None) -> None:
        self.lost = True
        # 0x80 "Unspecified error" is what paho reports for a dropped socket; the
        # socket error itself comes through the paho logger
        if rc is not None and getattr(rc, "value", 0) not in (0, 0x80):
            self.disconnect_reason = f"broker sent DISCONNECT {rc} (0x{rc.value:02x})"

    def on_publish(self, client: Any, userdata: Any, mid: int, rc: Any,
                   props: Any = None) -> None:
        hit = self.inflight.pop(mid, None)
        if hit is None:
            return  # birth, will, ack replies: not from the outbox
        if rc is not None and rc.is_failure and rc.value not in _TEMPORARY_PUBACK:
            self.denied.append((hit[0], hit[1], f"{rc} (0x{rc.value:02x})"))
        elif rc is not None and rc.is_failure:
            return  # left pending: sent again on the next connection
        else:
            self.acked.append(hit[0])

    def on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.messages.append(msg)

    def log(self, level: int, fmt: str, *args: Any) -> None:
        """Stands in for paho's logger: formats only what will be kept or shown (paho
        logs every packet at debug level, which would cost more than the publish)."""
        if level >= logging.ERROR:
            # reported once, in the link's own line that says what happens next
            self.last_log_error = fmt % args
            _paho_log.debug(fmt, *args)
        elif _paho_log.isEnabledFor(level):
            _paho_log.log(level, fmt, *args)


def build_link(cfg: Config) -> MqttLink:
    """The durable link as configured: outbox, presence identity (versions, config
    hash, model hashes), downlink handler with watchlist and runtime-config stores."""
    data_dir = cfg.agent.data_dir
    outbox = open_outbox(cfg.outbox, data_dir)
    ident = Identity(site=cfg.agent.site, agent=cfg.agent.id, versions=default_versions(),
                     config_hash=config_hash(cfg))
    handler = None
    if cfg.downlink.enabled:
        from edge.downlink.handler import DownlinkHandler
        from edge.downlink.runtime import RuntimeConfig
        from edge.downlink.watchlist import WatchlistStore
        from edge.security.signing import trusted_keys

        handler = DownlinkHandler(cfg.downlink, prefix=cfg.mqtt.topic_prefix,
                                  site=cfg.agent.site, agent=cfg.agent.id,
                                  watchlists=WatchlistStore(data_dir), state_dir=data_dir,
                                  keys=trusted_keys(cfg.security.issuer_keys),
                                  runtime=RuntimeConfig(cfg, data_dir))
    return MqttLink(cfg.mqtt, outbox, site=cfg.agent.site, agent=cfg.agent.id,
                    identity=ident, alert_min_severity=cfg.outbox.alert_min_severity,
                    downlink=handler, data_dir=data_dir)


def open_outbox(ocfg: OutboxSection, data_dir: Path) -> Outbox:
    """The outbox configured by [outbox] (default path under agent.data_dir)."""
    path = ocfg.path or (data_dir / "outbox.sqlite")
    return Outbox(path, max_bytes=ocfg.max_bytes,
                  ttl_s=(ocfg.ttl_health_s, ocfg.ttl_low_s, ocfg.ttl_alert_s),
                  sync=ocfg.sync)


__all__ = ["MqttLink", "TlsFiles", "build_link", "open_outbox", "CLASS_NAMES"]
