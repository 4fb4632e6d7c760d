"""The agent's end of one bridge link, with I/O: a thread that owns the transport
(:mod:`drivers.transport`, reconnecting with backoff) and the sans-IO
:class:`~firmware_bridge.link.Link`, and hands what arrives to the pipeline side
through queues.

Out of the thread: ``records`` (BaseStationEvent, PhotoEyeEvent, Malformed) for the
:class:`~firmware_bridge.source.BridgeSource`, and ``results`` (divert outcomes) for the
:class:`~firmware_bridge.actuator.StationActuator`. Into it: :meth:`send` (thread-safe;
the message is handed to the link on the I/O thread).
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.transport.reconnect import ReconnectingReader
from edge.records import Malformed
from firmware_bridge import messages as M
from firmware_bridge.codec import Codec, LinkKey
from firmware_bridge.image import ImageUpload, offer_for
from firmware_bridge.link import (
    Acked,
    Down,
    GaveUp,
    Link,
    Nacked,
    PeerRestarted,
    Received,
    Refused,
    Up,
)
from firmware_bridge.records import ClockMap, photo_eye_record, wire_to_event

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class LinkEvent:
    """Something that happened to a sent message, for the actuator: ``kind`` is
    "acked", "gave_up" (``detail`` retries/deadline), "nacked" or "result"."""

    kind: str
    msg: Any
    detail: str = ""
    at: float = 0.0


class BridgeClient:
    def __init__(self, name: str, transport: Any, *, peer_role: int,
                 key: LinkKey | None = None, require_auth: bool | None = None,
                 link_options: dict[str, Any] | None = None, read_timeout_s: float = 0.005,
                 queue_max: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.reader = ReconnectingReader(transport)
        self.codec = Codec(key, require_auth=require_auth)
        self._clock = clock
        now = clock()
        self.link = Link(self.codec, role=M.ROLE_AGENT, name=f"agent:{name}",
                         boot_id=random.getrandbits(32), peer_role=peer_role, started=now,
                         **(link_options or {}))
        self.read_timeout_s = read_timeout_s
        self.records: queue.Queue[Any] = queue.Queue(maxsize=queue_max)
        self.results: queue.Queue[LinkEvent] = queue.Queue()
        self._inbox: queue.Queue[tuple[Any, float | None]] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.clock_map = ClockMap()
        self.handlers: dict[type, Callable[[Any, float], None]] = {}
        self.c: dict[str, int] = {"records": 0, "records_dropped": 0, "bad_records": 0,
                                  "reopens": 0}
        self._opens_seen = 0
        self.state = "negotiating"
        self.last_refusal = ""
        self.peer: M.Hello | None = None
        self.upload: ImageUpload | None = None
        self.device_info: M.DeviceInfo | None = None
        self._next_image = 1

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"bridge-{self.name}",
                                            daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.reader.close()

    def send(self, msg: Any, deadline: float | None = None) -> None:
        """Queue ``msg`` for the link (from any thread). ``deadline``: Unix time."""
        self._inbox.put((msg, deadline))

    def upload_image(self, image: bytes, signature_line: str, kind: str = "firmware",
                     chunk_size: int = 256, window: int = 4) -> ImageUpload:
        """Start sending a signed image to the device; poll the returned object's
        ``result`` ("done" or why not). One upload at a time."""
        up = ImageUpload(offer_for(self._next_image, image, signature_line, kind,
                                   chunk_size), image, window=window)
        self._next_image += 1
        self._inbox.put((up, None))
        return up

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        link, reader = self.link, self.reader
        while not self._stop.is_set():
            data = reader.read(self.read_timeout_s)
            now = self._clock()
            if reader.opens != self._opens_seen:  # (re)opened: a partial frame is gone
                if self._opens_seen:
                    self.c["reopens"] += 1
                self._opens_seen = reader.opens
                self.codec.reset()
            events = link.receive(data, now) if data else []
            while True:
                try:
                    msg, deadline = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if isinstance(msg, ImageUpload):
                    self.upload = msg
                    self._send_all(msg.start(now), now)
                    continue
                try:
                    link.send(msg, now, deadline)
                except (OverflowError, M.PayloadError) as exc:
                    self.results.put(LinkEvent("gave_up", msg, str(exc), now))
            events += link.poll(now)
            if self.upload is not None:
                self._send_all(self.upload.poll(now), now)
            out = link.output()
            if out:
                reader.write(out)
            for ev in events:
                self._event(ev, now)
        out = link.output()
        if out:
            reader.write(out)

    def _send_all(self, msgs: list[Any], now: float) -> None:
        for m in msgs:
            self.link.send(m, now)

    def _event(self, ev: Any, now: float) -> None:
        if isinstance(ev, Received):
            self._received(ev.msg, now)
        elif isinstance(ev, Acked):
            self.results.put(LinkEvent("acked", ev.msg, f"{ev.tries} tries", now))
        elif isinstance(ev, GaveUp):
            self.results.put(LinkEvent("gave_up", ev.msg, ev.reason, now))
        elif isinstance(ev, Nacked):
            self.results.put(LinkEvent("nacked", ev.msg, ev.reason, now))
        elif isinstance(ev, Up):
            self.state, self.peer = "up", ev.peer
            self.link.send(M.DeviceInfoReq(0), now)
            if self.upload is not None:
                self._send_all(self.upload.link_up(now), now)
            log.info("%s: link up with %s (role %s)", self.name, ev.peer.name,
                     M.ROLES.get(ev.peer.role, ev.peer.role))
        elif isinstance(ev, Refused):
            self.state, self.last_refusal = "refused", ev.reason
            log.error("%s: link refused: %s", self.name, ev.reason)
        elif isinstance(ev, PeerRestarted):
            self.clock_map.reset()
            log.warning("%s: device restarted (boot %08x)", self.name, ev.boot_id)
        elif isinstance(ev, Down):
            self.state = "negotiating"
            log.warning("%s: link down: %s", self.name, ev.reason)

    def _received(self, msg: Any, now: float) -> None:
        h = self.handlers.get(type(msg))
        if h is not None:
            h(msg, now)
            return
        try:
            if isinstance(msg, M.SubscriberEvent):
                rec: Any = wire_to_event(msg)
            elif isinstance(msg, M.PhotoEye):
                rec = photo_eye_record(msg, self.clock_map, now)
            elif isinstance(msg, M.ImageStatus):
                if self.upload is not None:
                    self._send_all(self.upload.on_status(msg, now), now)
                return
            elif isinstance(msg, M.DivertResult):
                self.results.put(LinkEvent("result", msg, "", now))
                return
            elif isinstance(msg, M.DeviceInfo):
                self.device_info = msg
                log.info("%s: device %s fw %s serial %s", self.name, msg.hw, msg.fw, msg.serial)
                return
            else:
                return
        except M.PayloadError as exc:
            self.c["bad_records"] += 1
            rec = Malformed(f"bridge:{self.name}", f"frame {self.codec.frames_in}", str(exc))
        try:
            self.records.put_nowait(rec)
            self.c["records"] += 1
        except queue.Full:
            self.c["records_dropped"] += 1

    def counters(self) -> dict[str, int | float]:
        out: dict[str, int | float] = dict(self.c)
        out.update({f"link.{k}": v for k, v in self.link.counters().items()})
        out.update({f"transport.{k}": v for k, v in self.reader.counters().items()})
        return out
