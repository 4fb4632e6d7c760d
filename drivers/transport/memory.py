"""An in-memory transport twin: two connected ends, for tests and simulators.

``a, b = MemoryTransport.pair()``: bytes written to ``a`` are read from ``b`` and the
other way round, with the same timeout semantics as a real port. ``vanish()`` makes
both ends fail as an unplugged device would (TransportError on every use until
opened again), so reconnect logic can be tested without hardware.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from drivers.transport.base import TransportCounters
from edge.errors import TransportError


class _Pipe:
    def __init__(self) -> None:
        self.buf: deque[bytes] = deque()
        self.cond = threading.Condition()


class MemoryTransport:
    def __init__(self, name: str, inbox: _Pipe, outbox: _Pipe) -> None:
        self.name = name
        self._in, self._out = inbox, outbox
        self._open = False
        self._gone = False
        self.peer: MemoryTransport | None = None
        self.stats = TransportCounters()

    @classmethod
    def pair(cls, name: str = "memory") -> tuple[MemoryTransport, MemoryTransport]:
        """Two open, connected ends named ``<name>:a`` and ``<name>:b``."""
        p1, p2 = _Pipe(), _Pipe()
        a, b = cls(f"{name}:a", p1, p2), cls(f"{name}:b", p2, p1)
        a.peer, b.peer = b, a
        a.open()
        b.open()
        return a, b

    def open(self) -> None:
        if self._gone:
            raise TransportError("device not present", transport=self.name)
        self._open = True
        self.stats.opens += 1

    def _check(self) -> None:
        if self._gone:
            raise TransportError("device vanished", transport=self.name)
        if not self._open:
            raise TransportError("not open", transport=self.name)

    def read(self, max_bytes: int, timeout: float) -> bytes:
        self._check()
        deadline = time.monotonic() + timeout
        with self._in.cond:
            while not self._in.buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    return b""
                self._in.cond.wait(left)
                self._check()
            out = bytearray()
            while self._in.buf and len(out) < max_bytes:
                chunk = self._in.buf.popleft()
                take = max_bytes - len(out)
                if len(chunk) > take:
                    self._in.buf.appendleft(chunk[take:])
                    chunk = chunk[:take]
                out += chunk
        self.stats.reads += 1
        self.stats.bytes_in += len(out)
        return bytes(out)

    def write(self, data: bytes) -> None:
        self._check()
        if data:
            with self._out.cond:
                self._out.buf.append(bytes(data))
                self._out.cond.notify_all()
        self.stats.writes += 1
        self.stats.bytes_out += len(data)

    def close(self) -> None:
        self._open = False

    def vanish(self) -> None:
        """Both ends fail as if the cable were pulled (until ``reappear()``)."""
        for end in (self, self.peer):
            if end is not None:
                end._gone = True
                end._open = False
                with end._in.cond:
                    end._in.cond.notify_all()

    def reappear(self) -> None:
        """The device is back: ``open()`` succeeds again (buffers were lost)."""
        for end in (self, self.peer):
            if end is not None:
                end._gone = False
                end._in.buf.clear()

    def counters(self) -> dict[str, int | float]:
        return self.stats.as_dict()
