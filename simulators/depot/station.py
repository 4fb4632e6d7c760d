"""A whole depot station, simulated: what its devices send, when, and the truth.

``plan_station(cfg)`` draws the parcels (contents and X-ray images from
``simulators/depot/contents.py`` and ``xray.py``, the parcel helper's physics) and
lays them on the belt: each parcel's leading edge passes the scanner at its anchor
time, then the scale, the dimensioner, the RFID antenna and the X-ray tunnel at
the distances of the geometry. What every device sends follows from that, through
device *models* that speak the real protocols (field-formats 2a-2e):

- scanner: the decode with an optional AIM prefix while the label passes, sometimes
  a NoRead, sometimes a double read;
- scale (MT-SICS): answers SI/S with ``S D`` while the parcel moves onto it, ``S S``
  once it settled (rounded to the scale's 3 decimals), ``S D`` again while it leaves,
  ``S S 0.000`` when empty; some parcels never settle (weight missing);
- dimensioner (Cubiscan): MN until a parcel has passed its light curtain, then one
  MA reply with L/W/H and K/D (cm/kg or in/lb); a few replies carry unstable fields;
- RFID (M100): inventory notices for the tags in the antenna's field, RSSI falling
  with distance, some weak cross-reads of the previous parcel's tag;
- X-ray: a PNG written once the parcel has left the tunnel, its sidecar after it;
  neighbours' files sometimes in swapped order, a few sidecars never come and a few
  PNGs are truncated.

Plus noise bursts, reads split into several chunks, and unplugs of a device.
Everything is deterministic in the seed. ``speed`` runs the whole station faster:
the belt moves ``speed`` times faster and every delay is ``speed`` times shorter
(configure the agent with ``belt_mps`` times ``speed``).

The truth file has one line per parcel: anchor time, waybill, weight, dimensions,
tags, X-ray file, contents and declaration, and the pieces the station itself
failed to produce (``expected_missing``) or may have lost to an unplug
(``optional_missing``). ``simulators/depot/score.py`` compares parcels with it.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from drivers.serial.rfid import CMD_ERROR, T_RESP, frame, notice
from simulators.depot.contents import ParcelSpec, sample_parcel

PREFIXES = ("SF", "YT", "JT", "ZTO", "YD")
FIELD_M = 0.4  # RFID antenna field, either side
SCALE_SETTLE_S = 0.25  # real seconds a parcel takes to settle once fully on the scale


@dataclass
class StationConfig:
    """Knobs of the simulated station (times in real seconds, distances in metres)."""

    parcels: int = 100
    seed: int = 1
    speed: float = 1.0
    lane: str = "L1"
    profile: str = "train"
    start_ts: float = 1_767_225_600.0  # 2026-01-01T00:00Z (recordings); live: now
    belt_mps: float = 0.5
    scale_at_m: float = 0.6
    scale_len_m: float = 0.9
    dims_at_m: float = 2.0
    rfid_at_m: float = 0.0
    xray_at_m: float = 3.0
    xray_len_m: float = 1.0
    xray_to_diverter_m: float = 2.0  # X-ray exit to the diverter's pusher
    gap_m: tuple[float, float] = (1.25, 1.9)
    mm_per_px: float = 1.5
    aim: str = "]C1"
    terminator: bytes = b"\r\n"
    dims_unit: str = "cm"  # or "in" (then lb)
    p_noread: float = 0.01
    p_double: float = 0.03
    p_unstable_weight: float = 0.005
    p_dims_unstable: float = 0.005
    p_cross_read: float = 0.3  # per tagged parcel: its tag read weakly at the next one
    p_no_sidecar: float = 0.01
    p_truncated_png: float = 0.003
    p_swap_xray: float = 0.05
    p_noise: float = 0.03  # per device and parcel: a burst of garbage bytes
    p_false_declaration: float = -1.0  # < 0: as the contents model draws it
    unplugs: int = 1
    unplug_s: float = 2.0
    render: str = "physics"  # "flat": a plain image of the parcel's size (benchmarks)
    threat_rates: tuple[float, float, float] | None = None  # card, gold, cash; None: default


@dataclass
class PlannedParcel:
    seq: int
    anchor: float  # station seconds
    length_m: float
    spec: ParcelSpec
    waybill: str
    scan_events: list[tuple[float, bytes]] = field(default_factory=list)
    weight_shown: float | None = None
    stable: bool = True
    dims_at: float = 0.0
    dims_reply: bytes = b""
    epcs: list[bytes] = field(default_factory=list)
    xray_entry: float = 0.0
    xray_write: float = 0.0
    xray_png: bytes = b""
    sidecar: bytes | None = None
    truncated: bool = False
    expected_missing: set[str] = field(default_factory=set)
    optional_missing: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


@dataclass
class StationPlan:
    cfg: StationConfig
    parcels: list[PlannedParcel]
    waybills: list[dict[str, Any]]
    unplugs: list[tuple[str, float, float]]  # (device, from, to) station seconds
    noise: dict[str, list[tuple[float, bytes]]]
    duration: float

    def wall(self, t: float) -> float:
        """Epoch time of station second ``t`` (the station runs ``speed`` times faster)."""
        return self.cfg.start_ts + t / self.cfg.speed


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _phone(rng: random.Random) -> str:
    return "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))


def plan_station(cfg: StationConfig) -> StationPlan:
    """Draw the parcels and everything the devices will send (no I/O, no clock)."""
    rng = random.Random(cfg.seed)
    nrng = np.random.default_rng(cfg.seed)
    v = cfg.belt_mps
    parcels: list[PlannedParcel] = []
    waybills: list[dict[str, Any]] = []
    t = 2.0
    used: set[str] = set()
    for i in range(cfg.parcels):
        spec = sample_parcel(nrng, cfg.profile, rates=None if cfg.threat_rates is None else dict(
            zip(("card_batch", "gold", "cash"), cfg.threat_rates, strict=True)))
        length = spec.size_mm[0] / 1000.0
        while True:
            prefix = rng.choice(PREFIXES)
            code = prefix + "".join(rng.choice("0123456789") for _ in range(15 - len(prefix)))
            if code not in used:
                used.add(code)
                break
        p = PlannedParcel(i + 1, t, length, spec, code)
        _plan_scan(cfg, rng, p)
        _plan_scale(cfg, rng, p)
        _plan_dims(cfg, rng, p)
        _plan_xray(cfg, rng, nrng, p)
        if spec.rfid_tags:
            p.epcs = [bytes([0xE2, 0x80]) + rng.randbytes(10) for _ in range(spec.rfid_tags)]
        honest = spec.declaration_honest
        if cfg.p_false_declaration >= 0:
            honest = rng.random() >= cfg.p_false_declaration
        waybills.append({"waybill": code, "declared": spec.declared,
                         "declared_value_cny": spec.declared_value_cny,
                         "sender_verified": spec.sender_verified,
                         "sender_id": "".join(rng.choice("0123456789") for _ in range(17)) + "X",
                         "sender_phone": _phone(rng), "receiver_phone": _phone(rng),
                         "origin": rng.choice(["Yiwu", "Hangzhou", "Ningbo", "Wenzhou"]),
                         "dest": rng.choice(["Shenzhen", "Beijing", "Chengdu", "Xi'an"]),
                         "_honest": honest})
        parcels.append(p)
        t += (length + rng.uniform(*cfg.gap_m)) / v
    for a, b in zip(parcels, parcels[1:], strict=False):  # neighbours' X-ray files swapped
        if rng.random() < cfg.p_swap_xray and b.xray_write - a.xray_write < 3.0:
            a.xray_write, b.xray_write = b.xray_write, a.xray_write
            a.notes.append("xray file written after the next parcel's")
    duration = t + (cfg.xray_at_m + cfg.xray_len_m + 1.0) / v + 2.0
    unplugs = []
    for k in range(cfg.unplugs):
        dev = ("scanner", "scale", "dims", "rfid")[(cfg.seed + k) % 4]
        at = duration * (k + 1) / (cfg.unplugs + 1)
        unplugs.append((dev, at, at + cfg.unplug_s))
    noise: dict[str, list[tuple[float, bytes]]] = {"scanner": []}
    for p in parcels:
        if rng.random() < cfg.p_noise:
            noise["scanner"].append((p.anchor - 0.5, rng.randbytes(rng.randrange(5, 40))))
    _mark_unplugged(cfg, parcels, unplugs)
    return StationPlan(cfg, parcels, waybills, unplugs, noise, duration)


def _plan_scan(cfg: StationConfig, rng: random.Random, p: PlannedParcel) -> None:
    v = cfg.belt_mps
    if rng.random() < cfg.p_noread:
        p.scan_events.append((p.anchor + p.length_m / v, b"NoRead" + cfg.terminator))
        p.expected_missing.add("barcode")
        p.notes.append("scanner: no read")
        return
    t = p.anchor + rng.uniform(0.02, 0.5) * p.length_m / v
    line = (cfg.aim + p.waybill).encode() + cfg.terminator
    p.scan_events.append((t, line))
    if rng.random() < cfg.p_double:
        p.scan_events.append((t + rng.uniform(0.05, 0.2), line))
        p.notes.append("scanner: double read")


def _plan_scale(cfg: StationConfig, rng: random.Random, p: PlannedParcel) -> None:
    p.weight_shown = round(p.spec.weight_kg, 3)
    if rng.random() < cfg.p_unstable_weight:
        p.stable = False
        p.expected_missing.add("weight")
        p.notes.append("scale: never settles")


def _plan_dims(cfg: StationConfig, rng: random.Random, p: PlannedParcel) -> None:
    v = cfg.belt_mps
    p.dims_at = p.anchor + (cfg.dims_at_m + p.length_m) / v + 0.05
    L, W, H = (x / 10.0 for x in p.spec.size_mm)
    if cfg.dims_unit == "in":
        vals = [f"{x / 2.54:.1f}" for x in (L, W, H)]
        k, d, unit, wunit = p.spec.weight_kg / 0.45359237, L * W * H / 6000 / 0.45359237, "in", "lb"
    else:
        vals = [f"{x:.1f}" for x in (L, W, H)]
        k, d, unit, wunit = p.spec.weight_kg, L * W * H / 6000, "cm", "kg"
    if rng.random() < cfg.p_dims_unstable:
        vals[rng.randrange(3)] = "----"
        p.expected_missing.add("dims")
        p.notes.append("dimensioner: unstable field")
    payload = (f"C,L {vals[0]},W {vals[1]},H {vals[2]}{unit},K {k:.3f},D {d:.3f}{wunit},"
               f"F0166,D")
    p.dims_reply = b"\x02MA" + payload.encode() + b"\x03\r\n"


def _plan_xray(cfg: StationConfig, rng: random.Random, nrng: np.random.Generator,
               p: PlannedParcel) -> None:
    v = cfg.belt_mps
    p.xray_entry = p.anchor + cfg.xray_at_m / v
    p.xray_write = p.anchor + (cfg.xray_at_m + cfg.xray_len_m + p.length_m) / v + \
        rng.uniform(0.2, 0.6)
    if cfg.render == "flat":
        h = max(8, int(p.spec.size_mm[1] / cfg.mm_per_px))
        w = max(8, int(p.spec.size_mm[0] / cfg.mm_per_px))
        img = np.full((h, w, 3), 235, np.uint8)
    else:
        from simulators.depot.xray import render_parcel

        img = render_parcel(p.spec, nrng, cfg.mm_per_px)
    p.xray_png = _png(img)
    if rng.random() < cfg.p_truncated_png:
        p.truncated = True
        p.xray_png = p.xray_png[: len(p.xray_png) // 2]
        p.expected_missing.add("xray")
        p.notes.append("xray: truncated PNG")
    if rng.random() < cfg.p_no_sidecar:
        p.sidecar = None
        p.notes.append("xray: no sidecar")
    else:
        p.sidecar = b""  # written by sidecar_bytes() once the start time is known


def _mark_unplugged(cfg: StationConfig, parcels: list[PlannedParcel],
                    unplugs: list[tuple[str, float, float]]) -> None:
    """Pieces a device may have lost while it was away (or while the agent reconnects:
    its backoff can reach a few seconds, so the window is generous)."""
    v = cfg.belt_mps
    piece = {"scanner": "barcode", "scale": "weight", "dims": "dims", "rfid": "rfid"}
    for dev, t0, t1 in unplugs:
        t1 = t1 + 6.0 * cfg.speed  # reconnect backoff (wall seconds) in station time
        for p in parcels:
            if dev == "scanner":
                ts = [t for t, _ in p.scan_events]
            elif dev == "scale":
                ts = [p.anchor + cfg.scale_at_m / v,
                      p.anchor + (cfg.scale_at_m + cfg.scale_len_m + p.length_m) / v]
            elif dev == "dims":
                ts = [p.dims_at, p.dims_at + 1.0]
            else:
                ts = [p.anchor - 1.0, p.anchor + 2.0]
            if any(t0 - 0.5 <= t <= t1 for t in ts):
                p.optional_missing.add(piece[dev])


# -- device models: what a device answers at station time t ------------------------------

class ScaleModel:
    """MT-SICS replies as the belt moves parcels over the weighing section."""

    def __init__(self, plan: StationPlan) -> None:
        self.plan = plan
        c = plan.cfg
        self.v = c.belt_mps
        self._i = 0

    def weight_at(self, t: float) -> tuple[str, float]:
        c = self.plan.cfg
        ps = self.plan.parcels
        while self._i < len(ps) and t > ps[self._i].anchor + (
                c.scale_at_m + c.scale_len_m + ps[self._i].length_m) / self.v:
            self._i += 1
        if self._i >= len(ps):
            return "S", 0.0
        p = ps[self._i]
        enter = p.anchor + c.scale_at_m / self.v
        full = p.anchor + (c.scale_at_m + p.length_m) / self.v
        leave_start = p.anchor + (c.scale_at_m + c.scale_len_m) / self.v
        assert p.weight_shown is not None
        if t < enter:
            return "S", 0.0
        if t < full:
            return "D", p.weight_shown * (t - enter) / max(full - enter, 1e-6)
        if t < full + SCALE_SETTLE_S or t >= leave_start or not p.stable:
            wobble = 0.03 * p.weight_shown * (1 if int(t * 20) % 2 else -1)
            return "D", max(0.0, p.weight_shown + wobble)
        return "S", p.weight_shown

    def respond(self, cmd: bytes, t: float) -> bytes:
        cmd = cmd.strip()
        if cmd not in (b"SI", b"S"):
            return b"ES\r\n"
        status, kg = self.weight_at(t)
        if cmd == b"S" and status == "D":
            return b"S I\r\n"  # a stable value was asked for and is not there yet
        return f"S {status} {kg:10.3f} kg\r\n".encode()


class DimsModel:
    """MN until a parcel has passed the light curtain, then its one MA reply."""

    def __init__(self, plan: StationPlan) -> None:
        self.plan = plan
        self._i = 0

    def respond(self, cmd: bytes, t: float) -> bytes:
        if cmd != b"\x02M\x03":
            return b"\x02MN\x03\r\n"
        ps = self.plan.parcels
        due = None
        while self._i < len(ps) and ps[self._i].dims_at <= t:
            due = ps[self._i]
            self._i += 1
        return due.dims_reply if due is not None else b"\x02MN\x03\r\n"


class RfidModel:
    """Inventory notices for the tags in the field at time t."""

    def __init__(self, plan: StationPlan, seed: int) -> None:
        self.plan = plan
        self.rng = random.Random(seed * 7 + 3)
        self._lo = 0
        c = plan.cfg
        self.cross = {p.seq for p in plan.parcels if p.epcs and
                      self.rng.random() < c.p_cross_read}

    def respond(self, cmd: bytes, t: float) -> bytes:
        c = self.plan.cfg
        ps = self.plan.parcels
        out = b""
        while self._lo < len(ps) and t > ps[self._lo].anchor + (
                c.rfid_at_m + ps[self._lo].length_m + 3 * FIELD_M) / c.belt_mps:
            self._lo += 1
        for j in range(self._lo, min(self._lo + 3, len(ps))):
            p = ps[j]
            x = c.belt_mps * (t - p.anchor) - p.length_m / 2 - c.rfid_at_m
            for epc in p.epcs:
                if abs(x) < FIELD_M and self.rng.random() < 0.7:
                    rssi = int(-45 - 30 * abs(x) / FIELD_M + self.rng.uniform(-3, 3))
                    out += notice(epc, rssi=rssi)
                elif p.seq in self.cross and FIELD_M * 2.5 < x < FIELD_M * 3.5 \
                        and self.rng.random() < 0.3:
                    out += notice(epc, rssi=-80)  # seen again at the next parcel, weakly
        return out or frame(T_RESP, CMD_ERROR, b"\x15")


def xray_name(plan: StationPlan, p: PlannedParcel) -> str:
    """``<epoch_ms>_<lane>`` of the parcel's X-ray files (the tunnel entry time)."""
    return f"{int(round(plan.wall(p.xray_entry) * 1000))}_{plan.cfg.lane}"


