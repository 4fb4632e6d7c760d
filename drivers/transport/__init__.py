"""Byte transports under the device drivers: serial ports, TCP, UDP, files, memory.

Layers, as pymodbus has them: a *transport* moves bytes (this package), a *framer*
cuts them into frames (:mod:`drivers.framing`, sans-IO), a *decoder* turns a frame
into typed records (sans-IO, per device). :func:`open_transport` builds a transport
from one config string; :class:`ReconnectingReader` keeps one open with backoff.
"""

from drivers.transport.base import Transport, TransportCounters
from drivers.transport.factory import open_transport
from drivers.transport.file import FileTransport
from drivers.transport.memory import MemoryTransport
from drivers.transport.net import TcpTransport, UdpTransport
from drivers.transport.pty import PtyPair
from drivers.transport.reconnect import ReconnectingReader
from drivers.transport.serialport import SerialTransport, find_usb_port

__all__ = ["FileTransport", "MemoryTransport", "PtyPair", "ReconnectingReader",
           "SerialTransport", "TcpTransport", "Transport", "TransportCounters", "UdpTransport",
           "find_usb_port", "open_transport"]
