"""Walking pcap and pcapng files in large blocks: record boundaries, times, link types.

The file is read in blocks of a few megabytes; each block is walked with one
``struct`` read per record (the only per-record Python work), and the record
headers are then decoded with numpy. A block yields a :class:`RecordBlock`: the
raw bytes plus arrays of data offsets, captured lengths, timestamps and link types,
which the batch decoder and the per-frame decoder both read from.

A damaged file ends the walk with ``RecordBlock.error`` set (the records before the
damage are kept); nothing here raises on bad data after the file header.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from edge.errors import InputError
from edge.timeguard import MAX_EPOCH

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
MAX_RECORD = 1 << 20  # a captured length above this means the file is corrupt


@dataclass(slots=True)
class RecordBlock:
    """Records of one block: ``data[off[i]:off[i] + caplen[i]]`` is frame ``first + i``."""

    data: bytes
    off: np.ndarray  # int64
    caplen: np.ndarray  # int64
    ts: np.ndarray  # float64, epoch seconds
    linktype: np.ndarray  # int64
    first: int  # 1-based index of the first record
    error: str | None = None
    bad_ts: tuple[tuple[int, float], ...] = ()
    """(frame index, stamp) of records left out because their time is impossible
    (see :func:`bound_times`); the reader of the block counts each as malformed."""


def open_records(fh: BinaryIO, name: str, *, block_bytes: int = 8 << 20
                 ) -> Iterator[RecordBlock]:
    """Yield the records of a pcap or pcapng file opened in binary mode, block by block."""
    head = fh.read(4)
    if head in PCAP_MAGICS:
        return bound_times(_pcap_blocks(fh, head, name, block_bytes))
    if head == PCAPNG_SHB:
        return bound_times(_pcapng_blocks(fh, head, name, block_bytes))
    raise InputError("not a pcap/pcapng file (unknown magic)", source=name)


def bound_times(blocks: Iterator[RecordBlock]) -> Iterator[RecordBlock]:
    """Leave out records whose time is impossible: not finite, negative, or from 2100
    on (a pcapng with 1 s resolution can say 2**64 s; with microseconds, year 586524).
    A block is split around them so ``first + i`` stays the frame index; the records
    left out are listed in the next block's ``bad_ts``. Event-time bounds relative to
    the feed are checked later, on decoded records (:mod:`edge.timeguard`)."""
    for blk in blocks:
        ts = blk.ts
        ok = (ts >= 0.0) & (ts < MAX_EPOCH)  # NaN is neither
        if ok.all():
            yield blk
            continue
        bad = np.flatnonzero(~ok)
        bad_ts = tuple((blk.first + int(i), float(ts[i])) for i in bad)
        edges = [-1, *bad.tolist(), len(ts)]
        parts = [(a + 1, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a + 1]
        if not parts:
            yield RecordBlock(blk.data, blk.off[:0], blk.caplen[:0], ts[:0],
                              blk.linktype[:0], blk.first, blk.error, bad_ts)
            continue
        for k, (a, b) in enumerate(parts):
            yield RecordBlock(blk.data, blk.off[a:b], blk.caplen[a:b], ts[a:b],
                              blk.linktype[a:b], blk.first + a,
                              blk.error if k == len(parts) - 1 else None,
                              bad_ts if k == 0 else ())


def _pcap_blocks(fh: BinaryIO, magic: bytes, name: str, block_bytes: int
                 ) -> Iterator[RecordBlock]:
    endian, unit = PCAP_MAGICS[magic]
    rest = fh.read(20)
    if len(rest) < 20:
        raise InputError("truncated pcap file header", source=name)
    linktype = struct.unpack(endian + "I", rest[16:20])[0] & 0x0FFFFFFF  # FCS bits above
    u32 = struct.Struct(endian + "I").unpack_from
    hdr_dtype = np.dtype(endian + "u4")
    pending = b""
    index = 1
    while True:
        chunk = fh.read(block_bytes)
        buf = pending + chunk if pending else chunk
        n = len(buf)
        pos = 0
        offs: list[int] = []
        ap = offs.append
        error = None
        while pos + 16 <= n:
            incl = u32(buf, pos + 8)[0]
            if incl > MAX_RECORD:
                error = f"record length {incl} is implausible (corrupt file)"
                break
            nxt = pos + 16 + incl
            if nxt > n:
                break
            ap(pos)
            pos = nxt
        if not chunk and error is None and pos < n:
            error = "truncated record at end of file"
        if offs:
            pos_arr = np.asarray(offs, dtype=np.int64)
            sec, frac, incl = _headers(buf, pos_arr, hdr_dtype)
            ts = sec.astype(np.float64) + frac.astype(np.float64) * unit
            yield RecordBlock(buf, pos_arr + 16, incl.astype(np.int64), ts,
                              np.full(len(offs), linktype, dtype=np.int64), index, error)
            index += len(offs)
        elif error is not None:
            yield _empty(buf, index, error)
        if error is not None or not chunk:
            return
        pending = buf[pos:]


def _headers(buf: bytes, pos: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, ...]:
    """(seconds, fraction, captured length) of the record headers at byte offsets ``pos``.

    Reads 32-bit words through four zero-copy views of the block, one per byte
    alignment, so no per-byte gather is needed."""
    n = len(pos)
    out = [np.empty(n, dtype=np.uint32) for _ in range(3)]
    align = pos & 3
    for a in range(4):
        sel = np.flatnonzero(align == a)
        if not len(sel):
            continue
        words = np.frombuffer(buf, dtype=dtype, offset=a, count=(len(buf) - a) // 4)
        w = pos[sel] >> 2
        for k in range(3):
            out[k][sel] = words[w + k]
    return out[0], out[1], out[2]


def _empty(buf: bytes, index: int, error: str | None) -> RecordBlock:
    z = np.zeros(0, dtype=np.int64)
    return RecordBlock(buf, z, z, np.zeros(0), z, index, error)


def _pcapng_blocks(fh: BinaryIO, magic: bytes, name: str, block_bytes: int
                   ) -> Iterator[RecordBlock]:
    pending = magic
    index = 1
    endian = "<"
    ifaces: list[tuple[int, float]] = []  # (linktype, seconds per tick)
    last_ts = 0.0
    while True:
        chunk = fh.read(block_bytes)
        buf = pending + chunk if pending else chunk
        n = len(buf)
        pos = 0
        offs: list[int] = []
        lens: list[int] = []
        tss: list[float] = []
        lts: list[int] = []
        error = None
        while pos + 12 <= n:
            btype_raw = buf[pos:pos + 4]
            if btype_raw == PCAPNG_SHB:
                bom = buf[pos + 8:pos + 12]
                if bom == b"\x4d\x3c\x2b\x1a":
                    endian = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    endian = ">"
                else:
                    error = "bad pcapng byte-order magic"
                    break
            blen = struct.unpack_from(endian + "I", buf, pos + 4)[0]
            if blen < 12 or blen % 4 or blen > MAX_RECORD + 64:
                error = f"pcapng block length {blen} is invalid (corrupt file)"
                break
            if pos + blen > n:
                break
            btype = struct.unpack_from(endian + "I", buf, pos)[0]
            if btype == 0x0A0D0D0A:
                ifaces = []
            elif btype == 1 and blen >= 20:  # interface description
                lt = struct.unpack_from(endian + "H", buf, pos + 8)[0]
                ifaces.append((lt, _tsresol(buf, pos + 16, pos + blen - 4, endian)))
            elif btype == 6 and blen >= 32:  # enhanced packet
                iid, hi, lo, cap = struct.unpack_from(endian + "IIII", buf, pos + 8)
                if iid >= len(ifaces) or cap > blen - 32:
                    error = f"bad enhanced packet block (interface {iid}, length {cap})"
                    break
                lt, tick = ifaces[iid]
                last_ts = ((hi << 32) | lo) * tick
                offs.append(pos + 28)
                lens.append(cap)
                tss.append(last_ts)
                lts.append(lt)
            elif btype == 3 and blen >= 16:  # simple packet: no time, keep the last one
                if not ifaces:
                    error = "simple packet block before any interface"
                    break
                orig = struct.unpack_from(endian + "I", buf, pos + 8)[0]
                offs.append(pos + 12)
                lens.append(min(orig, blen - 16))
                tss.append(last_ts)
                lts.append(ifaces[0][0])
            elif btype == 2 and blen >= 32:  # obsolete packet block
                iid = struct.unpack_from(endian + "H", buf, pos + 8)[0]
                hi, lo, cap = struct.unpack_from(endian + "III", buf, pos + 12)
                if iid >= len(ifaces) or cap > blen - 32:
                    error = "bad packet block"
                    break
                lt, tick = ifaces[iid]
                last_ts = ((hi << 32) | lo) * tick
                offs.append(pos + 28)
                lens.append(cap)
                tss.append(last_ts)
                lts.append(lt)
            pos += blen
        if not chunk and error is None and pos < n:
            error = "truncated block at end of file"
        if offs:
            yield RecordBlock(buf, np.asarray(offs, dtype=np.int64),
                              np.asarray(lens, dtype=np.int64), np.asarray(tss),
                              np.asarray(lts, dtype=np.int64), index, error)
            index += len(offs)
        elif error is not None:
            yield _empty(buf, index, error)
        if error is not None or not chunk:
            return
        pending = buf[pos:]


def _tsresol(buf: bytes, p: int, end: int, endian: str) -> float:
    """Seconds per timestamp tick from an IDB's options (if_tsresol, default 1 us)."""
    while p + 4 <= end:
        code, length = struct.unpack_from(endian + "HH", buf, p)
        if code == 0:
            break
        if code == 9 and length >= 1:
            v = buf[p + 4]
            return 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
        p += 4 + ((length + 3) & ~3)
    return 1e-6
