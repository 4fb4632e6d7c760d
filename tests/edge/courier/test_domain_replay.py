"""A depot recording replayed through assemble(): cores, X-ray core, assembly, parcel log."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import orjson
from PIL import Image

from drivers.recording import FROM_DEVICE, TO_DEVICE, Recorder
from drivers.serial.rfid import notice
from edge.assembly import assemble
from edge.config import parse_config
from edge.courier.replay import DepotReplaySource
from edge.pipeline import merge_by_time


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((50, 300, 3), 200, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def make_recording(folder: Path, n: int = 5, t0: float = 1.7e9) -> None:
    wb = folder.parent / "wb.jsonl"
    wb.write_text("".join(orjson.dumps({"waybill": f"SF{i:013d}", "declared": "books",
                                        "sender_phone": "13800000000"}).decode() + "\n"
                          for i in range(n)))
    rec = Recorder(folder, "L1", {"scanner": {"terminator": "crlf", "aim": "auto"},
                                  "scale": {"mode": "poll_si"}, "dims": {}, "rfid": {}}, wb)
    png = _png()
    for i in range(n):
        a = t0 + 3.0 * i
        code = f"]C1SF{i:013d}\r\n".encode()
        rec.streams["scanner"].write(a, FROM_DEVICE, code[:7])
        rec.streams["scanner"].write(a + 0.01, FROM_DEVICE, code[7:] + b"\x00\xff")
        t = a + 1.2
        for k, line in enumerate([b"S D      0.8 kg\r\n", b"S S      1.250 kg\r\n",
                                  b"S S      1.250 kg\r\n", b"S S      0.000 kg\r\n"]):
            rec.streams["scale"].write(t + 0.2 * k - 0.01, TO_DEVICE, b"SI\r\n")
            rec.streams["scale"].write(t + 0.2 * k, FROM_DEVICE, line)
        rec.streams["dims"].write(a + 4.7, FROM_DEVICE,
                                  b"\x02MAC,L 36.0,W 20.5,H 12.0cm,K 1.2,D 1.3kg,F0166,D\x03\r\n")
        rec.streams["rfid"].write(a + 0.3, FROM_DEVICE, notice(bytes([i] * 12)))
        ts = a + 6.0
        name = f"{int(ts * 1000)}_L1"
        rec.xray_file(ts + 0.8, name + ".png", png)
        if i != 2:  # parcel 2's sidecar never comes
            rec.xray_file(ts + 0.9, name + ".json", orjson.dumps(
                {"ts": ts, "lane": "L1", "mm_per_px": 1.5, "belt_mps": 0.5}))
    rec.close()


def test_replay_gives_every_parcel_and_is_deterministic(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    make_recording(folder)
    out = tmp_path / "parcels.jsonl"
    cfg = parse_config(f'[agent]\nid = "a"\ndata_dir = "{tmp_path}/d"\n'
                       f'[privacy]\nkey = "depot-test-key-0001"\n'
                       f'[depot]\nparcels_out = "{out}"\n')
    runs = []
    for _ in range(2):
        out.unlink(missing_ok=True)
        agent = assemble(cfg, mode="replay", sinks=[], inputs={"depot": [folder]})
        agent.pipeline.run(merge_by_time(agent.sources))
        agent.close()
        runs.append(out.read_bytes())
    assert runs[0] == runs[1]
    parcels = [orjson.loads(line) for line in runs[0].splitlines()]
    assert [p["waybill"] for p in parcels] == [f"SF{i:013d}" for i in range(5)]
    for i, p in enumerate(parcels):
        assert p["missing"] == [] and p["weight_kg"] == 1.25
        assert p["dims_cm"] == [36.0, 20.5, 12.0] and p["rfid_epcs"] == [f"{i:02X}" * 12]
        assert p["xray"] is not None
    assert any("no sidecar" in n for n in parcels[2]["notes"])
    assert b"13800000000" not in runs[0]


def test_replay_source_counts_noise_and_cut_tail(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    make_recording(folder, n=2)
    with (folder / "scale.rec").open("ab") as f:
        f.write(b"\x00\x01")  # the agent died mid-chunk
    src = DepotReplaySource(folder)
    recs = list(src)
    c = src.counters()
    assert c["truncated_tail"] == 1 and c["scanner.malformed"] == 2
    assert sum(type(r).__name__ == "XrayImage" for r in recs) == 2


def test_preflight_names_missing_devices_and_folders(tmp_path: Path) -> None:
    from drivers.transport.pty import PtyPair
    from edge.courier.domain import preflight

    pair = PtyPair("scanner")
    try:
        cfg = parse_config(f'[agent]\nid = "a"\ndata_dir = "{tmp_path}/d"\n'
                           f'[privacy]\nkey = "depot-test-key-0001"\n[depot]\n'
                           f'scanner_port = "{pair.slave_path}"\n'
                           f'scale_port = "{tmp_path}/ttyUSB9"\n'
                           f'xray_dir = "{tmp_path}/nope"\n')
        problems = {p.key: p.message for p in preflight(cfg, True)}
    finally:
        pair.close()
    assert set(problems) == {"depot.scale_port", "depot.xray_dir"}
    assert "unplugged" in problems["depot.scale_port"]
