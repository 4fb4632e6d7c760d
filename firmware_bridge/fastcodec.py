"""Straight-line payload codecs generated from the same field lists as the construct
parsers (:mod:`firmware_bridge.schema`).

Why: construct's compiled parser costs 8 µs for a 17-byte PHOTO_EYE and 28 µs for a
54-byte SUBSCRIBER_EVENT here (it builds a Container and evaluates ``this``
expressions per field), which alone would cap the link below the 100,000 frames/s the
bridge is meant to decode. These functions do the same with one ``struct`` call per run
of fixed-size fields. The construct parsers stay the reference: the test suite checks,
by property tests over every message type, that both accept and reject the same
payloads and give the same values (tests/firmware_bridge/test_messages.py).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from firmware_bridge.schema import FieldSpec, base_kind, fixed_size, pack_str, unpack_str

_FMT = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q", "f64": "d", "bitmap": "H"}


class FastPayloadError(ValueError):
    pass


def _varint(b: bytes, o: int) -> tuple[int, int]:
    """LEB128 at ``o`` -> (value, new offset), as construct's VarInt (at most 10 bytes
    accepted for a u64's worth)."""
    v = shift = 0
    while True:
        c = b[o]
        o += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, o
        shift += 7
        if shift > 63:
            raise FastPayloadError("varint too long")


def _put_varint(v: int) -> bytes:
    if v < 0:
        raise ValueError("varint must not be negative")
    out = bytearray()
    while True:
        c = v & 0x7F
        v >>= 7
        if v:
            out.append(c | 0x80)
        else:
            out.append(c)
            return bytes(out)


def _runs(fields: Sequence[FieldSpec]) -> list[list[FieldSpec]]:
    """Group consecutive non-optional fixed fields that ``struct`` can take at once."""
    out: list[list[FieldSpec]] = []
    for f in fields:
        k = f[1]
        if not k.endswith("?") and base_kind(k) in _FMT:
            if out and out[-1] and out[-1][0][1] in _FMT and not out[-1][0][1].endswith("?"):
                out[-1].append(f)
                continue
        out.append([f])
    return out


def generate(cls: type, fields: Sequence[FieldSpec]) -> tuple[Callable[[bytes], Any],
                                                               Callable[[Any], bytes], str]:
    """(decode, encode, source) for one message."""
    g: dict[str, Any] = {"_cls": cls, "_us": unpack_str, "_ps": pack_str, "_vi": _varint,
                         "_pv": _put_varint, "_E": FastPayloadError, "_S": struct.Struct}
    dec = ["def decode(b):", "    o = 0"]
    enc = ["def encode(m):", "    out = []"]
    names = [n for n, k in fields if k != "bitmap"]
    bitmap: str | None = None
    bits: dict[str, tuple[str, int]] = {}
    optional_of: dict[str, list[str]] = {}
    for n, k in fields:
        if k == "bitmap":
            bitmap = n
            optional_of[n] = []
        elif k.endswith("?"):
            assert bitmap is not None
            bits[n] = (bitmap, len(optional_of[bitmap]))
            optional_of[bitmap].append(n)
    for i, run in enumerate(_runs(fields)):
        n, k = run[0]
        bk = base_kind(k)
        if bk in _FMT and not k.endswith("?"):
            fmt = "<" + "".join(_FMT[base_kind(kk)] for _, kk in run)
            size = struct.calcsize(fmt)
            g[f"_s{i}"] = struct.Struct(fmt)
            vars_ = ", ".join("f_" + nn for nn, _ in run) + ","
            dec.append(f"    {vars_} = _s{i}.unpack_from(b, o); o += {size}")
            packs = []
            for nn, kk in run:
                if kk == "bitmap":
                    expr = " | ".join(f"(m.{o_} is not None) << {j}"
                                      for j, o_ in enumerate(optional_of[nn])) or "0"
                    packs.append(f"({expr})")
                else:
                    packs.append(f"m.{nn}")
            enc.append(f"    out.append(_s{i}.pack({', '.join(packs)}))")
            if bk == "bitmap" or any(kk == "bitmap" for _, kk in run):
                for nn, kk in run:
                    if kk == "bitmap" and optional_of[nn]:
                        dec.append(f"    if f_{nn} >> {len(optional_of[nn])}: "
                                   f"raise _E('{nn} has undefined bits set')")
            continue
        ind = "    "
        if k.endswith("?"):
            bm, bit = bits[n]
            dec.append(f"    if f_{bm} & {1 << bit}:")
            enc.append(f"    if m.{n} is not None:")
            ind = "        "
        if bk in _FMT:
            g[f"_s{i}"] = struct.Struct("<" + _FMT[bk])
            dec.append(f"{ind}f_{n}, = _s{i}.unpack_from(b, o); o += {fixed_size(bk)}")
            enc.append(f"{ind}out.append(_s{i}.pack(m.{n}))")
        elif bk == "varint":
            dec.append(f"{ind}f_{n}, o = _vi(b, o)")
            enc.append(f"{ind}out.append(_pv(m.{n}))")
        elif bk == "str":
            dec.append(f"{ind}t = b[o]; e = o + 1 + (t & 0x7F); f_{n} = _us(t, b[o + 1:e]); o = e")
            enc.append(f"{ind}t, v = _ps(m.{n}); out.append(bytes((t,))); out.append(v)")
        elif bk == "bytes":
            dec.append(f"{ind}ln = b[o] | (b[o + 1] << 8); f_{n} = b[o + 2:o + 2 + ln]; "
                       f"o += 2 + ln")
            enc.append(f"{ind}v = bytes(m.{n}); out.append(len(v).to_bytes(2, 'little')); "
                       f"out.append(v)")
        elif bk.startswith("raw"):
            size = int(bk[3:])
            dec.append(f"{ind}f_{n} = b[o:o + {size}]; o += {size}")
            enc.append(f"{ind}v = bytes(m.{n})")
            enc.append(f"{ind}if len(v) != {size}: raise ValueError('{n} must be {size} bytes')")
            enc.append(f"{ind}out.append(v)")
        if k.endswith("?"):
            dec.append(f"    else: f_{n} = None")
    # o != len(b) catches both a short payload (slices past the end do not raise,
    # so o ran past it) and bytes left after the last field
    dec.append("    if o != len(b): raise _E('length mismatch')")
    dec.append(f"    return _cls({', '.join('f_' + n for n in names)})")
    enc.append("    return b''.join(out)")
    src = "\n".join(dec) + "\n\n" + "\n".join(enc) + "\n"
    exec(compile(src, f"<bridge codec {cls.__name__}>", "exec"), g)
    return g["decode"], g["encode"], src
