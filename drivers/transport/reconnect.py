"""Keeping a device transport open: reconnect with backoff, counted, never raising.

A serial scanner that is unplugged and plugged back, a controller that reboots, a
TCP converter that drops the connection: the driver thread keeps calling
:meth:`ReconnectingReader.read` (or :meth:`read_frames`) and gets ``b""`` while the
device is away; the reader closes the transport, waits a full-jitter backoff
(:class:`edge.report.backoff.Backoff`) and opens it again. Its state (``open``,
``backoff``, ``closed``) is an attribute, and ``counters()`` exposes it (``connected``
0/1, ``retry_in_s``) with opens, failures and disconnects for ``agent.status``. A
partial frame when the link broke is dropped and counted (``partial_dropped``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from drivers.framing.base import FrameError, Framer
from edge.errors import TransportError
from edge.report.backoff import Backoff

log = logging.getLogger(__name__)


class ReconnectingReader:
    def __init__(self, transport: Any, *, framer: Framer | None = None,
                 backoff: Backoff | None = None, read_size: int = 4096,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.transport = transport
        self.name = str(getattr(transport, "name", "transport"))
        self.framer = framer
        self.backoff = backoff or Backoff(base_s=0.2, cap_s=10.0, reset_after_s=30.0)
        self.read_size = read_size
        self._clock, self._sleep = clock, sleep
        self.state = "backoff"  # not open yet: the first read opens it at once
        self._retry_at = 0.0
        self.last_error = ""
        self.opens = 0
        self.open_failures = 0
        self.disconnects = 0
        self.bytes_in = 0
        self.writes_dropped = 0
        self.partial_dropped = 0

    # -- reading
    def read(self, timeout: float) -> bytes:
        """Bytes from the device, or ``b""`` when none came within ``timeout`` or the
        device is away (then this call waits at most ``timeout``)."""
        if self.state == "closed":
            return b""
        if self.state != "open" and not self._try_open(timeout):
            return b""
        try:
            data = self.transport.read(self.read_size, timeout)
        except TransportError as exc:
            self._lost(exc)
            return b""
        self.bytes_in += len(data)
        return data

    def read_frames(self, timeout: float) -> list[bytes | FrameError]:
        """Complete frames (and counted framing errors) from what ``read`` got."""
        if self.framer is None:
            raise TypeError("read_frames needs a framer")
        data = self.read(timeout)
        return self.framer.feed(data) if data else []

    def chunks(self, stop: threading.Event, timeout: float = 0.2) -> Iterator[bytes]:
        """Non-empty chunks until ``stop`` is set (for a driver thread's loop)."""
        while not stop.is_set():
            data = self.read(timeout)
            if data:
                yield data

    def write(self, data: bytes) -> bool:
        """Send; False (counted as ``writes_dropped``) when the device is away."""
        if self.state != "open":
            self.writes_dropped += 1
            return False
        try:
            self.transport.write(data)
        except TransportError as exc:
            self._lost(exc)
            self.writes_dropped += 1
            return False
        return True

    def close(self) -> None:
        self.state = "closed"
        self.transport.close()

    # -- state
    def _try_open(self, timeout: float) -> bool:
        now = self._clock()
        if now < self._retry_at:
            self._sleep(min(timeout, self._retry_at - now))
            return False
        try:
            self.transport.open()
        except TransportError as exc:
            self.open_failures += 1
            self._schedule(exc, first=self.open_failures == 1)
            return False
        self.state = "open"
        self.opens += 1
        self.backoff.connected(self._clock())
        if self.opens > 1:
            log.info("%s: open again after %d failed attempt(s)", self.name,
                     self.backoff.attempt)
        return True

    def _lost(self, exc: TransportError) -> None:
        self.disconnects += 1
        self.transport.close()
        self.backoff.disconnected(self._clock())
        if self.framer is not None and self.framer.pending():
            self.partial_dropped += 1
        if self.framer is not None:
            self.framer.reset()
        self.state = "backoff"
        self._schedule(exc, first=True)

    def _schedule(self, exc: TransportError, first: bool) -> None:
        delay = self.backoff.next_delay()
        self._retry_at = self._clock() + delay
        self.state = "backoff"
        self.last_error = str(exc)
        # one line when the device goes away, then one per power of two attempts
        n = self.backoff.attempt
        if first or n & (n - 1) == 0:
            log.warning("%s: %s; retrying in %.1f s (attempt %d)", self.name, exc, delay, n)

    def counters(self) -> dict[str, int | float]:
        out: dict[str, int | float] = {
            "connected": int(self.state == "open"), "opens": self.opens,
            "open_failures": self.open_failures, "disconnects": self.disconnects,
            "bytes_in": self.bytes_in, "writes_dropped": self.writes_dropped,
            "partial_dropped": self.partial_dropped,
            "retry_in_s": round(max(0.0, self._retry_at - self._clock()), 3)
            if self.state == "backoff" else 0.0,
        }
        if self.framer is not None:
            out.update({f"framer.{k}": v for k, v in self.framer.counters().items()})
        return out