def sidecar_bytes(plan: StationPlan, p: PlannedParcel) -> bytes | None:
    if p.sidecar is None:
        return None
    import orjson

    c = plan.cfg
    return orjson.dumps({"ts": round(plan.wall(p.xray_entry), 3), "lane": c.lane,
                         "mm_per_px": c.mm_per_px, "belt_mps": c.belt_mps * c.speed})


def waybill_lines(plan: StationPlan) -> bytes:
    """The depot's export (2f) of the plan's waybills."""
    import orjson

    return b"".join(orjson.dumps({k: v for k, v in wb.items() if not k.startswith("_")})
                    + b"\n" for wb in plan.waybills)


def truth_line(plan: StationPlan, p: PlannedParcel) -> dict[str, Any]:
    """One line of the truth file (times in epoch seconds)."""
    c = plan.cfg
    L, W, H = (round(x / 10.0, 1) for x in p.spec.size_mm)
    wb = plan.waybills[p.seq - 1]
    return {"seq": p.seq, "lane": c.lane, "ts": round(plan.wall(p.anchor), 3),
            "waybill": p.waybill, "weight_kg": p.weight_shown, "dims_cm": [L, W, H],
            "rfid_epcs": [e.hex().upper() for e in p.epcs],
            "xray": xray_name(plan, p) + ".png", "category": p.spec.category,
            "card_kind": p.spec.card_kind, "declared": p.spec.declared,
            "declaration_honest": wb["_honest"],
            "expected_missing": sorted(p.expected_missing),
            "optional_missing": sorted(p.optional_missing), "notes": p.notes}
