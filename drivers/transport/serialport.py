"""A serial port through pyserial: a device path, a pyserial URL, or a USB identity.

``port`` may be:
- a device path: ``/dev/ttyUSB0``, ``/dev/serial/by-id/...``, a pty slave;
- a pyserial URL: ``socket://host:port`` (a serial-over-TCP server), ``rfc2217://...``,
  ``loop://`` (pyserial's own loopback);
- ``usb:VID:PID[:SERIAL]`` (hex ids, e.g. ``usb:0403:6001:A50285BI``): the adapter is
  looked up with ``serial.tools.list_ports`` at every open, so it is found again after
  re-plugging under another ``ttyUSBn``.

Device paths are opened exclusively (pyserial: ``flock``) so a second agent or a stray
terminal cannot interleave reads. Every pyserial / OS failure becomes
:class:`~edge.errors.TransportError`.
"""

from __future__ import annotations

from typing import Any

import serial
import serial.tools.list_ports

from drivers.transport.base import TransportCounters
from edge.errors import TransportError


def find_usb_port(spec: str) -> str:
    """The device path of ``usb:VID:PID[:SERIAL]``. Raises TransportError when no
    adapter matches, or several do and no serial number tells them apart."""
    parts = spec.split(":")
    if len(parts) not in (3, 4) or parts[0] != "usb":
        raise TransportError(f"expected usb:VID:PID[:SERIAL], got {spec!r}", transport=spec)
    try:
        vid, pid = int(parts[1], 16), int(parts[2], 16)
    except ValueError:
        raise TransportError(f"VID and PID are hex numbers: {spec!r}", transport=spec) from None
    want_serial = parts[3] if len(parts) == 4 else None
    found = [p for p in serial.tools.list_ports.comports()
             if p.vid == vid and p.pid == pid
             and (want_serial is None or p.serial_number == want_serial)]
    if not found:
        raise TransportError("no USB serial adapter with this identity is plugged in",
                             transport=spec)
    if len(found) > 1:
        serials = ", ".join(str(p.serial_number) for p in found)
        raise TransportError(f"{len(found)} adapters match ({serials}): add :SERIAL",
                             transport=spec)
    return str(found[0].device)


class SerialTransport:
    def __init__(self, port: str, *, baudrate: int = 9600, bytesize: int = 8,
                 parity: str = "N", stopbits: float = 1, rtscts: bool = False,
                 xonxoff: bool = False, exclusive: bool = True,
                 name: str | None = None) -> None:
        self.port = port
        self.name = name or f"serial:{port}"
        self._kw: dict[str, Any] = {"baudrate": baudrate, "bytesize": bytesize,
                                    "parity": parity, "stopbits": stopbits,
                                    "rtscts": rtscts, "xonxoff": xonxoff}
        self.exclusive = exclusive
        self._ser: Any = None
        self._timeout: float | None = None
        self.device: str | None = None  # the path actually opened
        self.stats = TransportCounters()

    def open(self) -> None:
        self.close()
        path = find_usb_port(self.port) if self.port.startswith("usb:") else self.port
        try:
            ser = serial.serial_for_url(path, do_not_open=True, timeout=0, **self._kw)
            if "://" not in path:
                ser.exclusive = self.exclusive
            ser.open()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(f"cannot open {path}: {exc}", transport=self.name) from None
        self._ser, self._timeout, self.device = ser, 0.0, path
        self.stats.opens += 1

    def _port(self) -> Any:
        if self._ser is None:
            raise TransportError("not open", transport=self.name)
        return self._ser

    def read(self, max_bytes: int, timeout: float) -> bytes:
        ser = self._port()
        try:
            if timeout != self._timeout:  # a timeout change reconfigures the port
                ser.timeout = self._timeout = timeout
            data = ser.read(1)
            if data and max_bytes > 1:
                n = ser.in_waiting
                if n:
                    data += ser.read(min(n, max_bytes - 1))
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"read failed: {exc}", transport=self.name) from None
        if data:
            self.stats.reads += 1
            self.stats.bytes_in += len(data)
        return bytes(data)

    def write(self, data: bytes) -> None:
        ser = self._port()
        try:
            ser.write(data)
        except (serial.SerialException, OSError) as exc:
            raise TransportError(f"write failed: {exc}", transport=self.name) from None
        self.stats.writes += 1
        self.stats.bytes_out += len(data)

    def close(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except (serial.SerialException, OSError):
                pass  # the device is already gone; nothing left to release

    def counters(self) -> dict[str, int | float]:
        return self.stats.as_dict()
