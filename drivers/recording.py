"""Recording format of a depot station, for ``edge-agent replay --depot DIR``.

A recording is a folder:

- ``manifest.json``: ``{"format": "afe-depot-recording/1", "lane": "L1",
  "started": <epoch s>, "devices": {"scanner": {"terminator": "crlf", "aim": "auto"},
  "scale": {}, "dims": {}, "rfid": {}}}`` -- the devices recorded and the protocol
  options their cores need;
- ``<device>.rec`` per serial device: a sequence of chunks, each a 13-byte header
  ``<d B I`` (little-endian: receive time in epoch seconds as a float64, direction 0
  from the device / 1 to the device, payload length) followed by the payload -- the
  raw bytes exactly as one read returned them (noise and split reads included);
- ``xray.jsonl``: one line per X-ray file handed to the core, ``{"ts": <time it was
  complete>, "file": "<epoch_ms>_<lane>.png"}``, with the bytes in ``xray/<file>``
  (a copy of what was read, so a truncated file stays truncated);
- ``waybills.jsonl``: the waybill export as it was when recording started.

A chunk cut off at the end (the agent was killed) is ignored and counted. Replay
runs the same protocol cores, X-ray core and assembly over these, in time order.
"""

from __future__ import annotations

import shutil
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

FORMAT = "afe-depot-recording/1"
HEADER = struct.Struct("<dBI")
FROM_DEVICE, TO_DEVICE = 0, 1
FLUSH_S = 1.0


class StreamRecorder:
    """Appends one device's chunks (called from that device's thread only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: BinaryIO = path.open("ab")
        self._last_flush = time.monotonic()
        self.chunks = 0
        self.closed = False

    def write(self, ts: float, direction: int, data: bytes) -> None:
        if self.closed:  # the agent is stopping; the device thread may still be reading
            return
        self._f.write(HEADER.pack(ts, direction, len(data)) + data)
        self.chunks += 1
        if time.monotonic() - self._last_flush >= FLUSH_S:
            self._f.flush()
            self._last_flush = time.monotonic()

    def close(self) -> None:
        self.closed = True
        self._f.close()


class Recorder:
    """A recording folder being written by a live agent."""

    def __init__(self, folder: Path, lane: str, devices: dict[str, dict[str, Any]],
                 waybills: Path | None = None, started: float | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "xray").mkdir(exist_ok=True)
        (folder / "manifest.json").write_bytes(orjson.dumps(
            {"format": FORMAT, "lane": lane, "started": time.time() if started is None else started, "devices": devices},
            option=orjson.OPT_INDENT_2))
        if waybills is not None and waybills.exists() \
                and waybills.resolve() != (folder / "waybills.jsonl").resolve():
            shutil.copyfile(waybills, folder / "waybills.jsonl")
        self.streams = {name: StreamRecorder(folder / f"{name}.rec") for name in devices}
        self._xlock = threading.Lock()
        self._xindex = (folder / "xray.jsonl").open("ab")
        self.xray_files = 0

    def xray_file(self, ts: float, name: str, data: bytes) -> None:
        with self._xlock:
            if self._xindex.closed:
                return
            (self.folder / "xray" / name).write_bytes(data)
            self._xindex.write(orjson.dumps({"ts": ts, "file": name}) + b"\n")
            self._xindex.flush()
            self.xray_files += 1

    def close(self) -> None:
        for s in self.streams.values():
            s.close()
        with self._xlock:
            self._xindex.close()


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest; ValueError names what is wrong."""
    try:
        man = orjson.loads((folder / "manifest.json").read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"{folder}: no readable manifest.json ({exc})") from None
    if not isinstance(man, dict) or man.get("format") != FORMAT:
        raise ValueError(f"{folder}: manifest format is not {FORMAT}")
    return man


def read_stream(path: Path, stats: dict[str, int] | None = None
                ) -> Iterator[tuple[float, int, bytes]]:
    """(ts, direction, data) chunks of one device file; a cut-off tail is counted."""
    with path.open("rb") as f:
        while True:
            head = f.read(HEADER.size)
            if not head:
                return
            if len(head) < HEADER.size:
                break
            ts, direction, n = HEADER.unpack(head)
            data = f.read(n)
            if len(data) < n:
                break
            yield ts, direction, data
    if stats is not None:
        stats["truncated_tail"] = stats.get("truncated_tail", 0) + 1


def read_xray_index(folder: Path, stats: dict[str, int] | None = None
                    ) -> Iterator[tuple[float, str, bytes]]:
    """(ts, file name, bytes) of the recorded X-ray files, in recorded order."""
    index = folder / "xray.jsonl"
    if not index.exists():
        return
    for line in index.read_bytes().splitlines():
        try:
            obj = orjson.loads(line)
            ts, name = float(obj["ts"]), str(obj["file"])
            data = (folder / "xray" / Path(name).name).read_bytes()
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, OSError):
            if stats is not None:
                stats["bad_index_lines"] = stats.get("bad_index_lines", 0) + 1
            continue
        yield ts, name, data
