"""Assembled parcels as JSON Lines, for the station's operators and for evaluation.

In: ``Parcel`` records. Out: one line per parcel in ``[depot] parcels_out``:
``{"ts", "lane", "seq", "waybill", "weight_kg", "dims_cm", "dim_weight_kg",
"rfid_epcs", "xray" (file name or null), "xray_ts", "missing", "notes",
"xray_exit_ts"}``. No personal field of the waybill record is written (the file
stays on the device, but there is no reason for phone numbers to be in it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from edge.courier.records import Parcel


def parcel_line(p: Parcel) -> dict[str, Any]:
    return {"ts": round(p.ts, 3), "lane": p.lane, "seq": p.seq, "waybill": p.waybill,
            "weight_kg": p.weight_kg, "dims_cm": list(p.dims_cm) if p.dims_cm else None,
            "dim_weight_kg": p.dim_weight_kg, "rfid_epcs": list(p.rfid_epcs),
            "xray": p.xray.path.name if p.xray is not None else None,
            "xray_ts": None if p.xray is None else round(p.xray.ts, 3),
            "missing": list(p.missing), "notes": list(p.notes),
            "xray_exit_ts": None if p.xray_exit_ts is None else round(p.xray_exit_ts, 3)}


class ParcelLog:
    name = "depot.parcel_log"
    consumes: tuple[type, ...] = (Parcel,)

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = path.open("ab")
        self.written = 0

    def feed(self, item: Any) -> Sequence[Any]:
        self._f.write(orjson.dumps(parcel_line(item)) + b"\n")
        self._f.flush()
        self.written += 1
        return ()

    def tick(self, now: float) -> Sequence[Any]:
        return ()

    def flush(self, now: float) -> Sequence[Any]:
        self._f.flush()
        return ()

    def counters(self) -> dict[str, int | float]:
        return {"written": self.written}

    def close(self) -> None:
        self._f.close()
