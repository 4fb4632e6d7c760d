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
        ev = BaseStationEvent(float(ts), etype, imsi)
        get = obj.get
        for name in _STR_FIELDS:
            v = get(name)
            if v is not None:
                if type(v) is not str:
                    return self._bad(lineno, f"{name} is not a string", float(ts))
                setattr(ev, name, v)
        imei = ev.imei
        if imei is not None and not (14 <= len(imei) <= 16 and imei.isdigit()):
            return self._bad(lineno, "imei is not 14-16 digits", float(ts))
        if ev.dir is not None and ev.dir not in _DIRS:
            return self._bad(lineno, "dir is not mo or mt", float(ts))
        for name in ("duration_s", "auth_ms"):
            v = get(name)
            if v is not None:
                if type(v) not in (int, float) or not math.isfinite(v) or v < 0:
                    return self._bad(lineno, f"{name} is not a non-negative number", float(ts))
                setattr(ev, name, float(v))
        b = get("bytes")
        if b is not None:
            if type(b) is not int or b < 0:
                return self._bad(lineno, "bytes is not a non-negative integer", float(ts))
            ev.bytes = b
        self.decoded += 1
        return ev
