"""Publishing reports to an MQTT broker with paho-mqtt 2.x at QoS 1.

This is the plain, non-durable publisher: it connects, publishes every report at
QoS 1 on its per-site, per-kind topic and, on close, waits until the broker
acknowledged them. What paho holds in memory is lost if the process dies; the agent
uses the durable :class:`edge.report.link.MqttLink` instead. Kept for embedding
where a durable store is not wanted.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config import MqttSection
from edge.errors import LinkError
from edge.report.topics import report_topic

log = logging.getLogger(__name__)


def make_client(cfg: MqttSection, client_id: str) -> mqtt.Client:
    """A paho client configured from the [mqtt] section (protocol, auth, TLS)."""
    proto = mqtt.MQTTv5 if cfg.protocol == "5" else mqtt.MQTTv311
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=proto)
    client.max_inflight_messages_set(cfg.inflight)
    client.max_queued_messages_set(0)
    if cfg.username is not None:
        client.username_pw_set(cfg.username, cfg.password)
    if cfg.tls.enabled:
        try:
            client.tls_set(
                ca_certs=str(cfg.tls.ca_file) if cfg.tls.ca_file else None,
                certfile=str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
                keyfile=str(cfg.tls.key_file) if cfg.tls.key_file else None,
                cert_reqs=ssl.CERT_NONE if cfg.tls.insecure_skip_verify else ssl.CERT_REQUIRED,
            )
        except (ssl.SSLError, OSError) as exc:
            raise LinkError(f"TLS setup failed: {exc}") from None
        if cfg.tls.insecure_skip_verify:
            log.warning("TLS: insecure_skip_verify = true: the broker's certificate is NOT "
                        "verified (lab only)")
            client.tls_insecure_set(True)
    return client


class MqttSink:
    name = "mqtt"

    def __init__(self, cfg: MqttSection, *, site: str, agent: str,
                 connect_timeout_s: float = 10.0) -> None:
        self.cfg = cfg
        self.site, self.agent = site, agent
        self._client = make_client(cfg, cfg.client_id or f"afe-{site}-{agent}")
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._pending: set[int] = set()
        self._early_acks: set[int] = set()
        self._acked = 0
        self._published = 0
        self._queued_offline = 0
        self._connect_rc: Any = None
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish
        try:
            self._client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
        except (OSError, ssl.SSLError) as exc:
            raise LinkError(f"cannot reach MQTT broker {cfg.host}:{cfg.port}: {exc}") from None
        self._client.loop_start()
        if not self._connected.wait(connect_timeout_s):
            self._client.loop_stop()
            raise LinkError(f"MQTT broker {cfg.host}:{cfg.port} did not accept the "
                            f"connection within {connect_timeout_s:.0f} s "
                            f"(reason: {self._connect_rc})")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any,
                    props: Any = None) -> None:
        self._connect_rc = rc
        if not rc.is_failure:
            if self.cfg.tls.enabled and self.cfg.tls.insecure_skip_verify:
                log.warning("TLS: connected to %s:%d WITHOUT verifying its certificate",
                            self.cfg.host, self.cfg.port)
            self._connected.set()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, rc: Any,
                    props: Any = None) -> None:
        with self._lock:
            if mid in self._pending:
                self._pending.discard(mid)
                self._acked += 1
            else:  # PUBACK raced ahead of publish() returning
                self._early_acks.add(mid)

    def publish(self, report: dict[str, Any], payload: bytes) -> None:
        topic = report_topic(self.cfg.topic_prefix, self.site, self.agent, report["kind"])
        props = None
        if self.cfg.protocol == "5":
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = [("id", report["id"])]
            props.ContentType = "application/json"
        # Never hold our lock across paho calls: paho invokes on_publish from its network
        # thread while holding its own mutex.
        info = self._client.publish(topic, payload, qos=1, properties=props)
        # rc=4 (MQTT_ERR_NO_CONN) is not a failure at QoS 1: paho keeps the message and
        # sends it when the connection is back, so it is pending like any other.
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning("MQTT publish failed: %s", mqtt.error_string(info.rc))
        with self._lock:
            self._published += 1
            if info.rc == mqtt.MQTT_ERR_NO_CONN:
                self._queued_offline += 1
            if info.mid in self._early_acks:
                self._early_acks.discard(info.mid)
                self._acked += 1
            else:
                self._pending.add(info.mid)

    def close(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    break
            time.sleep(0.01)
        with self._lock:
            left = len(self._pending)
        if left:
            log.error("MQTT: %d reports not acknowledged by the broker at close", left)
        self._client.disconnect()
        self._client.loop_stop()

    def counters(self) -> dict[str, int]:
        with self._lock:
            return {"published": self._published, "acked": self._acked,
                    "pending": len(self._pending), "queued_offline": self._queued_offline}
