"""Cubiscan-style dimensioner protocol core (field-formats 2c).

In: bytes from the dimensioner and the time they arrived. Out: ``DimsReading``
records in cm and kg (``ok=False`` for ``MN`` and for replies with a field under
range ``_``, unstable ``-`` or over range ``~``), and ``Malformed`` for noise and
frames that do not parse. ``request()`` gives the measure command
``<STX>M<ETX><CR><LF>`` for the driver to write.

Framing: ``<STX> ... <ETX>`` then CR LF. Bytes outside a frame other than the CR LF
are noise; an STX inside a frame means the frame before was cut off, so the core
restarts at that STX (one frame lost, never more). A frame longer than ``max_len``
is dropped.

Reply payload: ``C,L 36.0,W 20.5,H 12.0cm,K 1.545,D 1.333kg,F0166,D`` -- fields by
comma; ``L``/``W``/``H`` with the length unit after ``H`` (``cm`` or ``in``), ``K``
actual weight, ``D`` dimensional weight followed by the weight unit (``kg``/``lb``),
``F`` the dimensional factor; bare letters (the leading ``C``, trailing ``D``) are
mode flags and ignored.
"""

from __future__ import annotations

import re

from edge.courier.records import DimsReading
from edge.records import Malformed

STX, ETX = 0x02, 0x03
MEASURE = b"\x02M\x03\r\n"
IN_TO_CM = 2.54
LB_TO_KG = 0.45359237
_FIELD_RE = re.compile(r"([LWHKD]) ?([0-9.]+|[_.]+|[-.]+|[~.]+)([a-z]*)")
_RANGE = {"_": "under", "-": "unstable", "~": "over"}


class CubiscanCore:
    """Sans-IO: ``feed(data, ts) -> [DimsReading | Malformed]``."""

    def __init__(self, lane: str, *, source: str = "dims", max_len: int = 256) -> None:
        self.lane = lane
        self.source = source
        self.max_len = max_len
        self._buf = bytearray()
        self._start = 0  # stream offset of _buf[0]
        self.replies = 0
        self.failures = 0  # MN and replies with flagged fields
        self.malformed = 0

    @staticmethod
    def request() -> bytes:
        """The measure command."""
        return MEASURE

    def feed(self, data: bytes, ts: float) -> list[DimsReading | Malformed]:
        out: list[DimsReading | Malformed] = []
        buf = self._buf
        buf += data
        while buf:
            i = 0
            while i < len(buf) and buf[i] in (0x0D, 0x0A):  # the CR LF after ETX
                i += 1
            stx = buf.find(STX, i)
            if stx < 0:
                if i < len(buf):
                    out.append(self._bad(self._start + i, f"noise ({len(buf) - i} bytes)", ts))
                self._consume(len(buf))
                break
            if stx > i:
                out.append(self._bad(self._start + i, f"noise ({stx - i} bytes)", ts))
            self._consume(stx)
            etx = buf.find(ETX, 1)
            nxt = buf.find(STX, 1)
            if nxt > 0 and (etx < 0 or nxt < etx):
                out.append(self._bad(self._start, "frame cut off by the next STX", ts))
                self._consume(nxt)
                continue
            if etx < 0:
                if len(buf) > self.max_len:
                    out.append(self._bad(self._start, "frame too long", ts))
                    self._consume(len(buf))
                break
            body = bytes(buf[1:etx])
            offset = self._start
            self._consume(etx + 1)
            out.append(self._decode(body, offset, ts))
        return out

    def _consume(self, n: int) -> None:
        del self._buf[:n]
        self._start += n

    def _bad(self, offset: int, reason: str, ts: float) -> Malformed:
        self.malformed += 1
        return Malformed(self.source, f"byte {offset}", reason, ts)

    def _decode(self, body: bytes, offset: int, ts: float) -> DimsReading | Malformed:
        try:
            text = body.decode("ascii")
        except UnicodeDecodeError:
            return self._bad(offset, "non-ASCII bytes in frame", ts)
        if text == "MN":
            self.failures += 1
            return DimsReading(ts, self.lane, ok=False, flags=("MN",))
        if not text.startswith("MA"):
            return self._bad(offset, f"unknown reply {text[:12]!r}", ts)
        values: dict[str, float | None] = {}
        flags: list[str] = []
        length_unit = weight_unit = ""
        for field in text[2:].split(","):
            field = field.strip()
            if len(field) <= 1 or field[0] == "F":
                continue  # mode letters and the dimensional factor
            m = _FIELD_RE.fullmatch(field)
            if m is None:
                return self._bad(offset, f"bad field {field[:16]!r}", ts)
            key, value, unit = m.groups()
            if key in values:
                return self._bad(offset, f"field {key} twice", ts)
            if unit:
                if key == "H" and unit in ("cm", "in"):
                    length_unit = unit
                elif key == "D" and unit in ("kg", "lb"):
                    weight_unit = unit
                else:
                    return self._bad(offset, f"unit {unit!r} after {key}", ts)
            marks = set(value) - {"."}
            if len(marks) == 1 and next(iter(marks)) in _RANGE:
                flags.append(f"{key}:{_RANGE[next(iter(marks))]}")
                values[key] = None
            else:
                try:
                    values[key] = float(value)
                except ValueError:
                    return self._bad(offset, f"bad number in {field[:16]!r}", ts)
        if not {"L", "W", "H"} <= values.keys() or not length_unit:
            return self._bad(offset, "L, W and H with a unit after H are required", ts)
        weight_unit = weight_unit or ("lb" if length_unit == "in" else "kg")
        lf = IN_TO_CM if length_unit == "in" else 1.0
        wf = LB_TO_KG if weight_unit == "lb" else 1.0

        def conv(key: str, factor: float) -> float | None:
            v = values.get(key)
            return None if v is None else round(v * factor, 6)

        ok = not flags
        self.replies += 1
        if not ok:
            self.failures += 1
        return DimsReading(ts, self.lane, ok=ok, length_cm=conv("L", lf),
                           width_cm=conv("W", lf), height_cm=conv("H", lf),
                           weight_kg=conv("K", wf), dim_weight_kg=conv("D", wf),
                           unit=length_unit, weight_unit=weight_unit, flags=tuple(flags))

    def counters(self) -> dict[str, int | float]:
        return {"replies": self.replies, "failures": self.failures,
                "malformed": self.malformed}
