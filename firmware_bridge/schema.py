"""The message-definition language of the bridge: one field list per message, from
which the construct parser (compiled), the schema id (the CRC seed) and the tables of
PROTOCOL.md are all derived, so the three cannot drift apart.

A field is ``(name, kind)``. Kinds, all little-endian:

==========  ======================================================================
``u8``      unsigned 8 bits; ``u16``, ``u32``, ``u64`` likewise
``f64``     IEEE 754 binary64 (event times and durations round-trip exactly)
``varint``  unsigned LEB128 (construct ``VarInt``), 1..10 bytes
``str``     tagged string: a tag byte, then ``tag & 0x7F`` bytes. Tag bit 7 set: the
            bytes are *packed nibbles*, two characters a byte, high nibble first,
            from the alphabet ``0-9`` (0x0-0x9), ``+`` (0xA), ``*`` (0xB), ``#`` (0xC),
            ``-`` (0xD), and 0xF pads an odd count; clear: UTF-8 bytes. An IMSI takes
            9 bytes, a cell id ``46000-5815-9487`` 9 bytes.
``bytes``   u16 length, then that many bytes
``rawN``    exactly N bytes (``raw32`` a SHA-256, ``raw64`` a signature)
``bitmap``  u16 presence bitmap: bit *i* set means the *i*-th optional field
            (kind ending in ``?``) that follows is present; absent ones take no bytes
==========  ======================================================================

The schema id of a message is CRC-32C over its canonical text
``"<NAME> <type> <name>:<kind> <name>:<kind> ..."`` (ASCII, one space between
items): a changed field, kind, order or type number changes the id, and the frame
CRC is seeded with it (MAVLink's CRC_EXTRA, 32 bits here), so two ends with
different definitions of one message reject each other's frames of that message
instead of misreading them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import construct as C
import fastcrc.crc32 as _crc32

FieldSpec = tuple[str, str]

_FIXED = {"u8": C.Int8ul, "u16": C.Int16ul, "u32": C.Int32ul, "u64": C.Int64ul,
          "f64": C.Float64l}
_SIZES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "f64": 8, "bitmap": 2}

NIBBLE_CHARS = "0123456789+*#-"
_TO_NIB = str.maketrans({"+": "a", "*": "b", "#": "c", "-": "d"})
_FROM_NIB = str.maketrans({"a": "+", "b": "*", "c": "#", "d": "-"})
_NIB_SET = frozenset(NIBBLE_CHARS)
MAX_STR = 127


def crc32c(data: bytes, initial: int | None = None) -> int:
    """CRC-32C (Castagnoli; poly 0x1EDC6F41 reflected, init and xorout 0xFFFFFFFF;
    check value of ``b"123456789"`` is 0xE3069283). ``initial`` continues a previous
    result: ``crc32c(b, crc32c(a)) == crc32c(a + b)``."""
    return _crc32.iscsi(data, initial)


def base_kind(kind: str) -> str:
    return kind[:-1] if kind.endswith("?") else kind


def fixed_size(kind: str) -> int | None:
    """Bytes a field of ``kind`` takes when present, or None if variable."""
    k = base_kind(kind)
    if k in _SIZES:
        return _SIZES[k]
    if k.startswith("raw"):
        return int(k[3:])
    return None


def schema_text(name: str, type_id: int, fields: Sequence[FieldSpec]) -> str:
    return " ".join([name, str(type_id)] + [f"{n}:{k}" for n, k in fields])


def schema_id(name: str, type_id: int, fields: Sequence[FieldSpec]) -> int:
    return crc32c(schema_text(name, type_id, fields).encode("ascii"))


def _one(name: str, kind: str) -> list[tuple[str, Any]]:
    """(name, construct subcon) pairs carrying one field (a tagged string is two)."""
    k = base_kind(kind)
    if k in _FIXED:
        return [(name, _FIXED[k])]
    if k == "bitmap":
        return [(name, C.Int16ul)]
    if k == "varint":
        return [(name, C.VarInt)]
    if k == "str":
        return [(f"{name}__tag", C.Int8ul), (name, C.Bytes(C.this[f"{name}__tag"] & 0x7F))]
    if k == "bytes":
        return [(f"{name}__len", C.Int16ul), (name, C.Bytes(C.this[f"{name}__len"]))]
    if k.startswith("raw"):
        return [(name, C.Bytes(int(k[3:])))]
    raise ValueError(f"unknown field kind {kind!r}")


def build_struct(fields: Sequence[FieldSpec]) -> C.Construct:
    """The construct Struct of a field list (optional fields under ``If`` on the
    preceding bitmap), not yet compiled."""
    subs: list[Any] = []
    bitmap: str | None = None
    bit = 0
    for name, kind in fields:
        if kind == "bitmap":
            bitmap, bit = name, 0
        if kind.endswith("?"):
            if bitmap is None:
                raise ValueError(f"optional field {name} without a bitmap before it")
            cond = (C.this[bitmap] & (1 << bit)) != 0
            subs += [n / C.If(cond, sub) for n, sub in _one(name, kind)]
            bit += 1
        else:
            subs += [n / sub for n, sub in _one(name, kind)]
    # Terminated: construct ignores trailing bytes otherwise, and a payload longer
    # than its fields is as wrong as a short one
    return C.Struct(*subs, C.Terminated)


# -- tagged strings (the Python side of kind "str")


def pack_str(s: str) -> tuple[int, bytes]:
    """(tag, bytes) of a tagged string; ValueError if it cannot be carried."""
    if s and len(s) <= 2 * MAX_STR and _NIB_SET.issuperset(s):
        h = s.translate(_TO_NIB)
        if len(h) & 1:
            h += "f"
        return 0x80 | (len(h) // 2), bytes.fromhex(h)
    raw = s.encode("utf-8")
    if len(raw) > MAX_STR:
        raise ValueError(f"string of {len(raw)} bytes (at most {MAX_STR})")
    return len(raw), raw


def unpack_str(tag: int, data: bytes) -> str:
    """The string of a tagged string; ValueError on bad packing or UTF-8."""
    if tag & 0x80:
        h = data.hex()
        if h.endswith("f"):
            h = h[:-1]
        if not h or "e" in h or "f" in h:
            raise ValueError("bad packed nibble string")
        return h.translate(_FROM_NIB)
    return data.decode("utf-8")
