"""A report subscriber (the authority's side, for demos and tests)."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import paho.mqtt.client as mqtt


class ReportSubscriber:
    """Subscribes to a topic filter at QoS 1 and keeps every decoded report."""

    def __init__(self, host: str, port: int, topic: str, *, client_id: str = "afe-subscriber",
                 clean: bool = True) -> None:
        self.reports: list[dict[str, Any]] = []
        self.bad: int = 0
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.topic = topic
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not self._ready.wait(10):
            raise TimeoutError("subscriber could not subscribe within 10 s")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any,
                    props: Any = None) -> None:
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
            self.reports.append(rep)

    def wait_for(self, n: int, timeout_s: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.reports) >= n:
                    return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
