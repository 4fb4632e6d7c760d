"""Sans-IO decoder for base-station event JSON Lines (field-formats.md 1b).

``decode_line(line, lineno)`` takes one line of bytes and returns a
:class:`~edge.records.BaseStationEvent`, a :class:`~edge.records.Malformed`, or
``None`` for an event of an unknown type (counted, ignored). Lines longer than
``max_line`` bytes are rejected before parsing; identifiers are ASCII digits only. ``decode_block(data,
first_lineno)`` takes a block of whole lines (as read in bulk from a file or a
datagram) and returns the records of all of them, in order, without the ``None``s.
No I/O, no clock.

Speed matters here (replay of millions of events on one core): the common, valid
line takes one fast path, msgspec decoding the line straight into the typed record
(JSON types checked in C, unknown fields refused) followed by a few value checks;
any line that fails one of them is decoded again by the detailed path, which finds
the exact reason and counts it, so both paths give the same records and counters.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import msgspec
import orjson

from edge.records import EVENT_TYPES, BaseStationEvent, Malformed

_STR_FIELDS = ("imei", "msisdn", "cell", "dir", "peer", "call_id", "cause", "target_cell")
KNOWN_FIELDS = frozenset(
    ("ts", "type", "imsi", "duration_s", "auth_ms", "bytes") + _STR_FIELDS
)
_DIRS = frozenset(("mo", "mt"))
_NUM = (int, float)
_STR_OR_NONE = frozenset((str, type(None)))
_INF = math.inf
_FAST = msgspec.json.Decoder(BaseStationEvent).decode
_FAST_ERRORS = (msgspec.ValidationError, msgspec.DecodeError)


def _ascii_digits(s: str) -> bool:
    return s.isascii() and s.isdigit()


class EventDecoder:
    """Decodes lines; keeps counters of what it rejected and ignored."""

    def __init__(self, source: str = "events", *, max_line: int = 65_536) -> None:
        self.source = source
        self.max_line = max_line
        self.decoded = 0
        self.malformed = 0
        self.unknown_type = 0
        self.unknown_fields = 0
        self.blank = 0

    def counters(self) -> dict[str, int]:
        return {"decoded": self.decoded, "malformed": self.malformed,
                "unknown_type": self.unknown_type, "unknown_fields": self.unknown_fields,
                "blank": self.blank}

    def _bad(self, lineno: int, reason: str, ts: float | None = None) -> Malformed:
        self.malformed += 1
        return Malformed(self.source, f"line {lineno}", reason, ts)

    def decode_block(self, data: bytes, first_lineno: int = 1
                     ) -> list[BaseStationEvent | Malformed]:
        """Decode a block of lines (``data`` split at newlines; a missing final newline
        is fine). The first line is number ``first_lineno``. Returns the records of
        the block in order; blank lines and unknown types are only counted."""
        return list(self.iter_block(data, first_lineno))

    def iter_block(self, data: bytes, first_lineno: int = 1
                   ) -> Iterator[BaseStationEvent | Malformed]:
        """Like :meth:`decode_block`, one record at a time. Lazily on purpose: a
        record decoded just before the detector folds it is still in the CPU cache,
        and records that die young cost the garbage collector nothing (a 5 M-event
        replay decoding whole blocks first ran 14 % slower)."""
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()  # the block ended with a newline: no line after it
        decode = self.decode_line
        for n, ln in enumerate(lines, first_lineno):
            rec = decode(ln, n)
            if rec is not None:
                yield rec

    def decode_line(self, line: bytes | str, lineno: int) -> BaseStationEvent | Malformed | None:
        """Decode one line (with or without its newline)."""
        if not line or line.isspace():
            self.blank += 1
            return None
        if len(line) > self.max_line:  # before parsing: a 150 MB line cost 30 s, 688 MB
            return self._bad(lineno, f"line longer than {self.max_line} bytes")
        try:
            ev = _FAST(line)
        except _FAST_ERRORS:
            return self._decode_checked(line, lineno)
        # Fast path: msgspec checked every JSON type (numbers, strings or null, no
        # unknown field); the value checks of the detailed path follow, in as few
        # comparisons as possible. Anything unusual goes to the detailed path.
        ts = ev.ts
        imsi = ev.imsi
        imei = ev.imei
        dir_ = ev.dir
        d = ev.duration_s
        a = ev.auth_ms
        b = ev.bytes
        if (0 <= ts < _INF and len(imsi) == 15 and imsi.isdigit() and imsi.isascii()
                and ev.type in EVENT_TYPES
                and (imei is None or (14 <= len(imei) <= 16 and imei.isdigit()
                                      and imei.isascii()))
                and (dir_ is None or dir_ in _DIRS)
                and (d is None or 0 <= d < _INF) and (a is None or 0 <= a < _INF)
                and (b is None or b >= 0)):
            self.decoded += 1
            return ev
        return self._decode_checked(line, lineno)

    def _decode_checked(self, line: bytes | str, lineno: int
                        ) -> BaseStationEvent | Malformed | None:
        """The detailed path: every check in turn, with the reason of the first that
        fails (also decodes valid lines, identically to the fast path)."""
        if not line or line.isspace():
            self.blank += 1
            return None
        try:
            obj: Any = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return self._bad(lineno, f"not JSON ({str(exc).split(':')[0]})")
        if type(obj) is not dict:
            return self._bad(lineno, "not a JSON object")
        ts = obj.get("ts")
        etype = obj.get("type")
        imsi = obj.get("imsi")
        if ts is None or etype is None or imsi is None:
            missing = [k for k in ("ts", "type", "imsi") if obj.get(k) is None]
            return self._bad(lineno, f"missing {', '.join(missing)}")
        tts = type(ts)
        if (tts is not float and tts is not int) or not math.isfinite(ts) or ts < 0:
            return self._bad(lineno, "ts is not a finite epoch number")
        # str.isdigit() alone takes Arabic-Indic, fullwidth, superscript digits...
        if type(imsi) is not str or len(imsi) != 15 or not _ascii_digits(imsi):
            return self._bad(lineno, "imsi is not 15 digits", float(ts))
        if type(etype) is not str:
            return self._bad(lineno, "type is not a string", float(ts))
        if etype not in EVENT_TYPES:
            self.unknown_type += 1
            return None
        if len(obj) > 3 and not KNOWN_FIELDS.issuperset(obj):
            self.unknown_fields += 1
        get = obj.get
        imei = get("imei")
        msisdn = get("msisdn")
        cell = get("cell")
        dir_ = get("dir")
        peer = get("peer")
        call_id = get("call_id")
        cause = get("cause")
        target_cell = get("target_cell")
        # One pass over the optional strings (the hot path: most are present or None).
        for name, v in zip(_STR_FIELDS, (imei, msisdn, cell, dir_, peer, call_id, cause,
                                         target_cell), strict=True):
            if v is not None and type(v) is not str:
                return self._bad(lineno, f"{name} is not a string", float(ts))
        if imei is not None and not (14 <= len(imei) <= 16 and _ascii_digits(imei)):
            return self._bad(lineno, "imei is not 14-16 digits", float(ts))
        if dir_ is not None and dir_ not in _DIRS:
            return self._bad(lineno, "dir is not mo or mt", float(ts))
        duration_s = get("duration_s")
        if duration_s is not None:
            if type(duration_s) not in _NUM or not math.isfinite(duration_s) or duration_s < 0:
                return self._bad(lineno, "duration_s is not a non-negative number", float(ts))
            duration_s = float(duration_s)
        auth_ms = get("auth_ms")
        if auth_ms is not None:
            if type(auth_ms) not in _NUM or not math.isfinite(auth_ms) or auth_ms < 0:
                return self._bad(lineno, "auth_ms is not a non-negative number", float(ts))
            auth_ms = float(auth_ms)
        b = get("bytes")
        if b is not None and (type(b) is not int or b < 0):
            return self._bad(lineno, "bytes is not a non-negative integer", float(ts))
        ev = BaseStationEvent(float(ts), etype, imsi, imei, msisdn, cell, dir_, peer, call_id,
                              duration_s, cause, auth_ms, b, target_cell)
        self.decoded += 1
        return ev
