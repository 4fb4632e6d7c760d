"""Mettler Toledo MT-SICS scale protocol core (field-formats 2b).

In: bytes from the scale and the time they arrived. Out: ``WeightReading`` records
converted to kilograms, and ``Malformed`` for noise and lines that are no MT-SICS
response. Commands out: ``request()`` gives the bytes of ``SI`` (weight now) or
``S`` (next stable weight) for the driver to write.

Responses: ``S S <value> <unit>`` stable, ``S D <value> <unit>`` dynamic, ``S I``
not ready, ``S +`` / ``S -`` over / under range, ``ES`` / ``ET`` / ``EL`` syntax,
transmission and logical errors. The value field is 10 characters right-aligned;
the parser reads it by tokens so a scale that pads differently is still read, but
the number must be a plain decimal and the unit one it knows.
"""

from __future__ import annotations

import re

from drivers.serial.lines import Dropped, LineSplitter
from edge.courier.records import WeightReading
from edge.records import Malformed

UNIT_TO_KG = {"kg": 1.0, "g": 0.001, "mg": 1e-6, "t": 1000.0, "lb": 0.45359237,
              "oz": 0.028349523125}
_STATUS = {"S": "stable", "D": "dynamic"}
_NO_VALUE = {"I": "not_ready", "+": "over", "-": "under"}
_ERRORS = {"ES": "syntax error", "ET": "transmission error", "EL": "logical error"}
_DECIMAL_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
COMMANDS = {"SI": b"SI\r\n", "S": b"S\r\n"}


class MtSicsCore:
    """Sans-IO: ``feed(data, ts) -> [WeightReading | Malformed]``."""

    def __init__(self, lane: str, *, source: str = "scale", max_len: int = 64) -> None:
        self.lane = lane
        self.source = source
        self._lines = LineSplitter(b"\r\n", max_len)
        self.counts: dict[str, int] = {}
        self.malformed = 0

    @staticmethod
    def request(command: str = "SI") -> bytes:
        """Bytes of a weight request: ``"SI"`` (immediate) or ``"S"`` (stable)."""
        return COMMANDS[command]

    def feed(self, data: bytes, ts: float) -> list[WeightReading | Malformed]:
        out: list[WeightReading | Malformed] = []
        for item in self._lines.feed(data):
            if isinstance(item, Dropped):
                out.append(self._bad(item.offset, f"{item.reason} ({item.length} bytes)", ts))
                continue
            rec = self._decode(item, ts)
            if rec is not None:
                out.append(rec)
        return out

    def _bad(self, offset: int, reason: str, ts: float) -> Malformed:
        self.malformed += 1
        return Malformed(self.source, f"byte {offset}", reason, ts)

    def _decode(self, line: str, ts: float) -> WeightReading | Malformed | None:
        tokens = line.split()
        if not tokens:
            return None
        head = tokens[0]
        if head in _ERRORS and len(tokens) == 1:
            return self._count(WeightReading(ts, self.lane, "error", detail=head))
        if head != "S" or len(tokens) < 2:
            return self._bad(self._lines.offset, f"not an MT-SICS weight response: "
                             f"{line[:24]!r}", ts)
        status = tokens[1]
        if status in _NO_VALUE and len(tokens) == 2:
            return self._count(WeightReading(ts, self.lane, _NO_VALUE[status]))
        if status not in _STATUS or len(tokens) != 4:
            return self._bad(self._lines.offset, f"bad S response: {line[:24]!r}", ts)
        text, unit = tokens[2], tokens[3]
        factor = UNIT_TO_KG.get(unit)
        if factor is None or not _plain_decimal(text):
            return self._bad(self._lines.offset, f"bad value or unit: {line[:24]!r}", ts)
        value = float(text)
        decimals = len(text.partition(".")[2])
        return self._count(WeightReading(ts, self.lane, _STATUS[status],
                                         kg=round(value * factor, decimals + 6),
                                         raw_value=value, unit=unit, decimals=decimals))

    def _count(self, rec: WeightReading) -> WeightReading:
        self.counts[rec.status] = self.counts.get(rec.status, 0) + 1
        return rec

    def counters(self) -> dict[str, int | float]:
        return {**{f"weight.{k}": v for k, v in sorted(self.counts.items())},
                "malformed": self.malformed}


def _plain_decimal(text: str) -> bool:
    """``-12.345`` yes; ``1e3``, ``inf``, ``nan``, ``0x1`` no."""
    return _DECIMAL_RE.fullmatch(text) is not None
