"""ASCII line splitting shared by the line-oriented serial protocols (2a, 2b).

Bytes in, complete lines out (terminator stripped, as ``str``). Why not a plain
split: a serial line carries noise bursts, so a control or non-ASCII byte other than
the terminator means the line so far is garbage: it is dropped and counted and the
next line starts clean after it. A burst therefore costs at most the one line it
landed in, never the lines after it. A line longer than ``max_len`` is dropped too.
"""

from __future__ import annotations

from dataclasses import dataclass

TERMINATORS = {"crlf": b"\r\n", "cr": b"\r", "lf": b"\n"}


def parse_terminator(name: str) -> bytes:
    """``"crlf"``, ``"cr"`` or ``"lf"`` (case-insensitive) -> the bytes; ValueError else."""
    try:
        return TERMINATORS[name.lower()]
    except KeyError:
        raise ValueError(f"terminator must be one of {sorted(TERMINATORS)}, "
                         f"not {name!r}") from None


@dataclass(slots=True, frozen=True)
class Dropped:
    """A stretch of garbage discarded by the splitter: where it started and why."""

    offset: int  # byte offset of the stretch in the stream
    length: int
    reason: str  # "noise" | "overlong"


class LineSplitter:
    """Splits a byte stream into printable ASCII lines.

    ``terminator`` is b"\\r\\n", b"\\r" or b"\\n". A line ends at the terminator's last
    byte; the other line-end byte next to it is tolerated (so a scanner set to CR LF
    while the host expects CR still works) but elsewhere any byte < 0x20 (except tab)
    or > 0x7E is noise.
    """

    def __init__(self, terminator: bytes = b"\r\n", max_len: int = 256) -> None:
        if terminator not in TERMINATORS.values():
            raise ValueError(f"unsupported terminator {terminator!r}")
        self._end = terminator[-1]
        self._other = (set(b"\r\n") - {self._end}).pop()
        self.max_len = max_len
        self._buf = bytearray()
        self._start = 0  # stream offset of _buf[0]
        self.offset = 0  # stream offset of the next byte fed
        self._skip_overlong = False
        self._cr = False

    def feed(self, data: bytes) -> list[str | Dropped]:
        """The lines completed by ``data`` (in order), with the garbage dropped between.

        Adjacent garbage is reported as one ``Dropped`` stretch.
        """
        out: list[str | Dropped] = []
        buf = self._buf
        end = self._end
        for i, b in enumerate(data):
            pos = self.offset + i
            if self._cr:  # a CR was seen while LF ends lines: only LF may follow
                self._cr = False
                if b != 0x0A:
                    self._drop(out, self._start, pos - self._start, "noise")
                    buf.clear()
                    self._start = pos
            if b == end:
                if self._skip_overlong:
                    self._skip_overlong = False
                elif buf:
                    out.append(buf.decode("ascii"))
                buf.clear()
                self._start = pos + 1
            elif b == 0x0D and end == 0x0A:
                self._cr = True
            elif b == 0x0A and end == 0x0D and not buf:
                self._start = pos + 1  # the LF of a CR LF pair
            elif 0x20 <= b <= 0x7E or b == 0x09:
                if self._skip_overlong:
                    continue
                if not buf:
                    self._start = pos
                buf.append(b)
                if len(buf) > self.max_len:
                    self._drop(out, self._start, len(buf), "overlong")
                    buf.clear()
                    self._skip_overlong = True
            else:
                start = self._start if buf else pos
                self._drop(out, start, pos + 1 - start, "noise")
                buf.clear()
                self._skip_overlong = False
                self._start = pos + 1
        self.offset += len(data)
        return out

    @staticmethod
    def _drop(out: list[str | Dropped], start: int, length: int, reason: str) -> None:
        last = out[-1] if out else None
        if isinstance(last, Dropped) and last.offset + last.length == start \
                and last.reason == reason:
            out[-1] = Dropped(last.offset, last.length + length, reason)
        else:
            out.append(Dropped(start, length, reason))

    def discard_pending(self) -> Dropped | None:
        """Drop an incomplete line (a device's character timeout expired mid-line)."""
        if not self._buf:
            return None
        d = Dropped(self._start, len(self._buf), "stale partial line")
        self._buf.clear()
        self._start = self.offset
        return d

    @property
    def pending(self) -> int:
        """Bytes of an incomplete line held back (bounded by ``max_len``)."""
        return len(self._buf)
