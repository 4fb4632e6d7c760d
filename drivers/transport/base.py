"""The Transport protocol: open, read with a timeout, write, close.

``read(max_bytes, timeout)`` returns what arrived (at most ``max_bytes``), waiting at
most ``timeout`` seconds for the first byte, and ``b""`` when nothing came. A device
that vanished (unplugged adapter, closed socket, EIO on a tty) raises
:class:`~edge.errors.TransportError`; callers close, back off and open again
(:class:`drivers.transport.reconnect.ReconnectingReader`). Reads and writes are
blocking and belong on the driver's own thread, never on the pipeline thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@runtime_checkable
class Transport(Protocol):
    name: str

    def open(self) -> None: ...

    def read(self, max_bytes: int, timeout: float) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class TransportCounters:
    """What every transport counts (``counters()`` gives them as a dict)."""

    opens: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    reads: int = 0
    writes: int = 0

    def as_dict(self) -> dict[str, int | float]:
        return {"opens": self.opens, "bytes_in": self.bytes_in, "bytes_out": self.bytes_out,
                "reads": self.reads, "writes": self.writes}
