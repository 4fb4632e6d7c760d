"""Parcel assembly: lane order, time windows, photo-eyes, what is missing and why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.courier.assembly import Geometry, ParcelAssembler
from edge.courier.records import (
    DimsReading,
    Parcel,
    RfidRead,
    ScanRead,
    Waybill,
    WeightReading,
    XrayImage,
)
from edge.records import PhotoEyeEvent

G = Geometry()  # 0.5 m/s: scale +1.2 s, dims ~ +4.7 s, X-ray +6 s
WAYBILLS = {f"SF{n:013d}": Waybill(f"SF{n:013d}", declared="clothes") for n in range(1, 50)}


def station(n: int, t0: float = 1000.0, gap: float = 3.0, *, skip: dict[int, str] | None = None,
            xray_order: list[int] | None = None) -> list[object]:
    """Readings of ``n`` parcels as a real station produces them, time-ordered except the
    X-ray images (which arrive when the machine writes them)."""
    skip = skip or {}
    recs: list[tuple[float, object]] = []
    xr: list[XrayImage] = []
    for i in range(n):
        a = t0 + i * gap
        code = f"SF{i + 1:013d}"
        if skip.get(i) != "barcode":
            recs.append((a + 0.05, ScanRead(a + 0.05, "L1", code)))
        else:
            recs.append((a + 0.3, ScanRead(a + 0.3, "L1", "", noread=True, valid=False)))
        if skip.get(i) != "weight":
            t = a + G.scale_at_m / G.belt_mps
            for k, (st, kg) in enumerate([("dynamic", 0.7), ("dynamic", 1.1),
                                          ("stable", 1.0 + i / 100), ("stable", 1.0 + i / 100)]):
                recs.append((t + 0.2 * k, WeightReading(t + 0.2 * k, "L1", st, kg=kg)))
            recs.append((t + 1.0, WeightReading(t + 1.0, "L1", "stable", kg=0.0)))
        t = a + (G.dims_at_m + 0.3) / G.belt_mps
        recs.append((t, DimsReading(t, "L1", ok=True, length_cm=30.0, width_cm=20.0,
                                    height_cm=10.0 + i, weight_kg=1.0, dim_weight_kg=1.2)))
        recs.append((a + 0.2, RfidRead(a + 0.2, "L1", f"E2{i:022X}", -50, 0x3000)))
        if skip.get(i) != "xray":
            ts = a + G.xray_at_m / G.belt_mps
            xr.append(XrayImage(ts, "L1", Path(f"{int(ts * 1000)}_L1.png"),
                                np.zeros((100, 200, 3), np.uint8), 1.5, 0.5, True))
    order = xray_order or list(range(len(xr)))
    for j, k in enumerate(order):  # written 1 s after entry, in the given order
        recs.append((xr[j].ts + 1.0 + 0.01 * k, xr[k]))
    recs.sort(key=lambda p: p[0])
    return [r for _, r in recs]


def run(recs: list[object], asm: ParcelAssembler | None = None) -> list[Parcel]:
    asm = asm or ParcelAssembler("L1", G, WAYBILLS.get)
    out: list[Parcel] = []
    for r in recs:
        asm.feed(r)
        out += asm.tick(r.ts)  # type: ignore[attr-defined]
    return out + asm.flush()


def test_every_piece_tied_to_the_right_parcel() -> None:
    parcels = run(station(20))
    assert [p.waybill for p in parcels] == [f"SF{i + 1:013d}" for i in range(20)]
    assert [p.seq for p in parcels] == list(range(1, 21))
    for i, p in enumerate(parcels):
        assert p.missing == () and p.weight_kg == 1.0 + i / 100
        assert p.dims_cm == (30.0, 20.0, 10.0 + i)
        assert p.rfid_epcs == (f"E2{i:022X}",)
        assert p.xray is not None and abs(p.xray.ts - (p.ts + 6.0)) < 0.1
        assert p.waybill_record is WAYBILLS[p.waybill]  # type: ignore[index]
        assert p.xray_exit_ts is not None and p.xray_exit_ts > p.xray.ts


def test_interleaved_xray_files_follow_time_not_arrival() -> None:
    order = [1, 0, 3, 2, 5, 4]
    parcels = run(station(6, gap=2.5, xray_order=order))
    for p in parcels:
        assert p.xray is not None and abs(p.xray.ts - (p.ts + 6.0)) < 0.1


def test_missing_pieces_named_with_reasons() -> None:
    parcels = run(station(6, skip={1: "barcode", 3: "weight", 4: "xray"}))
    assert len(parcels) == 6
    # complete parcels go out at once; incomplete ones wait for their pieces first
    assert [p.seq for p in parcels] == [1, 2, 3, 4, 5, 6]
    parcels.sort(key=lambda p: p.ts)
    assert parcels[1].missing == ("barcode",) and "barcode: scanner reported no read" in \
        parcels[1].notes
    assert parcels[3].missing == ("weight",)
    assert parcels[4].missing == ("xray",)
    assert parcels[0].missing == ()


def test_double_read_unknown_waybill_and_unstable_weight() -> None:
    recs: list[object] = [ScanRead(10.0, "L1", "SF0000000000001"),
                          ScanRead(10.2, "L1", "SF0000000000001"),
                          WeightReading(11.2, "L1", "dynamic", kg=2.0),
                          WeightReading(11.4, "L1", "dynamic", kg=2.2),
                          WeightReading(12.0, "L1", "stable", kg=0.0),
                          ScanRead(14.0, "L1", "ZZ9999999999"),
                          ScanRead(14.1, "L1", "SF0000000000002")]
    parcels = run(recs)
    assert len(parcels) == 2
    a, b = parcels
    assert "barcode: read 2 times" in a.notes and a.waybill == "SF0000000000001"
    assert a.weight_kg is None and "weight" in a.missing
    assert any("never stable" in n for n in a.notes)
    assert b.waybill == "SF0000000000002"  # the only code with a waybill record
    assert any("2 different codes" in n for n in b.notes)


def test_cross_read_tag_stays_with_its_own_parcel() -> None:
    recs = station(3)
    # parcel 1's tag read weakly while parcel 2 passes the antenna
    recs.append(RfidRead(1003.25, "L1", f"E2{0:022X}", -75, 0x3000))
    recs.sort(key=lambda r: r.ts)  # type: ignore[attr-defined]
    parcels = run(recs)
    assert parcels[0].rfid_epcs == (f"E2{0:022X}",)
    assert parcels[1].rfid_epcs == (f"E2{1:022X}",)
    assert any("cross-read" in n for n in parcels[1].notes)


def test_photo_eyes_anchor_parcels_and_measure_length() -> None:
    asm = ParcelAssembler("L1", G, WAYBILLS.get)
    recs: list[object] = []
    for i in range(4):
        a = 100.0 + 3 * i
        recs += [PhotoEyeEvent(a, "L1", "scan", True, 2 * i),
                 ScanRead(a + 0.4, "L1", f"SF{i + 1:013d}"),
                 PhotoEyeEvent(a + 1.2, "L1", "scan", False, 2 * i + 1)]
        t = a + (G.dims_at_m + 0.6) / G.belt_mps
        recs.append(DimsReading(t, "L1", ok=True, length_cm=60.0, width_cm=20.0, height_cm=9.0))
    recs.sort(key=lambda r: r.ts)  # type: ignore[attr-defined]
    parcels = run(recs, asm)
    assert [p.waybill for p in parcels] == [f"SF{i + 1:013d}" for i in range(4)]
    assert all(p.dims_cm == (60.0, 20.0, 9.0) for p in parcels)
    assert [p.ts for p in parcels] == [100.0, 103.0, 106.0, 109.0]


def test_reading_without_a_scan_opens_a_parcel_and_other_lanes_ignored() -> None:
    asm = ParcelAssembler("L1", G, WAYBILLS.get)
    img = XrayImage(56.0, "L1", Path("x.png"), None, 1.5, 0.5, False)
    asm.feed(img)
    asm.feed(ScanRead(50.0, "L2", "SF0000000000001"))
    (p,) = asm.flush()
    assert p.missing == ("barcode", "weight", "dims")
    assert any("found by its xray" in n for n in p.notes)
    assert asm.counters()["other_lane"] == 1


def test_stage_emits_the_parcel_on_its_xray_image_even_with_a_piece_missing() -> None:
    from edge.courier.assembly import AssemblyStage

    stage = AssemblyStage(ParcelAssembler("L1", G, WAYBILLS.get))
    recs = [r for r in station(2, skip={0: "weight"}) if r.ts < 1008.0]  # type: ignore[attr-defined]
    got: list[object] = []
    for r in recs:
        got += stage.feed(r)
        if got:
            break
    (p,) = got
    assert isinstance(p, Parcel) and isinstance(r, XrayImage)  # emitted on the image itself
    assert p.waybill == "SF0000000000001" and p.missing == ("weight",)
    assert p.xray_exit_ts == pytest.approx(r.ts + (G.xray_len_m + 200 * 1.5 / 1000) / 0.5)
