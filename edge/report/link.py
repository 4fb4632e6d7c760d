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

Three modules: this one is the paho I/O loop and the link's public face; the
delivery rules (window, mid map, held acks, dead letters, re-sends, timers) are the
sans-IO state machine :mod:`edge.report.delivery`, which this loop feeds with events
and whose actions it carries out; TLS material and certificate file watching are
:mod:`edge.report.tls`.
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config import MqttSection
from edge.errors import LinkError
from edge.report import delivery as D
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
from edge.report.tls import TlsFiles
from edge.report.topics import (
    downlink_filter,
    heartbeat_topic,
    report_topic,
    response_topic,
    status_topic,
)

log = logging.getLogger(__name__)

_AUTH_CONNACK = {0x86, 0x87, 0x8C, 4, 5}  # bad user/password, not authorized, bad auth


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
        self.delivery = D.Delivery(cfg.inflight, cfg.ack_hold_s, counters=self.c)
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
        m = self.delivery
        m.connection_made(time.monotonic(), cfg.heartbeat_s,
                          cfg.tls.reload_check_s if self._tls is not None else None)
        sess.delivery = m
        self._new = True
        hb_topic = heartbeat_topic(prefix, self.site, self.agent)
        while True:
            if sess.lost:
                break
            # 1. downlink
            if sess.messages:
                msgs, sess.messages = sess.messages, []
                for msg in msgs:
                    self._handle_downlink(client, msg)
            # 2. acknowledgements -> outbox deletes; fill the in-flight window
            if self._new:
                self._new = False
                m.enqueued()
            acked = self.c["acked"]
            if not self._carry_out(client, sess, lambda: m.poll(time.monotonic())):
                continue  # lost while publishing
            if self.c["acked"] != acked:
                self.last_ack = time.time()
            # 3. closing: drained -> say offline and leave
            now = time.monotonic()
            if self._closing:
                if self.outbox.depth() == 0 or now >= self._drain_deadline:
                    self._say_goodbye(client, sess)
                    self._carry_out(client, sess, m.leaving, repeat=False)
                    return
            # 4. periodic work
            if self._rebirth:  # the identity changed (models loaded or swapped)
                self._rebirth = False
                client.publish(status_topic(cfg.topic_prefix, self.site, self.agent),
                               birth_payload(self.identity, time.time()), qos=1, retain=True)
            m.set_heartbeat(cfg.heartbeat_s, now)  # a runtime config update: from now
            if self._heartbeat_now:
                self._heartbeat_now = False
                m.request_heartbeat()
            for act in m.due(now):
                if isinstance(act, D.Heartbeat):
                    self._heartbeat(client, hb_topic)
                elif isinstance(act, D.ExpireStore):
                    self.outbox.expire()
                elif isinstance(act, D.CheckTls) and self._tls is not None \
                        and self._tls.changed():
                    log.warning("TLS: certificate files changed; reconnecting to use them")
                    self.c["tls_reloads"] += 1
                    self._reconnect_now = True
            if self._reconnect_now:
                self._carry_out(client, sess, m.leaving, repeat=False)
                client.disconnect()
                self._drop(client)
                self.c["disconnects"] += 1
                self._backoff.attempt = 0
                return
            # 5. wait for the socket, a wake-up or the next deadline
            self._io(client, sess, m.timeout(now))
        # connection lost
        self._carry_out(client, sess, m.connection_lost, repeat=False)
        self.c["disconnects"] += 1
        self.connected.clear()
        why = sess.last_log_error or sess.disconnect_reason or (
            "the broker closed the connection right after refusing a report (mosquitto "
            "does this on an ACL denial)" if m.denied_here else "the broker closed the "
            "connection")
        self._fail("connection lost", why)
        self.c["connect_failures"] -= 1  # a lost connection is not a failed attempt
        self._drop(client)

    def _carry_out(self, client: mqtt.Client, sess: _Session,
                   step: Callable[[], list[D.Action]], repeat: bool = True) -> bool:
        """Carry out the delivery machine's actions; with ``repeat``, ask again until it
        has none left (an answered Fetch may give more to publish). False when the
        connection was lost on the way."""
        v5 = self._v5
        while True:
            actions = step()
            if not actions:
                return True
            for act in actions:
                if isinstance(act, D.Publish):
                    p = act.report
                    props: Any = _IdProps(p.id) if v5 else None  # paho only calls .pack()
                    info = client.publish(p.topic, p.payload, qos=1, properties=props)
                    if info.rc == mqtt.MQTT_ERR_NO_CONN:
                        # rc=4: paho queued it on a client that is going away; the
                        # report is still pending in the outbox and is sent on the next
                        # connection.
                        self.c["no_conn"] += 1
                        sess.lost = True
                        return False
                    if info.rc != mqtt.MQTT_ERR_SUCCESS:
                        log.warning("MQTT publish returned %s; reconnecting", info.rc)
                        sess.lost = True
                        return False
                    self.delivery.sent(p.seq, info.mid)
                elif isinstance(act, D.Delete):
                    self.outbox.ack(list(act.seqs))
                elif isinstance(act, D.Fetch):
                    self.delivery.fetched(self.outbox.fetch(act.after_seq, act.limit))
                elif isinstance(act, D.DeadLetter):
                    self._deny(act.seq, act.topic, act.reason)
            if not repeat:
                return True

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
    """paho callbacks of one connection; they only record (PUBACKs go to the delivery
    machine as mids and reason codes), the link thread acts."""

    __slots__ = ("connack", "lost", "disconnect_reason", "delivery", "messages",
                 "last_log_error")

    def __init__(self) -> None:
        self.connack: Any = None
        self.lost = False
        self.disconnect_reason: str | None = None
        self.delivery: D.Delivery | None = None
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
        if self.delivery is None:
            return  # before CONNACK: nothing of the outbox is in flight
        if rc is not None and rc.is_failure:
            self.delivery.puback(mid, f"{rc} (0x{rc.value:02x})", rc.value)
        else:
            self.delivery.puback(mid)

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


__all__ = ["MqttLink", "CLASS_NAMES"]
