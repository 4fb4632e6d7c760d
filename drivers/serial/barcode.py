"""Barcode scanner protocol core (field-formats 2a): ASCII decodes, one a line.

In: bytes from the scanner's serial line and the time they arrived. Out:
``ScanRead`` records (a decode, a no-read message, or a decode that does not look
like a waybill number, ``valid=False``) and ``Malformed`` records for noise. An AIM
symbology identifier (``]`` + symbology letter + modifier digit, e.g. ``]C1``) is
split off when present; with ``aim="require"`` a line without one is malformed,
with ``aim="none"`` a leading ``]`` is kept as part of the code. A line whose
bytes are more than ``line_gap_s`` apart is not one decode (a scanner sends a
decode in one burst): the stale start -- usually the tail of a noise burst -- is
dropped, so the decode after it is still read. Double reads are
passed on as two reads: whether they belong to one parcel is the assembly's call.
"""

from __future__ import annotations

import re

from drivers.serial.lines import Dropped, LineSplitter
from edge.courier.records import ScanRead
from edge.records import Malformed

WAYBILL_RE = re.compile(r"[A-Za-z0-9]{10,15}")
_AIM_RE = re.compile(r"\][A-Za-z][0-9A-Za-z]")
DEFAULT_NOREAD = ("NoRead", "NOREAD", "NR", "ERROR")
AIM_MODES = ("auto", "require", "none")


class BarcodeCore:
    """Sans-IO: ``feed(data, ts) -> [ScanRead | Malformed]``."""

    def __init__(self, lane: str, *, terminator: bytes = b"\r\n", aim: str = "auto",
                 noread: tuple[str, ...] = DEFAULT_NOREAD, max_len: int = 64,
                 line_gap_s: float = 0.03, source: str = "barcode") -> None:
        if aim not in AIM_MODES:
            raise ValueError(f"aim must be one of {AIM_MODES}, not {aim!r}")
        self.lane = lane
        self.aim = aim
        self.noread = frozenset(noread)
        self.source = source
        self._lines = LineSplitter(terminator, max_len)
        self.line_gap_s = line_gap_s
        self._last_ts = float("-inf")
        self.reads = 0
        self.noreads = 0
        self.invalid = 0
        self.malformed = 0

    def feed(self, data: bytes, ts: float) -> list[ScanRead | Malformed]:
        out: list[ScanRead | Malformed] = []
        if ts - self._last_ts > self.line_gap_s:
            stale = self._lines.discard_pending()
            if stale is not None:
                self.malformed += 1
                out.append(Malformed(self.source, f"byte {stale.offset}",
                                     f"{stale.reason} ({stale.length} bytes)", ts))
        self._last_ts = ts
        for item in self._lines.feed(data):
            if isinstance(item, Dropped):
                self.malformed += 1
                out.append(Malformed(self.source, f"byte {item.offset}",
                                     f"{item.reason} ({item.length} bytes)", ts))
                continue
            rec = self._decode(item.strip(), ts)
            if rec is not None:
                out.append(rec)
        return out

    def _decode(self, line: str, ts: float) -> ScanRead | Malformed | None:
        if not line:
            return None
        prefix = ""
        if self.aim != "none" and _AIM_RE.match(line):
            prefix, line = line[:3], line[3:]
        elif self.aim == "require" and line not in self.noread:
            self.malformed += 1
            return Malformed(self.source, f"byte {self._lines.offset}",
                             f"no AIM prefix: {line[:20]!r}", ts)
        if line in self.noread:
            self.noreads += 1
            return ScanRead(ts, self.lane, "", prefix, noread=True, valid=False)
        valid = WAYBILL_RE.fullmatch(line) is not None
        if valid:
            self.reads += 1
        else:
            self.invalid += 1
        return ScanRead(ts, self.lane, line, prefix, valid=valid)

    def counters(self) -> dict[str, int | float]:
        return {"reads": self.reads, "noreads": self.noreads, "invalid": self.invalid,
                "malformed": self.malformed}
