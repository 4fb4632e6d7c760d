"""Sources of base-station events: JSONL files (replay, follow) and UDP datagrams."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

from drivers.events.decoder import EventDecoder
from edge.errors import InputError
from edge.records import BaseStationEvent, Malformed

BLOCK_BYTES = 1 << 18


class JsonlEventFile:
    """Reads one JSONL file of events; yields events and Malformed records."""

    def __init__(self, path: Path, *, follow: bool = False, poll_s: float = 0.2,
                 stop: object = None) -> None:
        self.path = path
        self.name = f"events:{path.name}"
        self.decoder = EventDecoder(self.name)
        self.follow = follow
        self.poll_s = poll_s
        self._stopped = False
        self.bytes_read = 0

    def __iter__(self) -> Iterator[BaseStationEvent | Malformed]:
        try:
            fh = open(self.path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"cannot open: {exc.strerror}", source=str(self.path)) from None
        decode = self.decoder.iter_block
        lineno = 1  # number of the first line of the next block
        # Read in big blocks and decode whole lines in bulk: a readline() per event
        # costs as much as decoding it. A partial last line waits for the next block.
        with fh:
            pending = b""
            while not self._stopped:
                chunk = fh.read(BLOCK_BYTES)
                if not chunk:
                    if not self.follow:
                        if pending:  # the file ends without a newline
                            yield from decode(pending, lineno)
                        break
                    time.sleep(self.poll_s)
                    continue
                self.bytes_read += len(chunk)
                cut = chunk.rfind(b"\n")
                if cut < 0:
                    pending += chunk
                    continue
                block = pending + chunk[:cut + 1] if pending else chunk[:cut + 1]
                pending = chunk[cut + 1:]
                yield from decode(block, lineno)
                lineno += block.count(b"\n")

    def close(self) -> None:
        self._stopped = True


    def counters(self) -> dict[str, int | float]:
        return dict(self.decoder.counters())


class UdpEventListener:
    """Receives JSONL events as UDP datagrams (one or more lines per datagram)."""

    def __init__(self, host: str, port: int, *, timeout_s: float = 0.5) -> None:
        self.name = f"events:udp:{port}"
        self.decoder = EventDecoder(self.name)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, port))
        self._sock.settimeout(timeout_s)
        self._stopped = False
        self.datagrams = 0

    @property
    def address(self) -> tuple[str, int]:
        return self._sock.getsockname()  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[BaseStationEvent | Malformed]:
        n = 0
        while not self._stopped:
            try:
                data = self._sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                break
            self.datagrams += 1
            for line in data.splitlines():
                n += 1
                rec = self.decoder.decode_line(line, n)
                if rec is not None:
                    yield rec

    def close(self) -> None:
        self._stopped = True
        self._sock.close()

    def counters(self) -> dict[str, int | float]:
        return {**self.decoder.counters(), "datagrams": self.datagrams}
