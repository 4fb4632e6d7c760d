"""STX payload ETX [BCC] frames, as many industrial controllers and scales send them.

Bytes outside a frame are dropped and counted (``junk``); an STX inside a frame
starts a new frame (the broken one is counted, ``stx_in_frame``); with ``bcc=True``
one check byte follows ETX: the XOR of every byte after STX up to and including ETX
(``bcc`` error when it does not match).
"""

from __future__ import annotations

from drivers.framing.base import CountingMixin, FrameError


class StxEtxFramer(CountingMixin):
    def __init__(self, *, stx: int = 0x02, etx: int = 0x03, bcc: bool = False,
                 max_len: int = 4096) -> None:
        self.stx, self.etx, self.bcc, self.max_len = stx, etx, bcc, max_len
        self._buf = bytearray()
        self._in_frame = False
        self._init_counts()

    def feed(self, data: bytes) -> list[bytes | FrameError]:
        out: list[bytes | FrameError] = []
        buf = self._buf
        buf += data
        while buf:
            if not self._in_frame:
                i = buf.find(self.stx)
                if i < 0:
                    self._error(out, "junk", bytes(buf))
                    buf.clear()
                    break
                if i:
                    self._error(out, "junk", bytes(buf[:i]))
                del buf[:i + 1]
                self._in_frame = True
                continue
            j = buf.find(self.etx)
            k = buf.find(self.stx)
            if k >= 0 and (j < 0 or k < j):
                self._error(out, "stx_in_frame", bytes(buf[:k]))
                del buf[:k + 1]
                continue
            if j < 0:
                if len(buf) > self.max_len:
                    self._error(out, "too_long", bytes(buf))
                    buf.clear()
                    self._in_frame = False
                break
            if self.bcc and len(buf) < j + 2:
                break  # the check byte has not arrived yet
            payload = bytes(buf[:j])
            if len(payload) > self.max_len:
                self._error(out, "too_long", payload)
            elif self.bcc and self._bcc(payload) != buf[j + 1]:
                self._error(out, "bcc", payload)
            else:
                self.frames += 1
                out.append(payload)
            del buf[:j + 1 + (1 if self.bcc else 0)]
            self._in_frame = False
        return out

    def _bcc(self, payload: bytes) -> int:
        x = self.etx
        for b in payload:
            x ^= b
        return x

    def pending(self) -> int:
        return len(self._buf) + (1 if self._in_frame else 0)

    def reset(self) -> None:
        self._buf.clear()
        self._in_frame = False

    def encode(self, payload: bytes) -> bytes:
        if self.stx in payload or self.etx in payload:
            raise ValueError("payload contains STX or ETX")
        tail = bytes([self._bcc(payload)]) if self.bcc else b""
        return bytes([self.stx]) + payload + bytes([self.etx]) + tail
