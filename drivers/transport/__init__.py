"""Byte transports under the device drivers: serial ports, TCP, UDP, files, memory.

Layers, as pymodbus has them: a *transport* moves bytes (this package), a *framer*
cuts them into frames (:mod:`drivers.framing`, sans-IO), a *decoder* turns a frame
into typed records (sans-IO, per device). :func:`open_transport` builds a transport
from one config string; :class:`ReconnectingReader` keeps one open with backoff.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drivers.transport.base import Transport, TransportCounters
    from drivers.transport.factory import open_transport
    from drivers.transport.file import FileTransport
    from drivers.transport.memory import MemoryTransport
    from drivers.transport.net import TcpTransport, UdpTransport
    from drivers.transport.pty import PtyPair
    from drivers.transport.reconnect import ReconnectingReader
    from drivers.transport.serialport import SerialTransport, find_usb_port

# Imported on first use (PEP 562): a UDP event listener must not pay for pyserial.
_WHERE = {
    "Transport": "base", "TransportCounters": "base", "open_transport": "factory",
    "FileTransport": "file", "MemoryTransport": "memory", "TcpTransport": "net",
    "UdpTransport": "net", "PtyPair": "pty", "ReconnectingReader": "reconnect",
    "SerialTransport": "serialport", "find_usb_port": "serialport",
}


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'drivers.transport' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"drivers.transport.{mod}"), name)


__all__ = ["FileTransport", "MemoryTransport", "PtyPair", "ReconnectingReader",
           "SerialTransport", "TcpTransport", "Transport", "TransportCounters", "UdpTransport",
           "find_usb_port", "open_transport"]
