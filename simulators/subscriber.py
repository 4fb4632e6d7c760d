"""A report subscriber (the authority's side, for demos and tests).

With ``session_expiry_s > 0`` it uses a persistent MQTT 5 session (clean_start
false, fixed client id): on a broker with persistence, messages that arrive while
it is reconnecting (e.g. after a broker restart) are queued for it, not lost. It
reconnects by itself within ``reconnect_max_s``.

Duplicates are expected (QoS 1 is at-least-once); ``ids`` counts every report id
seen, so ``len(ids)`` is the number of distinct reports.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


class ReportSubscriber:
    """Subscribes to a topic filter at QoS 1 and keeps every decoded report."""

    def __init__(self, host: str, port: int, topic: str, *, client_id: str = "afe-subscriber",
                 clean: bool = True, session_expiry_s: int = 0, keep: bool = True,
                 reconnect_max_s: float = 0.5, tls: Any = None) -> None:
        self.reports: list[dict[str, Any]] = []
        self.ids: Counter[str] = Counter()
        self.messages: list[mqtt.MQTTMessage] = []
        self.bad: int = 0
        self.connects = 0
        self._keep = keep
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.topic = topic
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        # paho annotates int seconds but sleeps on floats
        self.client.reconnect_delay_set(0.05, reconnect_max_s)  # type: ignore[arg-type]
        if tls is not None:
            self.client.tls_set_context(tls)
        persistent = session_expiry_s > 0  # ``clean`` is kept for older callers
        props = None
        if persistent:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = session_expiry_s
        self.client.connect(host, port, keepalive=30, clean_start=not persistent,
                            properties=props)
        self.client.loop_start()
        if not self._ready.wait(10):
            raise TimeoutError("subscriber could not subscribe within 10 s")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any,
                    props: Any = None) -> None:
        if rc.is_failure:
            return
        self.connects += 1
        client.subscribe(self.topic, qos=1)
        self._ready.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            rep = orjson.loads(msg.payload)
        except orjson.JSONDecodeError:
            with self._lock:
                self.bad += 1
            return
        with self._lock:
            if isinstance(rep, dict) and isinstance(rep.get("id"), str):
                self.ids[rep["id"]] += 1
            if self._keep:
                self.reports.append(rep)
                self.messages.append(msg)

    def distinct(self) -> int:
        with self._lock:
            return len(self.ids)

    def wait_for(self, n: int, timeout_s: float = 30.0) -> bool:
        """Until ``n`` reports (with duplicates) arrived."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.reports) >= n:
                    return True
            time.sleep(0.02)
        return False

    def wait_distinct(self, n: int, timeout_s: float = 30.0) -> bool:
        """Until ``n`` distinct report ids arrived."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.distinct() >= n:
                return True
            time.sleep(0.05)
        return self.distinct() >= n

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
