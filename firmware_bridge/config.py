"""The ``[bridge]`` config table: the links to base-station and station-controller
firmware.

Ports take what :func:`drivers.transport.factory.open_transport` takes: a device path
(``/dev/ttyUSB0``, a pty), a pyserial URL (``socket://host:port``, ``rfc2217://``),
``usb:VID:PID[:SERIAL]`` or ``tcp://host:port``. An empty port: no such device.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from edge.config import Range


@dataclass
class BridgeSection:
    base_station_port: str = ""
    """Link to the base station's monitoring firmware (subscriber events, 1b)."""
    station_port: str = ""
    """Link to the depot station controller (photo-eyes, diverter)."""
    baudrate: Annotated[int, Range(1200, 4_000_000)] = 115_200
    """Baud rate of serial ports (8N1)."""
    key_file: Path | None = None
    """File holding the links' shared secret as hex (at least 32 hex digits, i.e. 16
    bytes; 64 recommended). Frames are then signed (truncated HMAC-SHA256) both ways."""
    allow_unsigned: bool = False
    """Without key_file the links are refused unless this is true (lab use only)."""
    require_auth: bool = True
    """With a key: refuse unsigned frames (false: accept them, counted, during a
    firmware roll-out)."""
    auth_window_s: Annotated[float, Range(1.0, 3600.0)] = 60.0
    """A signed frame older or newer than the agent's clock by more than this is refused."""
    rto_s: Annotated[float, Range(0.005, 10.0)] = 0.05
    """First retransmission timeout of an unacknowledged message (doubles each time)."""
    rto_max_s: Annotated[float, Range(0.01, 60.0)] = 1.0
    """Longest retransmission timeout."""
    max_retries: Annotated[int, Range(0, 100)] = 8
    """Retransmissions before a message is given up."""
    heartbeat_s: Annotated[float, Range(0.1, 60.0)] = 1.0
    """Heartbeat interval while the link is up."""
    dead_s: Annotated[float, Range(0.5, 600.0)] = 3.0
    """No frame for this long: the link is down and renegotiated."""
    result_grace_s: Annotated[float, Range(0.0, 60.0)] = 2.0
    """A divert with no result this long after its deadline is reported failed."""

    def link_options(self) -> dict[str, float | int]:
        return {"rto_s": self.rto_s, "rto_max_s": self.rto_max_s,
                "max_retries": self.max_retries, "heartbeat_s": self.heartbeat_s,
                "dead_s": self.dead_s}


def read_key(path: Path) -> bytes:
    """The secret in ``path`` (hex, whitespace ignored); ValueError if unusable."""
    text = "".join(path.read_text(encoding="ascii").split())
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{path}: not hex") from None
    if len(key) < 16:
        raise ValueError(f"{path}: secret of {len(key)} bytes, at least 16 needed")
    return key
