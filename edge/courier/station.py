"""The station's devices: which protocol core each one gets, live and in replay.

One place builds the cores from the ``[depot]`` options (live) or from a
recording's manifest (replay), so both run exactly the same protocol code.
"""

from __future__ import annotations

from typing import Any

from drivers.serial.barcode import BarcodeCore
from drivers.serial.cubiscan import CubiscanCore
from drivers.serial.lines import parse_terminator
from drivers.serial.mtsics import MtSicsCore
from drivers.serial.rfid import RfidCore

DEVICES = ("scanner", "scale", "dims", "rfid")


def device_options(sec: Any) -> dict[str, dict[str, Any]]:
    """The manifest entry of every device the ``[depot]`` section configures a port for."""
    opts: dict[str, dict[str, Any]] = {}
    if sec.scanner_port:
        opts["scanner"] = {"terminator": sec.scanner_terminator, "aim": sec.scanner_aim,
                           "line_gap_s": sec.scanner_line_gap_s}
    if sec.scale_port:
        opts["scale"] = {"mode": sec.scale_mode}
    if sec.dims_port:
        opts["dims"] = {}
    if sec.rfid_port:
        opts["rfid"] = {}
    return opts


def make_core(device: str, lane: str, opts: dict[str, Any]) -> Any:
    """The protocol core of ``device`` with its options (ValueError for unknown ones)."""
    src = f"depot.{device}"
    if device == "scanner":
        return BarcodeCore(lane, terminator=parse_terminator(opts.get("terminator", "crlf")),
                           aim=opts.get("aim", "auto"),
                           line_gap_s=float(opts.get("line_gap_s", 0.03)), source=src)
    if device == "scale":
        return MtSicsCore(lane, source=src)
    if device == "dims":
        return CubiscanCore(lane, source=src)
    if device == "rfid":
        return RfidCore(lane, source=src)
    raise ValueError(f"unknown depot device {device!r}")


def poll_bytes(device: str, opts: dict[str, Any]) -> bytes | None:
    """What the host sends the device every poll interval (None: it just listens)."""
    if device == "scale":
        mode = opts.get("mode", "poll_si")
        return None if mode == "stream" else MtSicsCore.request("SI" if mode == "poll_si" else "S")
    if device == "dims":
        return CubiscanCore.request()
    if device == "rfid":
        return RfidCore.single_poll()
    return None
