"""Sans-IO decoder for base-station event JSON Lines (field-formats.md 1b).

``decode_line(line, lineno)`` takes one line of bytes and returns a
:class:`~edge.records.BaseStationEvent`, a :class:`~edge.records.Malformed`, or
``None`` for an event of an unknown type (counted, ignored). No I/O, no clock.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from edge.records import EVENT_TYPES, BaseStationEvent, Malformed

_STR_FIELDS = ("imei", "msisdn", "cell", "dir", "peer", "call_id", "cause", "target_cell")
KNOWN_FIELDS = frozenset(
    ("ts", "type", "imsi", "duration_s", "auth_ms", "bytes") + _STR_FIELDS
)
_DIRS = frozenset(("mo", "mt"))
_NUM = (int, float)


class EventDecoder:
    """Decodes lines; keeps counters of what it rejected and ignored."""

    def __init__(self, source: str = "events") -> None:
        self.source = source
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

    def decode_line(self, line: bytes | str, lineno: int) -> BaseStationEvent | Malformed | None:
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
        if type(imsi) is not str or len(imsi) != 15 or not imsi.isdigit():
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
        if imei is not None and not (14 <= len(imei) <= 16 and imei.isdigit()):
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
