"""The depot records are frozen, slotted and carry what the decision stages read."""

from __future__ import annotations

import dataclasses

import pytest

from edge.courier.records import DimsReading, Parcel, ScanRead, Waybill


def test_dims_cm_only_when_all_three_read() -> None:
    full = DimsReading(ts=1.0, lane="L1", ok=True, length_cm=36.0, width_cm=20.5,
                       height_cm=12.0)
    assert full.dims_cm == (36.0, 20.5, 12.0)
    part = DimsReading(ts=1.0, lane="L1", ok=False, length_cm=36.0, flags=("W:unstable",))
    assert part.dims_cm is None


def test_readings_are_frozen_and_slotted() -> None:
    r = ScanRead(ts=1.0, lane="L1", code="SF1234567890123")
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.code = "x"  # type: ignore[misc]
    assert not hasattr(r, "__dict__")


def test_parcel_fields_match_the_contract() -> None:
    names = [f.name for f in dataclasses.fields(Parcel)]
    assert names == ["ts", "lane", "seq", "waybill", "waybill_record", "weight_kg", "dims_cm",
                     "dim_weight_kg", "rfid_epcs", "xray", "missing", "notes", "xray_exit_ts"]
    p = Parcel(ts=1.0, lane="L1", seq=1, waybill="SF1234567890123",
               waybill_record=Waybill(waybill="SF1234567890123", declared="clothes"),
               weight_kg=1.2, dims_cm=None, dim_weight_kg=None, rfid_epcs=(), xray=None,
               missing=("dims", "xray"), notes=(), xray_exit_ts=None)
    assert p.waybill_record is not None and p.waybill_record.declared == "clothes"
