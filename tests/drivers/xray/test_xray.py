"""X-ray folder: PNG + sidecar in any timing, damaged files counted, partial writes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import orjson
from PIL import Image

from drivers.xray.core import XrayCore
from drivers.xray.watcher import FolderWatcher, XrayFolderSource
from edge.courier.records import XrayImage
from edge.records import Malformed


def png_bytes(h: int = 40, w: int = 60, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


SIDE = orjson.dumps({"ts": 1700000000.5, "lane": "L1", "mm_per_px": 2.0, "belt_mps": 0.6})


def test_sidecar_after_png_fills_the_fields() -> None:
    core = XrayCore("L1")
    assert core.png("1700000000123_L1.png", png_bytes(), 1.0) == []
    (img,) = core.sidecar("1700000000123_L1.json", SIDE, 1.5)
    assert isinstance(img, XrayImage) and img.sidecar_ok
    assert img.ts == 1700000000.5 and img.mm_per_px == 2.0 and img.belt_mps == 0.6
    assert img.pixels.shape == (40, 60, 3) and img.pixels.dtype == np.uint8


def test_no_sidecar_defaults_after_wait_and_sidecar_first() -> None:
    core = XrayCore("L1", sidecar_wait_s=2.0, mm_per_px=1.5, belt_mps=0.5)
    core.png("1700000000123_L1.png", png_bytes(), 10.0)
    assert core.tick(11.9) == []
    (img,) = core.tick(12.0)
    assert isinstance(img, XrayImage) and not img.sidecar_ok
    assert img.ts == 1700000000.123 and img.mm_per_px == 1.5
    assert core.sidecar("1700000000200_L1.json", SIDE, 20.0) == []
    (img2,) = core.png("1700000000200_L1.png", png_bytes(), 20.1)
    assert isinstance(img2, XrayImage) and img2.sidecar_ok


def test_damaged_files_skipped_and_counted() -> None:
    core = XrayCore("L1")
    good = png_bytes()
    out = core.png("1700000000001_L1.png", b"", 1.0)
    out += core.png("1700000000002_L1.png", good[: len(good) // 2], 1.0)
    broken = bytearray(good)
    broken[40:60] = b"\x00" * 20  # IDAT damaged, ends still intact
    core.png("1700000000003_L1.png", bytes(broken), 1.0)
    out += core.sidecar("1700000000003_L1.json", SIDE, 1.1)
    core.png("1700000000004_L1.png", good, 1.0)
    out += core.sidecar("1700000000004_L1.json", b"{not json", 1.1)
    kinds = [type(x).__name__ for x in out]
    assert kinds == ["Malformed", "Malformed", "Malformed", "Malformed", "XrayImage"]
    c = core.counters()
    assert c["empty"] == 1 and c["truncated"] == 1 and c["corrupt"] == 1
    assert c["bad_sidecar"] == 1 and c["images"] == 1
    assert not out[-1].sidecar_ok  # type: ignore[union-attr]


def test_pending_is_bounded() -> None:
    core = XrayCore("L1", max_pending=4)
    out: list[object] = []
    for i in range(10):
        out += core.png(f"17000000{i:05d}_L1.png", png_bytes(8, 8), 1.0)
    assert len(out) == 6 and core.counters()["pending"] == 4
    assert core.counters()["pending_overflow"] == 6


def test_watcher_waits_for_a_file_being_written(tmp_path: Path) -> None:
    core = XrayCore("L1")
    w = FolderWatcher(tmp_path, core, settle_s=0.5, stale_s=1e12)
    data = png_bytes()
    f = tmp_path / "1700000000123_L1.png"
    f.write_bytes(data[:100])
    (tmp_path / "1700000000123_L2.png").write_bytes(data)  # another lane
    (tmp_path / "notes.txt").write_text("x")
    assert w.scan(100.0) == []
    assert w.scan(100.2) == []
    with f.open("ab") as fh:
        fh.write(data[100:])
    (got,) = w.scan(100.3)
    assert got == ("png", f.name, data)
    assert w.scan(100.4) == []  # handed over once
    t = tmp_path / "1700000000999_L1.png"
    t.write_bytes(data[:50])  # truncated for good
    assert w.scan(101.0) == []
    (late,) = w.scan(101.6)
    assert isinstance(core.png(late[1], late[2], 101.6)[0], Malformed)


def test_folder_source_end_to_end(tmp_path: Path) -> None:
    import threading
    import time

    core = XrayCore("L1", sidecar_wait_s=0.3)
    seen: list[str] = []
    src = XrayFolderSource(FolderWatcher(tmp_path, core, settle_s=0.2, stale_s=1e12),
                           poll_s=0.02, on_file=lambda ts, n, d: seen.append(n))
    got: list[object] = []
    th = threading.Thread(target=lambda: got.extend(src))
    th.start()
    try:
        (tmp_path / "1700000000001_L1.png").write_bytes(png_bytes())
        time.sleep(0.05)
        (tmp_path / "1700000000001_L1.json").write_bytes(SIDE)
        (tmp_path / "1700000000002_L1.png").write_bytes(png_bytes(seed=2))
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        src.close()
        th.join(5)
    imgs = [x for x in got if isinstance(x, XrayImage)]
    assert [i.sidecar_ok for i in imgs] == [True, False]
    assert seen == ["1700000000001_L1.png", "1700000000001_L1.json", "1700000000002_L1.png"]
