"""A file as a transport: replaying a recorded byte stream from a device.

Reads return the file's bytes in order (at most ``max_bytes`` a call). At the end of
the file, ``follow=False`` returns ``b""`` and sets ``eof`` (the replay is done);
``follow=True`` waits up to ``timeout`` for appended bytes, like ``tail -f``.
Writes are appended to ``write_path`` when given (a record of what the agent sent),
otherwise counted and dropped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import IO

from drivers.transport.base import TransportCounters
from edge.errors import TransportError


class FileTransport:
    def __init__(self, path: Path, *, follow: bool = False, write_path: Path | None = None,
                 poll_s: float = 0.05, name: str | None = None) -> None:
        self.path = Path(path)
        self.follow = follow
        self.write_path = write_path
        self.poll_s = poll_s
        self.name = name or f"file:{self.path.name}"
        self.eof = False
        self._fh: IO[bytes] | None = None
        self._wh: IO[bytes] | None = None
        self.stats = TransportCounters()

    def open(self) -> None:
        self.close()
        try:
            self._fh = open(self.path, "rb")  # noqa: SIM115 - closed in close()
            if self.write_path is not None:
                self._wh = open(self.write_path, "ab")  # noqa: SIM115
        except OSError as exc:
            self.close()
            raise TransportError(f"cannot open: {exc}", transport=self.name) from None
        self.eof = False
        self.stats.opens += 1

    def read(self, max_bytes: int, timeout: float) -> bytes:
        if self._fh is None:
            raise TransportError("not open", transport=self.name)
        deadline = time.monotonic() + timeout
        while True:
            try:
                data = self._fh.read(max_bytes)
            except OSError as exc:
                raise TransportError(f"read failed: {exc}", transport=self.name) from None
            if data:
                self.stats.reads += 1
                self.stats.bytes_in += len(data)
                return data
            if not self.follow:
                self.eof = True
                return b""
            left = deadline - time.monotonic()
            if left <= 0:
                return b""
            time.sleep(min(self.poll_s, left))

    def write(self, data: bytes) -> None:
        if self._fh is None:
            raise TransportError("not open", transport=self.name)
        if self._wh is not None:
            try:
                self._wh.write(data)
                self._wh.flush()
            except OSError as exc:
                raise TransportError(f"write failed: {exc}", transport=self.name) from None
        self.stats.writes += 1
        self.stats.bytes_out += len(data)

    def close(self) -> None:
        for fh in (self._fh, self._wh):
            if fh is not None:
                fh.close()
        self._fh = self._wh = None

    def counters(self) -> dict[str, int | float]:
        return self.stats.as_dict()
