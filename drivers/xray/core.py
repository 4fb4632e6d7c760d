"""X-ray image assembly from PNG and sidecar files, sans-IO (field-formats 2e).

In: ``png(name, data, now)`` and ``sidecar(name, data, now)`` for files named
``<epoch_ms>_<lane>.png`` / ``.json`` once they are complete, and ``tick(now)``.
Out: ``XrayImage`` records (pixels decoded with Pillow into a numpy uint8 HxWx3
array) and ``Malformed`` for truncated, empty or corrupt files.

The sidecar is written after the PNG: a PNG waits for it up to ``sidecar_wait_s``
and is then used with the defaults (``sidecar_ok=False``). A sidecar that came
before its PNG waits for it the same way. A corrupt sidecar is counted and the PNG
goes out with the defaults. Memory is bounded: at most ``max_pending`` PNGs (their
compressed bytes) wait; past that the oldest goes out early with the defaults, and
the names already handled are remembered for the last ``REMEMBER`` files only.
"""

from __future__ import annotations

import io
import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
from PIL import Image

from edge.courier.records import XrayImage
from edge.records import Malformed

NAME_RE = re.compile(r"(\d{10,14})_([A-Za-z0-9-]{1,16})\.(png|json)")
PNG_SIG = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"
REMEMBER = 4096
MAX_PIXELS = 40_000_000  # a 10 m parcel at 1 mm/px: beyond is a corrupt header


def png_complete(data: bytes) -> bool:
    """Signature at the start and the IEND chunk at the end."""
    return data.startswith(PNG_SIG) and data.endswith(PNG_END)


@dataclass(slots=True)
class _Pending:
    stem: str
    path: Path
    data: bytes
    since: float


class XrayCore:
    def __init__(self, lane: str | None, *, folder: Path = Path("."),
                 sidecar_wait_s: float = 2.0, mm_per_px: float = 1.5, belt_mps: float = 0.5,
                 max_pending: int = 32, source: str = "xray") -> None:
        self.lane = lane
        self.folder = folder
        self.sidecar_wait_s = sidecar_wait_s
        self.defaults = (mm_per_px, belt_mps)
        self.max_pending = max_pending
        self.source = source
        self._png: OrderedDict[str, _Pending] = OrderedDict()
        self._side: OrderedDict[str, tuple[dict[str, object] | None, float]] = OrderedDict()
        self._done: OrderedDict[str, None] = OrderedDict()
        self.counts: dict[str, int] = {}

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def _bad(self, name: str, reason: str, now: float, key: str) -> Malformed:
        self._count(key)
        return Malformed(self.source, name, reason, now)

    def wants(self, name: str) -> bool:
        """True for a file name of the format, of this lane, not handled yet."""
        m = NAME_RE.fullmatch(name)
        return m is not None and (self.lane is None or m.group(2) == self.lane) \
            and name not in self._done

    def png(self, name: str, data: bytes, now: float) -> list[XrayImage | Malformed]:
        self.remember(name)
        m = NAME_RE.fullmatch(name)
        if m is None or m.group(3) != "png":
            return [self._bad(name, "not an <epoch_ms>_<lane>.png name", now, "bad_name")]
        if not data:
            return [self._bad(name, "empty PNG", now, "empty")]
        if not png_complete(data):
            return [self._bad(name, f"truncated PNG ({len(data)} bytes)", now, "truncated")]
        stem = name[:-4]
        out: list[XrayImage | Malformed] = []
        self._png[stem] = _Pending(stem, self.folder / name, data, now)
        if stem in self._side:
            meta, _ = self._side.pop(stem)
            out += self._emit(self._png.pop(stem), meta, now)
        while len(self._png) > self.max_pending:
            self._count("pending_overflow")
            _, p = self._png.popitem(last=False)
            out += self._emit(p, None, now)
        return out

    def sidecar(self, name: str, data: bytes, now: float) -> list[XrayImage | Malformed]:
        self.remember(name)
        stem = name[:-5]
        out: list[XrayImage | Malformed] = []
        meta = self._parse_sidecar(data)
        if meta is None:
            out.append(self._bad(name, "corrupt sidecar, defaults used", now, "bad_sidecar"))
        pending = self._png.pop(stem, None)
        if pending is not None:
            out += self._emit(pending, meta, now)
        else:
            self._side[stem] = (meta, now)
            while len(self._side) > self.max_pending:
                self._side.popitem(last=False)
                self._count("orphan_sidecar")
        return out

    def tick(self, now: float) -> list[XrayImage | Malformed]:
        """PNGs whose sidecar did not come in time, with the defaults."""
        out: list[XrayImage | Malformed] = []
        while self._png:
            p = next(iter(self._png.values()))
            if now - p.since < self.sidecar_wait_s:
                break
            self._png.popitem(last=False)
            self._count("no_sidecar")
            out += self._emit(p, None, now)
        while self._side:
            stem, (_, since) = next(iter(self._side.items()))
            if now - since < 10 * max(self.sidecar_wait_s, 1.0):
                break
            self._side.popitem(last=False)
            self._count("orphan_sidecar")
        return out

    def flush(self, now: float) -> list[XrayImage | Malformed]:
        out: list[XrayImage | Malformed] = []
        while self._png:
            _, p = self._png.popitem(last=False)
            self._count("no_sidecar")
            out += self._emit(p, None, now)
        return out

    def remember(self, name: str) -> None:
        self._done[name] = None
        if len(self._done) > REMEMBER:
            self._done.popitem(last=False)

    @staticmethod
    def _parse_sidecar(data: bytes) -> dict[str, object] | None:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(obj, dict):
            return None
        for k in ("ts", "mm_per_px", "belt_mps"):
            v = obj.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                  or not math.isfinite(v) or (k != "ts" and v <= 0)):
                return None
        if obj.get("lane") is not None and not isinstance(obj.get("lane"), str):
            return None
        return obj

    def _emit(self, p: _Pending, meta: dict[str, object] | None,
              now: float) -> list[XrayImage | Malformed]:
        try:
            with Image.open(io.BytesIO(p.data)) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise ValueError(f"{img.width}x{img.height} pixels")
                pixels = np.asarray(img.convert("RGB"), dtype=np.uint8)
        except Exception as exc:  # Pillow raises many types for a damaged file
            return [self._bad(p.path.name, f"corrupt PNG: {type(exc).__name__}: {exc}", now,
                              "corrupt")]
        m = NAME_RE.fullmatch(p.path.name)
        assert m is not None
        mm, belt = self.defaults
        ts, lane = int(m.group(1)) / 1000.0, m.group(2)
        if meta is not None:
            ts = float(meta.get("ts", ts))  # type: ignore[arg-type]
            lane = str(meta.get("lane", lane))
            mm = float(meta.get("mm_per_px", mm))  # type: ignore[arg-type]
            belt = float(meta.get("belt_mps", belt))  # type: ignore[arg-type]
        self._count("images")
        return [XrayImage(ts, lane, p.path, pixels, mm, belt, meta is not None)]

    def counters(self) -> dict[str, int | float]:
        return {**dict(sorted(self.counts.items())), "pending": len(self._png)}
