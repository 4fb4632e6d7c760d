"""A serial device of the station, live: a protocol core on a reconnecting transport.

``SerialDeviceSource`` is a pipeline source (one thread each, see edge/live.py): it
reads the port through :class:`drivers.transport.reconnect.ReconnectingReader`
(unplug and replug: reconnect with backoff, counted, ``connected`` 0/1 in
``agent.status``), stamps each chunk with the wall clock, feeds the core and yields
its records. Request/reply devices get their request every ``poll_s`` while the
port is open. ``recorder`` (a :class:`drivers.recording.StreamRecorder`) keeps
every chunk both ways for replay.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from drivers.recording import FROM_DEVICE, TO_DEVICE


class Core(Protocol):
    def feed(self, data: bytes, ts: float) -> list[Any]: ...

    def counters(self) -> dict[str, int | float]: ...


class SerialDeviceSource:
    def __init__(self, name: str, reader: Any, core: Core, *, poll: bytes | None = None,
                 poll_s: float = 0.2, clock: Callable[[], float] = time.time,
                 recorder: Any = None) -> None:
        self.name = name
        self.reader = reader
        self.core = core
        self.poll = poll
        self.poll_s = poll_s
        self._clock = clock
        self._rec = recorder
        self._stop = threading.Event()
        self._running = False
        self.polls = 0

    def __iter__(self) -> Iterator[Any]:
        self._running = True
        try:
            yield from self._loop()
        finally:
            # closed here, on the reading thread: closing a pyserial port under a
            # blocked read on another thread makes pyserial fail inside os.read
            self._running = False
            self.reader.close()

    def _loop(self) -> Iterator[Any]:
        next_poll = 0.0
        timeout = min(self.poll_s, 0.2) if self.poll else 0.2
        while not self._stop.is_set():
            if self.poll is not None and self.reader.state == "open":
                mono = time.monotonic()
                if mono >= next_poll:
                    next_poll = mono + self.poll_s
                    if self.reader.write(self.poll):
                        self.polls += 1
                        if self._rec is not None:
                            self._rec.write(self._clock(), TO_DEVICE, self.poll)
                timeout = max(0.001, min(0.2, next_poll - time.monotonic()))
            data = self.reader.read(timeout)
            if not data:
                continue
            ts = self._clock()
            if self._rec is not None:
                self._rec.write(ts, FROM_DEVICE, data)
            yield from self.core.feed(data, ts)

    def counters(self) -> dict[str, int | float]:
        out = {f"port.{k}": v for k, v in self.reader.counters().items()}
        out.update(self.core.counters())
        if self.poll is not None:
            out["polls"] = self.polls
        return out

    def close(self) -> None:
        """Stop; the port is closed by the reading thread within one read timeout."""
        self._stop.set()
        if not self._running:
            self.reader.close()
