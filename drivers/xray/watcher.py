"""Listing the X-ray folder: which files are complete, handed to :class:`XrayCore`.

``FolderWatcher.scan(now)`` lists the folder (``os.scandir``) and returns
``(kind, name, data)`` for each file of the ``<epoch_ms>_<lane>`` format that is
complete: a PNG once it ends with its IEND chunk, a sidecar once it parses as JSON,
and either once its size has not changed for ``settle_s`` (the core then counts it
as truncated, empty or corrupt). A file still being written is therefore read again
on the next scan, never used half-written. Files older than ``stale_s`` when first
seen (an archive left from yesterday) are skipped and counted. Memory: the sizes of
files under observation, bounded by what the folder holds that is not yet handled.

``XrayFolderSource`` is the live source: it scans every ``poll_s``, feeds the core,
and yields what the core gives; ``on_file`` (the recorder) sees every file handed over.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from drivers.xray.core import NAME_RE, XrayCore, png_complete


class FolderWatcher:
    def __init__(self, folder: Path, core: XrayCore, *, settle_s: float = 0.5,
                 stale_s: float = 120.0) -> None:
        self.folder = folder
        self.core = core
        self.settle_s = settle_s
        self.stale_s = stale_s
        self._seen: dict[str, tuple[int, float]] = {}  # name -> (size, since)
        self.stale = 0
        self.scans = 0
        self.list_errors = 0

    def scan(self, now: float) -> list[tuple[str, str, bytes]]:
        self.scans += 1
        ready: list[tuple[str, str, bytes]] = []
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            self.list_errors += 1
            return ready
        present = set()
        for e in entries:
            name = e.name
            if not self.core.wants(name):
                continue
            present.add(name)
            try:
                size = e.stat().st_size
            except OSError:
                continue  # vanished between listing and stat
            prev = self._seen.get(name)
            if prev is None:
                m = NAME_RE.fullmatch(name)
                if m is not None and int(m.group(1)) / 1000.0 < now - self.stale_s:
                    self.stale += 1
                    self.core.remember(name)
                    continue
                prev = self._seen[name] = (size, now)
            elif prev[0] != size:
                prev = self._seen[name] = (size, now)
            settled = now - prev[1] >= self.settle_s
            try:
                data = (self.folder / name).read_bytes()
            except OSError:
                continue
            kind = "png" if name.endswith(".png") else "json"
            if settled or (kind == "png" and png_complete(data)) or \
                    (kind == "json" and _is_json(data)):
                ready.append((kind, name, data))
                self._seen.pop(name, None)
                self.core.remember(name)  # handed over once, whatever the core makes of it
        for name in list(self._seen):
            if name not in present:  # deleted before it was complete
                del self._seen[name]
        ready.sort(key=lambda r: (r[1][:-5] if r[0] == "json" else r[1][:-4], r[0] == "json"))
        return ready

    def counters(self) -> dict[str, int | float]:
        return {"scans": self.scans, "stale": self.stale, "list_errors": self.list_errors,
                "watching": len(self._seen)}


def _is_json(data: bytes) -> bool:
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True


def hand_over(core: XrayCore, kind: str, name: str, data: bytes, now: float) -> list[Any]:
    """One complete file into the core (the same call live and in replay)."""
    return core.png(name, data, now) if kind == "png" else core.sidecar(name, data, now)


class XrayFolderSource:
    """Live source of ``XrayImage`` (and ``Malformed``) from a watched folder."""

    def __init__(self, watcher: FolderWatcher, *, poll_s: float = 0.1,
                 clock: Callable[[], float] = time.time,
                 on_file: Callable[[float, str, bytes], None] | None = None,
                 name: str = "depot.xray") -> None:
        self.name = name
        self.watcher = watcher
        self.core = watcher.core
        self.poll_s = poll_s
        self._clock = clock
        self._on_file = on_file
        self._stop = threading.Event()

    def __iter__(self) -> Iterator[Any]:
        while not self._stop.is_set():
            now = self._clock()
            for kind, fname, data in self.watcher.scan(now):
                if self._on_file is not None:
                    self._on_file(now, fname, data)
                yield from hand_over(self.core, kind, fname, data, now)
            yield from self.core.tick(now)
            self._stop.wait(self.poll_s)
        yield from self.core.flush(self._clock())

    def counters(self) -> dict[str, int | float]:
        return {**self.core.counters(), **self.watcher.counters()}

    def close(self) -> None:
        self._stop.set()
