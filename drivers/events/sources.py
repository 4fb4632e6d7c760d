"""Sources of base-station events: JSONL files (replay, follow) and UDP datagrams.

Followed files behave like ``tail -F``: when the path names a new file (another inode:
the feed was rotated) the rest of the old one is read, then the new one from its
start; when the file shrinks below the read offset (truncated in place) it is read
again from its start. Both are logged and counted (``rotations``, ``truncations``).

UDP datagram format: one or more event lines (field-formats 1b), each a JSON object,
separated by ``\\n``; a datagram holds whole lines only (at most 65,507 bytes over
IPv4). IPv4 and IPv6 (``[::]:port`` listens dual-stack). Datagrams the kernel dropped
because the receive buffer was full are read from ``SO_RXQ_OVFL`` and counted in
``kernel_drops`` (Linux); the buffer size is ``inputs.events.udp_rcvbuf_bytes``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from drivers.events.decoder import EventDecoder
from drivers.transport.udp_rx import UdpReceiver
from edge.errors import InputError
from edge.records import BaseStationEvent, Malformed

log = logging.getLogger(__name__)

BLOCK_BYTES = 1 << 18
MAX_LINE = 65_536


class JsonlEventFile:
    """Reads one JSONL file of events; yields events and Malformed records."""

    def __init__(self, path: Path, *, follow: bool = False, poll_s: float = 0.2,
                 stop: object = None, max_line: int = MAX_LINE) -> None:
        self.path = path
        self.name = f"events:{path.name}"
        self.decoder = EventDecoder(self.name, max_line=max_line)
        self.max_line = max_line
        self.follow = follow
        self.poll_s = poll_s
        self._stopped = False
        self.bytes_read = 0
        self.rotations = 0
        self.truncations = 0
        self.long_lines = 0

    def __iter__(self) -> Iterator[BaseStationEvent | Malformed]:
        take = self.decoder.take
        for blk in self.blocks():
            if type(blk) is list:
                yield from take(blk)
            else:
                yield from blk

    def take(self, evs: list[BaseStationEvent]) -> Iterator[BaseStationEvent]:
        """The records of a list :meth:`blocks` gave, counted as decoded as they
        are taken."""
        return self.decoder.take(evs)

    def blocks(self) -> Iterator[list[BaseStationEvent] | Iterable[BaseStationEvent | Malformed]]:
        """The file's records in blocks, each to be consumed before the next is asked
        for: a list of events decoded whole (to be handed out with :meth:`take`), or an
        iterable of records (odd lines, Malformed)."""
        try:
            fh: BinaryIO = open(self.path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"cannot open: {exc.strerror}", source=str(self.path)) from None
        decode = self.decoder.block
        lineno = 1  # number of the first line of the next block
        # Read in big blocks and decode whole lines in bulk: a readline() per event
        # costs as much as decoding it. A partial last line waits for the next block,
        # up to max_line bytes; beyond that it is skipped to its end and counted.
        pending = b""
        skipping = False
        nxt: BinaryIO | None = None  # the new file after a rotation
        try:
            while not self._stopped:
                chunk = fh.read(BLOCK_BYTES)
                if not chunk:
                    if not self.follow:
                        if pending and not skipping:  # the file ends without a newline
                            yield decode(pending, lineno)
                        break
                    if nxt is not None:  # the rotated file is drained: switch
                        if pending and not skipping:  # its unterminated last line
                            yield decode(pending, lineno)
                        fh.close()
                        fh, nxt, pending, skipping, lineno = nxt, None, b"", False, 1
                        continue
                    moved = self._moved(fh)
                    if moved is None:
                        time.sleep(self.poll_s)
                    elif moved is fh:  # truncated in place: from the start again
                        pending, skipping, lineno = b"", False, 1
                    else:  # rotated: read what is left of the old file first
                        nxt = moved
                    continue
                self.bytes_read += len(chunk)
                if skipping:
                    cut = chunk.find(b"\n")
                    if cut < 0:
                        continue
                    skipping = False
                    yield (self._too_long(lineno),)
                    lineno += 1
                    chunk = chunk[cut + 1:]
                cut = chunk.rfind(b"\n")
                if cut < 0:
                    pending += chunk
                    if len(pending) > self.max_line:
                        pending, skipping = b"", True
                    continue
                block = pending + chunk[:cut + 1] if pending else chunk[:cut + 1]
                pending = chunk[cut + 1:]
                if len(pending) > self.max_line:
                    pending, skipping = b"", True
                yield decode(block, lineno)
                lineno += block.count(b"\n")
        finally:
            fh.close()
            if nxt is not None:
                nxt.close()

    def _too_long(self, lineno: int) -> Malformed:
        self.long_lines += 1
        self.decoder.malformed += 1
        return Malformed(self.name, f"line {lineno}", f"line longer than {self.max_line} bytes")

    def _moved(self, fh: BinaryIO) -> BinaryIO | None:
        """At EOF of ``fh``: a handle on the new file if the path was rotated, ``fh``
        itself (rewound) if it was truncated below the offset, else None."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None  # rotated away, the new file not there yet: keep waiting
        cur = os.fstat(fh.fileno())
        if (st.st_ino, st.st_dev) != (cur.st_ino, cur.st_dev):
            try:
                new = open(self.path, "rb")  # noqa: SIM115
            except OSError:
                return None
            self.rotations += 1
            log.warning("%s: %s was rotated (inode %d -> %d); reading the new file from "
                        "its start", self.name, self.path, cur.st_ino, st.st_ino)
            return new
        if st.st_size < fh.tell():
            self.truncations += 1
            log.warning("%s: %s was truncated (size %d < offset %d); reading it again "
                        "from its start", self.name, self.path, st.st_size, fh.tell())
            fh.seek(0)
            return fh
        return None

    def close(self) -> None:
        self._stopped = True

    def counters(self) -> dict[str, int | float]:
        return {**self.decoder.counters(), "rotations": self.rotations,
                "truncations": self.truncations, "long_lines": self.long_lines}


def parse_listen(spec: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` -> (host, port); ValueError if bad."""
    host, sep, port = spec.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"expected host:port or [ipv6]:port, got {spec!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port)


class UdpEventListener:
    """Receives JSONL events as UDP datagrams (one or more lines per datagram)."""

    def __init__(self, host: str, port: int, *, timeout_s: float = 0.5,
                 rcvbuf: int = 0, max_line: int = MAX_LINE) -> None:
        self.name = f"events:udp:{port}"
        self.decoder = EventDecoder(self.name, max_line=max_line)
        self._rx = UdpReceiver(self.name, host, port, rcvbuf=rcvbuf, timeout_s=timeout_s)
        self.rcvbuf = self._rx.rcvbuf
        self._stopped = False
        self.datagrams = 0

    @property
    def address(self) -> tuple[str, int]:
        return self._rx.address

    @property
    def kernel_drops(self) -> int:
        return self._rx.kernel_drops

    def __iter__(self) -> Iterator[BaseStationEvent | Malformed]:
        n = 0
        recv = self._rx.recv
        while not self._stopped:
            try:
                got = recv()
            except OSError:
                break
            if got is None:
                continue
            self.datagrams += 1
            for line in got[0].split(b"\n"):
                if not line:
                    continue
                n += 1
                rec = self.decoder.decode_line(line, n)
                if rec is not None:
                    yield rec

    def close(self) -> None:
        self._stopped = True
        self._rx.close()

    def counters(self) -> dict[str, int | float]:
        return {**self.decoder.counters(), "datagrams": self.datagrams,
                "kernel_drops": self.kernel_drops, "rcvbuf_bytes": self.rcvbuf}
