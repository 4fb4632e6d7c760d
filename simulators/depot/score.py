"""Per-piece assembly accuracy: assembled parcels (``[depot] parcels_out``) vs the truth.

Each truth parcel is matched to the assembled parcel with its waybill, else (no
barcode read) to the unmatched assembled parcel nearest its anchor time within
``max_dt_s``. Per piece, a parcel is *right* when:

- waybill: the assembled waybill equals the truth's (or both are absent when the
  scanner could not read it);
- weight: within ``weight_tol_kg`` of the truth (the scale's resolution);
- dims: each of L/W/H within ``dims_tol_cm``;
- image: the X-ray file is the parcel's own;

and, for a piece the station itself failed to produce (``expected_missing``), when
the assembly reports it missing. A piece the truth marks ``optional_missing`` (an
unplugged device) is right either way if present-and-correct or missing. A truth
parcel with no assembled parcel is wrong on every piece; assembled parcels with no
truth are counted as ``extra``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

PIECES = ("waybill", "weight", "dims", "image")
_MISSING_NAME = {"waybill": "barcode", "weight": "weight", "dims": "dims", "image": "xray"}


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _piece_ok(piece: str, t: dict[str, Any], p: dict[str, Any], weight_tol: float,
              dims_tol: float) -> bool:
    name = _MISSING_NAME[piece]
    expected_missing = name in t["expected_missing"]
    missing = name in p["missing"]
    if expected_missing:
        return missing
    if missing and name in t["optional_missing"]:
        return True
    if piece == "waybill":
        return bool(p["waybill"] == t["waybill"])
    if piece == "weight":
        return p["weight_kg"] is not None and abs(p["weight_kg"] - t["weight_kg"]) <= weight_tol
    if piece == "dims":
        return p["dims_cm"] is not None and all(
            abs(a - b) <= dims_tol for a, b in zip(p["dims_cm"], t["dims_cm"], strict=True))
    return bool(p["xray"] == t["xray"])


def score(truth: list[dict[str, Any]], parcels: list[dict[str, Any]], *,
          weight_tol_kg: float = 0.0051, dims_tol_cm: float = 0.6,
          max_dt_s: float = 1.0) -> dict[str, Any]:
    by_code = {p["waybill"]: p for p in parcels if p["waybill"]}
    used: set[int] = set()
    pairs: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    pending = []
    for t in truth:
        p = by_code.get(t["waybill"])
        if p is not None and id(p) not in used:
            used.add(id(p))
            pairs.append((t, p))
        else:
            pending.append(t)
    for t in pending:
        cands = [p for p in parcels if id(p) not in used and abs(p["ts"] - t["ts"]) <= max_dt_s]
        best = min(cands, key=lambda p: abs(p["ts"] - t["ts"]), default=None)
        if best is not None:
            used.add(id(best))
        pairs.append((t, best))
    right = dict.fromkeys(PIECES, 0)
    all_right = 0
    wrong: list[dict[str, Any]] = []
    for t, p in pairs:
        ok = {k: p is not None and _piece_ok(k, t, p, weight_tol_kg, dims_tol_cm)
              for k in PIECES}
        for k, v in ok.items():
            right[k] += v
        if all(ok.values()):
            all_right += 1
        elif len(wrong) < 20:
            wrong.append({"seq": t["seq"], "waybill": t["waybill"],
                          "wrong": [k for k, v in ok.items() if not v],
                          "got": None if p is None else {k: p.get(k) for k in (
                              "waybill", "weight_kg", "dims_cm", "xray", "missing", "notes")},
                          "truth_notes": t["notes"]})
    n = len(truth)
    return {"parcels": n, "assembled": len(parcels), "matched": sum(p is not None for _, p in pairs),
            "extra": len(parcels) - len(used),
            "accuracy": {k: round(v / n, 5) if n else 0.0 for k, v in right.items()},
            "all_four": round(all_right / n, 5) if n else 0.0, "wrong": wrong}
