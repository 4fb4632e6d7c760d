"""The offline fast path: pcap/pcapng file -> Packet / RtpBatch / Malformed records.

Reads the file in large blocks (``pcapio``), cuts each block into runs of frames of
one event-time second, and for dense runs classifies RTP media with numpy
(``batch``) and aggregates it per flow without a Python object per packet; every
other frame (signalling, GoIP protocols, TCP, GTP-U, fragments, IPv6, odd link
layers) goes through the per-frame decoder (``decode``). Sparse runs go entirely
per frame. Both paths feed the same RTP aggregator, so the output does not depend
on which path a frame took.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from drivers.capture.batch import find_rtp, rtp_groups
from drivers.capture.decode import FrameDecoder
from drivers.capture.pcapio import RecordBlock, open_records
from edge.errors import InputError
from edge.records import Malformed


class FastPcapSource:
    """A pcap/pcapng file as a time-ordered stream of decoded records (the Source API)."""

    def __init__(self, path: Path, *, block_bytes: int = 8 << 20, dense_min: int = 256,
                 **decoder_opts: Any) -> None:
        self.path = Path(path)
        self.name = f"pcap:{self.path.name}"
        self.block_bytes = block_bytes
        self.dense_min = dense_min
        self.decoder = FrameDecoder(self.name, **decoder_opts)
        self.records_read = 0
        self.fast_rtp = 0
        self.errors = 0
        self.bad_ts = 0
        self._closed = False
        self._addr: dict[int, str] = {}

    def __iter__(self) -> Iterator[Any]:
        try:
            fh = open(self.path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"cannot open: {exc.strerror}", source=str(self.path)) from None
        with fh:
            for blk in open_records(fh, str(self.path), block_bytes=self.block_bytes):
                for idx, stamp in blk.bad_ts:
                    self.bad_ts += 1
                    yield Malformed(self.name, f"frame {idx}",
                                    f"packet time {stamp:.6g} is impossible")
                yield from self._block(blk)
                if blk.error is not None:
                    self.errors += 1
                    yield Malformed(self.name, f"frame {blk.first + len(blk.off)}", blk.error)
                if self._closed:
                    return
        out: list[Any] = []
        self.decoder.flush(out)
        yield from out

    def _block(self, blk: RecordBlock) -> Iterator[Any]:
        n = len(blk.off)
        self.records_read += n
        if not n:
            return
        sec = np.floor(blk.ts).astype(np.int64)
        cuts = np.flatnonzero((sec[1:] != sec[:-1]) | (blk.linktype[1:] != blk.linktype[:-1]))
        bounds = [0, *(cuts + 1).tolist(), n]
        raw = np.frombuffer(blk.data, dtype=np.uint8)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            out: list[Any] = []
            if b - a >= self.dense_min:
                self._dense(blk, raw, a, b, out)
            else:
                self._sparse(blk, a, b, out)
            yield from out

    def _sparse(self, blk: RecordBlock, a: int, b: int, out: list[Any]) -> None:
        data = blk.data
        decode = self.decoder.decode
        first = blk.first
        for i, o, c, t, lt in zip(range(a, b), blk.off[a:b].tolist(), blk.caplen[a:b].tolist(),
                                  blk.ts[a:b].tolist(), blk.linktype[a:b].tolist(),
                                  strict=True):
            decode(t, lt, data[o:o + c], first + i, out)

    def _dense(self, blk: RecordBlock, raw: np.ndarray, a: int, b: int, out: list[Any]) -> None:
        dec = self.decoder
        lt = int(blk.linktype[a])
        off = blk.off[a:b]
        cap = blk.caplen[a:b]
        ts = blk.ts[a:b]
        f = find_rtp(raw, off, cap, lt)
        if f is None:
            return self._sparse(blk, a, b, out)
        dec.advance(float(ts[0]), out)  # what decode() does per frame, once for the run
        is_rtp = np.zeros(b - a, dtype=bool)
        is_rtp[f.sel] = True
        slow = np.flatnonzero(~is_rtp)
        data = blk.data
        first = blk.first + a
        decode_frame = dec.decode_frame
        for i, o, c, t in zip(slow.tolist(), off[slow].tolist(), cap[slow].tolist(),
                              ts[slow].tolist(), strict=True):
            decode_frame(t, lt, data[o:o + c], first + i, out)
        m = len(f.sel)
        if not m:
            return None
        self.fast_rtp += m
        dec.frames += m
        dec.gtp += int(f.gtp.sum())
        g = rtp_groups(f, ts[f.sel])
        addr = self._addr_text
        merge = dec.rtp.merge
        sel = f.sel
        for k in range(len(g.src)):
            key = (addr(g.src[k]), addr(g.dst[k]), g.sport[k], g.dport[k], g.ssrc[k], g.teid[k])
            merge(key, int(g.first_ts[k]), g.first_ts[k], g.last_ts[k], g.pt[k], g.packets[k],
                  g.bytes[k], g.seq_first[k], g.seq_last[k], g.lost[k], g.jit_sum[k],
                  g.packets[k] - 1, g.max_gap[k], g.first_rtp_ts[k], g.last_rtp_ts[k],
                  first + int(sel[g.last_pos[k]]), out)
        return None

    def _addr_text(self, a: int) -> str:
        s = self._addr.get(a)
        if s is None:
            if len(self._addr) > 100_000:
                self._addr.clear()
            s = self._addr[a] = socket.inet_ntoa(a.to_bytes(4, "big"))
        return s

    def close(self) -> None:
        self._closed = True


    def counters(self) -> dict[str, int | float]:
        c: dict[str, int | float] = {"records_read": self.records_read,
                                     "fast_rtp": self.fast_rtp, "errors": self.errors,
                                     "bad_ts": self.bad_ts}
        c.update(self.decoder.counters())
        return c
