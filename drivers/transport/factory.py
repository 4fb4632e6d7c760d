"""One config string -> a transport.

``tcp://host:port``, ``udp://host:port`` (send there, read replies),
``udp-bind://host:port`` (receive datagrams there), ``file://path`` (replay a
recorded stream; ``file+follow://path`` to follow it), anything else is a serial
port for pyserial: a device path, ``usb:VID:PID[:SERIAL]``, or a pyserial URL
(``socket://``, ``rfc2217://``, ``loop://``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drivers.transport.file import FileTransport
from drivers.transport.net import TcpTransport, UdpTransport, parse_hostport
from drivers.transport.serialport import SerialTransport


def open_transport(spec: str, **serial_options: Any) -> Any:
    """The transport ``spec`` names (not yet opened). ``serial_options`` (baudrate,
    parity, ...) apply to serial ports only."""
    scheme, sep, rest = spec.partition("://")
    if sep and scheme == "tcp":
        host, port = parse_hostport(rest)
        return TcpTransport(host, port)
    if sep and scheme == "udp":
        return UdpTransport(remote=parse_hostport(rest))
    if sep and scheme == "udp-bind":
        return UdpTransport(bind=parse_hostport(rest, default_host="0.0.0.0"))
    if sep and scheme in ("file", "file+follow"):
        return FileTransport(Path(rest), follow=scheme == "file+follow")
    return SerialTransport(spec, **serial_options)
