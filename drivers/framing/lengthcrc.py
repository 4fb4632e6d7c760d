"""Binary frames: sync, length, payload, CRC over length + payload.

``sync`` (default AA 55) marks a frame start, ``length_bytes`` (1, 2 or 4, in
``byteorder``) give the payload length, a CRC from :data:`~drivers.framing.crc.CRCS`
follows. A bad CRC or a length above ``max_len`` is counted (``crc``, ``bad_length``)
and the framer resynchronises at the next sync after the false start, so a corrupted
byte costs one frame, not the stream.
"""

from __future__ import annotations

from typing import Literal

from drivers.framing.base import CountingMixin, FrameError
from drivers.framing.crc import CRCS


class LengthCrcFramer(CountingMixin):
    def __init__(self, *, sync: bytes = b"\xaa\x55", length_bytes: int = 2,
                 byteorder: Literal["big", "little"] = "big", crc: str = "crc16-ccitt",
                 max_len: int = 4096) -> None:
        if length_bytes not in (1, 2, 4):
            raise ValueError("length_bytes must be 1, 2 or 4")
        if crc not in CRCS:
            raise ValueError(f"unknown crc {crc!r} (known: {', '.join(CRCS)})")
        if not sync:
            raise ValueError("sync must not be empty")
        self.sync, self.length_bytes, self.byteorder = sync, length_bytes, byteorder
        self.crc_name = crc
        self._crc, self._crc_len = CRCS[crc]
        self.max_len = min(max_len, 256 ** length_bytes - 1)
        self._buf = bytearray()
        self._init_counts()

    def feed(self, data: bytes) -> list[bytes | FrameError]:
        out: list[bytes | FrameError] = []
        buf = self._buf
        buf += data
        sync, ls = self.sync, len(self.sync)
        while True:
            i = buf.find(sync)
            if i < 0:
                keep = ls - 1  # a sync may be split across reads
                if len(buf) > keep:
                    self._error(out, "junk", bytes(buf[:len(buf) - keep]))
                    del buf[:len(buf) - keep]
                break
            if i:
                self._error(out, "junk", bytes(buf[:i]))
                del buf[:i]
            head = ls + self.length_bytes
            if len(buf) < head:
                break
            n = int.from_bytes(buf[ls:head], self.byteorder)
            if n > self.max_len:
                self._error(out, "bad_length", bytes(buf[:head]))
                del buf[:1]  # resync after this false start
                continue
            end = head + n + self._crc_len
            if len(buf) < end:
                break
            body = bytes(buf[ls:head + n])
            got = int.from_bytes(buf[head + n:end], self.byteorder)
            if got != self._crc(body):
                self._error(out, "crc", bytes(buf[:end]))
                del buf[:1]
                continue
            self.frames += 1
            out.append(body[self.length_bytes:])
            del buf[:end]
        return out

    def pending(self) -> int:
        return len(self._buf)

    def reset(self) -> None:
        self._buf.clear()

    def encode(self, payload: bytes) -> bytes:
        if len(payload) > self.max_len:
            raise ValueError(f"payload of {len(payload)} bytes exceeds max_len {self.max_len}")
        body = len(payload).to_bytes(self.length_bytes, self.byteorder) + payload
        return self.sync + body + self._crc(body).to_bytes(self._crc_len, self.byteorder)
