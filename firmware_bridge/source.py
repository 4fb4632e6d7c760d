"""The pipeline source of a bridge link: the records its device sends
(BaseStationEvent from a base station, PhotoEyeEvent from a station controller), in
arrival order, as the JSONL file source yields them from a file."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

from firmware_bridge.client import BridgeClient


class BridgeSource:
    def __init__(self, client: BridgeClient, *, poll_s: float = 0.1,
                 owns_client: bool = True) -> None:
        self.client = client
        self.owns_client = owns_client
        self.name = f"bridge:{client.name}"
        self.poll_s = poll_s
        self._closed = False
        self._started = False

    def __iter__(self) -> Iterator[Any]:
        self._started = True
        self.client.start()
        q = self.client.records
        while True:
            try:
                rec = q.get(timeout=self.poll_s)
            except queue.Empty:
                if self._closed:
                    if self.owns_client:
                        self.client.close()
                    return
                continue
            yield rec
            # drain without waiting while records are there
            while True:
                try:
                    rec = q.get_nowait()
                except queue.Empty:
                    break
                yield rec

    def close(self) -> None:
        """Stop after the records already received (none is dropped)."""
        self._closed = True
        if not self._started and self.owns_client:
            self.client.close()

    def counters(self) -> dict[str, int | float]:
        return self.client.counters()
