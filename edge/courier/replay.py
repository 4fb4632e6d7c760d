"""Replaying a depot recording (drivers/recording.py) through the live code path.

In: a recording folder. Out (iterating): the same records the live sources
produced -- ``ScanRead``, ``WeightReading``, ``DimsReading``, ``RfidRead``,
``XrayImage`` and ``Malformed`` -- from the same protocol cores and X-ray core, fed
the recorded chunks and files in time order, with the X-ray core ticked at every
recorded time (so "no sidecar after 2 s" is decided on recorded time, not on how
fast the replay runs). Deterministic: the same folder gives the same records.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from drivers.recording import FROM_DEVICE, read_manifest, read_stream, read_xray_index
from drivers.xray.core import XrayCore
from drivers.xray.watcher import hand_over
from edge.courier.station import make_core
from edge.errors import InputError


class DepotReplaySource:
    def __init__(self, folder: Path, *, sidecar_wait_s: float = 2.0, mm_per_px: float = 1.5,
                 belt_mps: float = 0.5) -> None:
        self.folder = folder
        self.name = f"depot.replay:{folder.name}"
        try:
            self.manifest = read_manifest(folder)
        except ValueError as exc:
            raise InputError(str(exc), source=str(folder)) from None
        self.lane = str(self.manifest.get("lane", "L1"))
        devices = self.manifest.get("devices", {})
        self.cores = {d: make_core(d, self.lane, o or {}) for d, o in devices.items()}
        self.xray = XrayCore(self.lane, folder=folder / "xray", sidecar_wait_s=sidecar_wait_s,
                             mm_per_px=mm_per_px, belt_mps=belt_mps, source="depot.xray")
        self.stats: dict[str, int] = {}
        self.chunks = 0

    def _events(self) -> Iterator[tuple[float, int, str, bytes]]:
        streams: list[Iterator[tuple[float, int, str, bytes]]] = []
        for i, dev in enumerate(sorted(self.cores)):
            path = self.folder / f"{dev}.rec"
            if path.exists():
                streams.append(self._device_chunks(path, i, dev))
        streams.append((ts, len(self.cores), "xray:" + name, data)
                       for ts, name, data in read_xray_index(self.folder, self.stats))
        return heapq.merge(*streams, key=lambda e: (e[0], e[1]))

    def _device_chunks(self, path: Path, order: int, dev: str
                       ) -> Iterator[tuple[float, int, str, bytes]]:
        for ts, direction, data in read_stream(path, self.stats):
            if direction == FROM_DEVICE:
                yield ts, order, dev, data

    def __iter__(self) -> Iterator[Any]:
        last = None
        for ts, _, dev, data in self._events():
            self.chunks += 1
            yield from self.xray.tick(ts)
            last = ts
            if dev.startswith("xray:"):
                name = dev[5:]
                kind = "png" if name.endswith(".png") else "json"
                yield from hand_over(self.xray, kind, name, data, ts)
            else:
                yield from self.cores[dev].feed(data, ts)
        if last is not None:
            yield from self.xray.tick(last + self.xray.sidecar_wait_s)
            yield from self.xray.flush(last + self.xray.sidecar_wait_s)

    def counters(self) -> dict[str, int | float]:
        out: dict[str, int | float] = {"chunks": self.chunks, **self.stats}
        for dev, core in self.cores.items():
            out.update({f"{dev}.{k}": v for k, v in core.counters().items()})
        out.update({f"xray.{k}": v for k, v in self.xray.counters().items()})
        return out

    def close(self) -> None:
        pass
