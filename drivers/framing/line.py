"""Lines: frames ended by a terminator (CR LF by default; several may be accepted).

A line longer than ``max_len`` is dropped and counted (``too_long``), and the framer
resynchronises at the next terminator, so one runaway device cannot grow memory.
Empty lines (a CR LF pair split by a device sending either) are skipped.
"""

from __future__ import annotations

import re

from drivers.framing.base import CountingMixin, FrameError


class LineFramer(CountingMixin):
    def __init__(self, terminator: bytes | tuple[bytes, ...] = b"\r\n", *,
                 max_len: int = 4096, skip_empty: bool = True) -> None:
        terms = (terminator,) if isinstance(terminator, bytes) else tuple(terminator)
        if not terms or any(not t for t in terms):
            raise ValueError("terminator must be non-empty bytes")
        self.terminators = terms
        # longest first: at one position "\r\n" wins over "\r"
        self._re = re.compile(b"|".join(re.escape(t) for t in
                                        sorted(terms, key=len, reverse=True)))
        self.max_len = max_len
        self.skip_empty = skip_empty
        self._buf = bytearray()
        self._discarding = False
        self._init_counts()

    def feed(self, data: bytes) -> list[bytes | FrameError]:
        out: list[bytes | FrameError] = []
        buf = self._buf
        buf += data
        pos = 0
        while True:
            m = self._re.search(buf, pos)
            if m is None:
                break
            line = bytes(buf[pos:m.start()])
            pos = m.end()
            if self._discarding:  # the tail of a line already counted as too long
                self._discarding = False
                continue
            if len(line) > self.max_len:
                self._error(out, "too_long", line)
            elif line or not self.skip_empty:
                self.frames += 1
                out.append(line)
        del buf[:pos]
        if len(buf) > self.max_len:
            if not self._discarding:
                self._error(out, "too_long", bytes(buf))
                self._discarding = True
            # keep a possible partial terminator only
            keep = max(len(t) for t in self.terminators) - 1
            del buf[:len(buf) - keep if keep else len(buf)]
        return out

    def pending(self) -> int:
        return len(self._buf)

    def reset(self) -> None:
        self._buf.clear()
        self._discarding = False

    def encode(self, payload: bytes) -> bytes:
        if any(t in payload for t in self.terminators):
            raise ValueError("payload contains the terminator")
        return payload + self.terminators[0]
