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
(JSON types, lengths and number ranges checked in C, unknown fields refused) followed
by a few value checks msgspec cannot make; any line that fails one of them is decoded
again by the detailed path, which finds the exact reason and counts it, so both paths
give the same records and counters. :meth:`EventDecoder.iter_block` goes further:
it decodes :data:`CHUNK_LINES` lines at a time as one JSON array (one C call) and
checks the chunk's values column by column; a chunk with anything unusual in it (a
blank line, an unknown type, bad JSON) is decoded line by line instead.
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
_FAST_LIST = msgspec.json.Decoder(list[BaseStationEvent]).decode
_FAST_ERRORS = (msgspec.ValidationError, msgspec.DecodeError)
CHUNK_LINES = 256  # lines decoded in one msgspec call when a whole block cannot be


def _ascii_digits(s: str) -> bool:
    return s.isascii() and s.isdigit()


def _digits_ok(evs: list[BaseStationEvent]) -> bool:
    """The fast path's value check msgspec cannot make, over a whole block of
    decoded events at once: IMSIs and IMEIs of ASCII digits only (msgspec checked
    their lengths, types and directions)."""
    imsis = "".join([e.imsi for e in evs])
    if not (imsis.isascii() and imsis.encode().isdigit()):
        return False
    imeis = "".join([i for e in evs if (i := e.imei) is not None])
    return not imeis or (imeis.isascii() and imeis.encode().isdigit())


def _lines_within(data: bytes, max_line: int) -> bool:
    """Whether no line of ``data`` is longer than ``max_line`` bytes. A longer line
    covers a whole aligned window of ``(max_line + 1) // 2`` bytes, so it is enough
    that every such window holds a newline (a few ``find`` calls a block)."""
    w = max(1, (max_line + 1) // 2)
    find = data.find
    for k in range(0, len(data), w):
        if find(b"\n", k, k + w) < 0:
            if k + w >= len(data):  # a last, partial window: measure the last line
                return len(data) - data.rfind(b"\n") - 1 <= max_line
            return max(map(len, data.split(b"\n"))) <= max_line
    return True


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
        # The records iter_block handed out last: those not yet taken are counted in
        # ``decoded`` already, and subtracted again by counters() (0 once exhausted).
        self._taking: Iterator[BaseStationEvent] | None = None

    def counters(self) -> dict[str, int]:
        decoded = self.decoded
        if self._taking is not None:
            decoded -= self._taking.__length_hint__()  # type: ignore[attr-defined]
        return {"decoded": decoded, "malformed": self.malformed,
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
        """Like :meth:`decode_block`, one record at a time. The whole block is first
        decoded at once, as one JSON array; if anything in it is unusual, chunks of
        :data:`CHUNK_LINES` lines, and line by line in a chunk that still fails. The
        ``decoded`` counter moves one record at a time as they are taken (see
        :meth:`counters`), so a status report in the middle of a block counts what the
        pipeline has seen. (The common case returns the list's own iterator: no
        generator frame between the records and the caller.)"""
        blk = self.block(data, first_lineno)
        if isinstance(blk, list):
            return self.take(blk)
        return blk

    def block(self, data: bytes, first_lineno: int = 1
              ) -> list[BaseStationEvent] | Iterator[BaseStationEvent | Malformed]:
        """Like :meth:`iter_block`, but a block the fast path decoded whole is returned
        as the list itself, not yet counted: hand it out with :meth:`take` (a
        consumer can look at the whole block first, as the time guard does)."""
        evs = self._fast_block(data[:-1] if data.endswith(b"\n") else data)
        if evs is not None:
            return evs
        return self._iter_slow(data, first_lineno)

    def _iter_slow(self, data: bytes, first_lineno: int
                   ) -> Iterator[BaseStationEvent | Malformed]:
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()  # the block ended with a newline: no line after it
        decode = self.decode_line
        step = CHUNK_LINES
        for start in range(0, len(lines), step):
            chunk = lines[start:start + step]
            evs = self._fast_block(b"\n".join(chunk))
            if evs is not None:
                yield from self.take(evs)
                continue
            for n, ln in enumerate(chunk, first_lineno + start):
                rec = decode(ln, n)
                if rec is not None:
                    yield rec

    def take(self, evs: list[BaseStationEvent]) -> Iterator[BaseStationEvent]:
        """An iterator over decoded records, counted as decoded as they are taken."""
        it = iter(evs)
        self._taking = it  # counters() subtracts what is left of it
        self.decoded += len(evs)
        return it

    def _fast_block(self, body: bytes) -> list[BaseStationEvent] | None:
        """All lines of ``body`` (lines joined by newlines, no final one) decoded by the
        fast path, or None if any line needs the detailed one (blank, too long, not a
        valid known event). The newlines stay between the array's elements: a raw
        newline cannot occur inside a JSON string, so each element is exactly one line
        when the count matches."""
        if not body:
            return None
        max_line = self.max_line
        if len(body) > max_line and not _lines_within(body, max_line):
            return None
        try:
            evs = _FAST_LIST(b"[" + body.replace(b"\n", b"\n,") + b"]")
        except _FAST_ERRORS:
            return None
        if len(evs) != body.count(b"\n") + 1 or not _digits_ok(evs):
            return None
        return evs

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
        # Fast path: msgspec checked every JSON type, the lengths of imsi and imei and
        # the ranges of the numbers (no unknown field); what is left of the detailed
        # path's checks follows. Anything unusual goes to the detailed path.
        imsi = ev.imsi
        imei = ev.imei
        if (imsi.isdigit() and imsi.isascii()
                and (imei is None or (imei.isdigit() and imei.isascii()))):
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
