"""A real pseudo-terminal pair: a device simulator on the master, the agent's
:class:`~drivers.transport.serialport.SerialTransport` on ``slave_path``.

The pair keeps its own descriptor of the slave open, so the master never sees EIO
while the agent closes and reopens the port (as it does when reconnecting);
``hang_up()`` closes the master, which the agent's next read on the slave sees as a
vanished device.
"""

from __future__ import annotations

import os
import select
import termios
import tty

from drivers.transport.base import TransportCounters
from edge.errors import TransportError


class PtyPair:
    """``pair = PtyPair(); agent = SerialTransport(pair.slave_path)``; the simulator
    reads and writes through ``pair`` itself (the Transport API on the master)."""

    def __init__(self, name: str = "pty") -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave, termios.TCSANOW)  # no echo, no line discipline
        self.slave_path = os.ttyname(self._slave)
        self.name = f"{name}:{self.slave_path}"
        self.stats = TransportCounters()

    def open(self) -> None:
        if self._master < 0:
            raise TransportError("hung up", transport=self.name)
        self.stats.opens += 1

    def read(self, max_bytes: int, timeout: float) -> bytes:
        if self._master < 0:
            raise TransportError("hung up", transport=self.name)
        ready, _, _ = select.select([self._master], [], [], timeout)
        if not ready:
            return b""
        try:
            data = os.read(self._master, max_bytes)
        except OSError as exc:
            raise TransportError(f"read failed: {exc}", transport=self.name) from None
        self.stats.reads += 1
        self.stats.bytes_in += len(data)
        return data

    def write(self, data: bytes) -> None:
        if self._master < 0:
            raise TransportError("hung up", transport=self.name)
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                select.select([], [self._master], [], 1.0)
                continue
            except OSError as exc:
                raise TransportError(f"write failed: {exc}", transport=self.name) from None
            view = view[n:]
        self.stats.writes += 1
        self.stats.bytes_out += len(data)

    def hang_up(self) -> None:
        """Close the master: the device is gone for whoever has the slave open."""
        if self._master >= 0:
            os.close(self._master)
            self._master = -1

    def close(self) -> None:
        self.hang_up()
        if self._slave >= 0:
            os.close(self._slave)
            self._slave = -1

    def counters(self) -> dict[str, int | float]:
        return self.stats.as_dict()
