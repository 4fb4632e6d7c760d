"""The Framer protocol and the framing error record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(slots=True, frozen=True)
class FrameError:
    """Bytes that did not make a frame. ``reason`` is short and stable (it is a
    counter name): too_long, junk, crc, bcc, bad_length, stx_in_frame, ...;
    ``data`` holds at most the first 64 bytes concerned, for the log."""

    reason: str
    data: bytes = b""


@runtime_checkable
class Framer(Protocol):
    def feed(self, data: bytes) -> list[bytes | FrameError]:
        """Every frame completed by ``data`` (in order), and errors where bytes had to be
        dropped. Partial frames are kept for the next call."""
        ...

    def pending(self) -> int:
        """Bytes held of a frame not yet complete."""
        ...

    def reset(self) -> None:
        """Forget a partial frame (the link broke)."""
        ...

    def encode(self, payload: bytes) -> bytes:
        """The bytes that carry ``payload`` as one frame."""
        ...

    def counters(self) -> dict[str, int | float]: ...


class CountingMixin:
    """``frames`` and ``errors.<reason>`` counters for a framer."""

    def _init_counts(self) -> None:
        self.frames = 0
        self.errors: dict[str, int] = {}

    def _error(self, out: list[bytes | FrameError], reason: str, data: bytes) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1
        out.append(FrameError(reason, bytes(data[:64])))

    def counters(self) -> dict[str, int | float]:
        c: dict[str, int | float] = {"frames": self.frames}
        c.update({f"errors.{k}": v for k, v in sorted(self.errors.items())})
        return c
