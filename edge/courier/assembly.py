"""Parcel assembly: device readings of one lane in, one :class:`Parcel` per parcel out.

In: ``ScanRead``, ``WeightReading``, ``DimsReading``, ``RfidRead``, ``XrayImage`` and,
when the station controller is bridged, ``PhotoEyeEvent``, all of one lane, in
roughly arrival order. Out (from ``tick(now)`` and ``flush()``): ``Parcel`` records in
lane order, each naming the pieces that are missing and what was ambiguous.

How readings are tied to a parcel. Each parcel has an *anchor*: the time its
leading edge passed the scanner -- the scan photo-eye's beam break when the bridge
reports it, else the first scanner message (a decode or a NoRead). Scanner messages
within ``double_read_s`` of an anchor are the same parcel (double reads). Every
other device sees the parcel a fixed belt distance later, so a reading has an
expected anchor (its time minus the device's offset from the geometry) and goes to
the open parcel whose anchor is nearest, within ``match_window_s``:

- scale: a *weighing* is a run of non-empty readings between empty ones; it starts
  when the leading edge reaches the scale (``scale_at_m``); its weight is the median
  of its stable readings (none stable: the weight is missing, "never stable");
- dimensioner: a reply comes once the parcel has passed (``dims_at_m`` plus the
  parcel's length: measured from the photo-eyes, else ``typical_parcel_m``);
- X-ray: the image's time is the tunnel entry (``xray_at_m``). Images may arrive out
  of order (neighbours interleave); only their time counts;
- RFID: reads are assigned one by one; when the parcel closes, a tag also read on a
  neighbouring parcel stays only with the parcel where it was read strongest (the
  other gets a "cross-read" note).

A reading that matches no open parcel opens one (its barcode is then missing). A
parcel closes as soon as its X-ray image is in and the earlier devices' windows are
over (the diverter
is seconds downstream; the stage emits it on the image itself), else ``xray_wait_s`` after its expected X-ray entry, so late
X-ray files (the watcher waits for sidecars) still make it. ``seq`` is the order in
which parcels close. A reading nearer a closed parcel than any open one is late:
counted and dropped. Memory is bounded: at most
``MAX_OPEN`` parcels are open (the oldest is closed early, counted) and the tag
history of closed parcels keeps the last ``TAG_HISTORY`` entries.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Any

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

EMPTY_KG = 0.005  # a scale showing less is empty (zero drift of a belt scale)
MAX_OPEN = 256
TAG_HISTORY = 4096
PIECES = ("barcode", "weight", "dims", "xray", "waybill_record")


@dataclass(frozen=True, slots=True)
class Geometry:
    """Belt speed and device positions (metres from the scanner), plus the windows."""

    belt_mps: float = 0.5
    scale_at_m: float = 0.6
    dims_at_m: float = 2.0
    rfid_at_m: float = 0.0
    xray_at_m: float = 3.0
    xray_len_m: float = 1.0
    xray_to_diverter_m: float = 2.0
    typical_parcel_m: float = 0.35
    match_window_s: float = 0.9
    double_read_s: float = 0.6
    xray_wait_s: float = 8.0
    rfid_settle_s: float = 1.0

    @classmethod
    def from_section(cls, sec: Any) -> Geometry:
        """From a :class:`edge.courier.config.DepotSection` (same field names)."""
        return cls(**{f: getattr(sec, f) for f in cls.__dataclass_fields__})


@dataclass(slots=True)
class _Weighing:
    start: float
    stable: list[float] = field(default_factory=list)
    dynamic: int = 0
    over: int = 0


@dataclass(slots=True)
class _Slot:
    anchor: float
    by: str  # "eye" | "scan" | the piece that opened it
    length_m: float | None = None
    scans: list[ScanRead] = field(default_factory=list)
    weighings: list[_Weighing] = field(default_factory=list)
    dims: list[DimsReading] = field(default_factory=list)
    tags: dict[str, list[int]] = field(default_factory=dict)  # epc -> [reads, max rssi]
    xrays: list[XrayImage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class ParcelAssembler:
    """Sans-IO: ``feed(record)`` buffers, ``tick(now)`` / ``flush()`` return parcels."""

    def __init__(self, lane: str, geometry: Geometry | None = None,
                 waybill: Callable[[str], Waybill | None] | None = None) -> None:
        self.lane = lane
        self.geo = g = geometry or Geometry()
        self._lookup = waybill or (lambda code: None)
        v = g.belt_mps
        self._off_scale = g.scale_at_m / v
        self._off_xray = g.xray_at_m / v
        self._close_after = self._off_xray + g.xray_wait_s
        self._open: list[_Slot] = []  # sorted by anchor
        self._anchors: list[float] = []
        self._weighing: _Weighing | None = None
        self._eye_open: _Slot | None = None
        self._eyes = False
        self._tag_best: OrderedDict[str, tuple[int, int]] = OrderedDict()  # epc->(seq,rssi)
        self._rfid_done = (g.rfid_at_m + g.typical_parcel_m) / v + g.match_window_s \
            + g.rfid_settle_s
        self._closed: deque[float] = deque(maxlen=32)  # anchors of recently closed parcels
        self.seq = 0
        self.counts: dict[str, int] = {}

    # -- input
    def feed(self, rec: Any) -> None:
        """Buffer one reading of this lane (other lanes are counted and ignored)."""
        if getattr(rec, "lane", self.lane) != self.lane:
            self._count("other_lane")
            return
        t = type(rec)
        if t is ScanRead:
            self._scan(rec)
        elif t is WeightReading:
            self._weight(rec)
        elif t is DimsReading:
            self._dims(rec)
        elif t is RfidRead:
            self._rfid(rec)
        elif t is XrayImage:
            self._xray(rec)
        elif t is PhotoEyeEvent:
            self._eye(rec)

    def _count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def _insert(self, anchor: float, by: str) -> _Slot:
        slot = _Slot(anchor, by)
        i = bisect.bisect(self._anchors, anchor)
        self._anchors.insert(i, anchor)
        self._open.insert(i, slot)
        if len(self._open) > MAX_OPEN:  # a stuck clock or a flood: never grow unbounded
            self._count("closed_early")
        return slot

    def _nearest(self, anchor: float, window: float) -> tuple[_Slot | None, _Slot | None]:
        """The open parcel nearest ``anchor`` within ``window``, and a runner-up also
        within it (an ambiguity worth a note)."""
        i = bisect.bisect(self._anchors, anchor)
        cands = [(abs(self._anchors[j] - anchor), j) for j in (i - 2, i - 1, i, i + 1)
                 if 0 <= j < len(self._anchors) and abs(self._anchors[j] - anchor) <= window]
        if not cands:
            return None, None
        cands.sort()
        best = self._open[cands[0][1]]
        second = self._open[cands[1][1]] if len(cands) > 1 else None
        return best, second

    def _place(self, expected_anchor: float, piece: str) -> _Slot | None:
        """The slot a reading of ``piece`` goes to (a new one if none is near)."""
        slot, other = self._nearest(expected_anchor, self.geo.match_window_s)
        if self._late(expected_anchor, self.geo.match_window_s, slot):
            self._count(f"late.{piece}")
            return None
        if slot is None:
            self._count(f"opened_by.{piece}")
            return self._insert(expected_anchor, piece)
        if other is not None:
            slot.notes.append(f"{piece}: reading also near the neighbouring parcel "
                              f"({abs(other.anchor - expected_anchor):.2f} s away)")
            self._count(f"ambiguous.{piece}")
        return slot

    def _length(self, slot: _Slot | None) -> float:
        if slot is not None and slot.length_m is not None:
            return slot.length_m
        return self.geo.typical_parcel_m

    # -- per device
    def _eye(self, ev: PhotoEyeEvent) -> None:
        if ev.eye != "scan":
            return
        self._eyes = True
        if ev.blocked:
            self._eye_open = self._insert(ev.ts, "eye")
        elif self._eye_open is not None:
            self._eye_open.length_m = (ev.ts - self._eye_open.anchor) * self.geo.belt_mps
            self._eye_open = None

    def _scan(self, r: ScanRead) -> None:
        # A NoRead comes when the parcel leaves the read zone: its leading edge passed
        # about one parcel length earlier.
        at = r.ts - self.geo.typical_parcel_m / self.geo.belt_mps if r.noread else r.ts
        if self._late(at, self.geo.double_read_s, None):
            self._count("late.barcode")
            return
        slot: _Slot | None = None
        if self._eyes:
            # the scanner decodes while the parcel passes the eye: the latest beam
            # break before the read (or just after, by a little clock skew)
            i = bisect.bisect(self._anchors, r.ts + 0.05) - 1
            slot = self._open[i] if i >= 0 and self._open[i].by == "eye" else None
            if slot is None:
                slot = self._place(at, "barcode")
        else:
            i = bisect.bisect(self._anchors, r.ts) - 1
            if i >= 0 and self._open[i].scans \
                    and r.ts - self._open[i].scans[-1].ts <= self.geo.double_read_s:
                slot = self._open[i]
            if slot is None:
                near, _ = self._nearest(at, self.geo.match_window_s)
                if near is not None and not near.scans:
                    slot = near  # opened earlier by another device's reading
                elif not r.valid and not r.noread:
                    # a stray decode (noise that looked like text) opens no parcel
                    self._count("barcode.stray")
                    return
                else:
                    slot = self._insert(at, "scan")
        if slot is not None:
            slot.scans.append(r)

    def _weight(self, r: WeightReading) -> None:
        loaded = r.kg is not None and r.kg >= EMPTY_KG and r.status in ("stable", "dynamic")
        w = self._weighing
        if r.status == "over":
            if w is None:
                w = self._weighing = _Weighing(r.ts)
            w.over += 1
            return
        if loaded:
            if w is None:
                w = self._weighing = _Weighing(r.ts)
            if r.status == "stable":
                assert r.kg is not None
                w.stable.append(r.kg)
            else:
                w.dynamic += 1
            return
        if r.status in ("stable", "dynamic", "under") and w is not None:
            self._weighing = None  # the scale is empty again: the weighing is over
            slot = self._place(w.start - self._off_scale, "weight")
            if slot is not None:
                slot.weighings.append(w)

    def _dims(self, r: DimsReading) -> None:
        if r.flags == ("MN",):
            self._count("dims.mn")
            return
        exp = r.ts - (self.geo.dims_at_m + self.geo.typical_parcel_m) / self.geo.belt_mps
        slot, _ = self._nearest(exp, self.geo.match_window_s)
        if slot is not None and slot.length_m is not None:  # refine with the measured length
            exp = r.ts - (self.geo.dims_at_m + slot.length_m) / self.geo.belt_mps
        placed = self._place(exp, "dims")
        if placed is not None:
            placed.dims.append(r)

    def _rfid(self, r: RfidRead) -> None:
        exp = r.ts - (self.geo.rfid_at_m + self.geo.typical_parcel_m / 2) / self.geo.belt_mps
        slot, _ = self._nearest(exp, self.geo.match_window_s + 1.0)
        if self._late(exp, self.geo.match_window_s + 1.0, slot):
            self._count("late.rfid")
            return
        if slot is None:
            self._count("rfid.unplaced")
            return
        st = slot.tags.setdefault(r.epc, [0, -999])
        st[0] += 1
        st[1] = max(st[1], r.rssi)

    def _xray(self, x: XrayImage) -> None:
        slot = self._place(x.ts - self._off_xray, "xray")
        if slot is not None:
            slot.xrays.append(x)

    def exit_ts(self, x: XrayImage) -> float:
        """When the parcel of image ``x`` left the tunnel (its trailing edge)."""
        v = x.belt_mps if x.belt_mps > 0 else self.geo.belt_mps
        length = _content_length_m(x.pixels, x.mm_per_px) if x.pixels is not None else None
        return x.ts + (self.geo.xray_len_m + (length or 0.0)) / v

    # -- output
    def tick(self, now: float) -> list[Parcel]:
        """Parcels that are complete, or whose missing pieces cannot come any more."""
        out: list[Parcel] = []
        i = 0
        while i < len(self._open):
            s = self._open[i]
            if s.anchor + self._close_after <= now or self._complete(s, now) \
                    or (i == 0 and len(self._open) > MAX_OPEN):
                out.append(self._close(self._pop(i)))
            else:
                i += 1
        return out

    def _complete(self, s: _Slot, now: float) -> bool:
        """The X-ray image is in: it is the last device before the diverter, every
        other reading was due earlier (the tag reads and the dimensioner's reply, by
        their windows), so waiting longer could only miss the divert."""
        if not s.xrays:
            return False
        dims_due = (self.geo.dims_at_m + self._length(s)) / self.geo.belt_mps \
            + self.geo.match_window_s
        return now >= s.anchor + max(self._rfid_done, dims_due)

    def flush(self) -> list[Parcel]:
        """Every open parcel, as it is (end of a replay, shutdown)."""
        if self._weighing is not None:
            w, self._weighing = self._weighing, None
            slot = self._place(w.start - self._off_scale, "weight")
            if slot is not None:
                slot.weighings.append(w)
        out = []
        while self._open:
            out.append(self._close(self._pop(0)))
        return out

    def _pop(self, i: int) -> _Slot:
        self._anchors.pop(i)
        slot = self._open.pop(i)
        self._closed.append(slot.anchor)
        if slot is self._eye_open:
            self._eye_open = None
        return slot

    def _late(self, anchor: float, window: float, best: _Slot | None) -> bool:
        """True when ``anchor`` is nearer a parcel already closed than any open one."""
        near = min((abs(a - anchor) for a in self._closed), default=float("inf"))
        return near <= window and (best is None or near < abs(best.anchor - anchor))

    def _close(self, s: _Slot) -> Parcel:
        self.seq += 1
        notes = list(s.notes)
        missing: list[str] = []
        code = self._barcode(s, notes)
        if code is None:
            missing.append("barcode")
        weight = self._weight_of(s, notes)
        if weight is None:
            missing.append("weight")
        dims = self._dims_of(s, notes)
        if dims is None or dims.dims_cm is None:
            missing.append("dims")
        xray = self._xray_of(s, notes)
        if xray is None:
            missing.append("xray")
        record = self._lookup(code) if code is not None else None
        if code is not None and record is None:
            missing.append("waybill_record")
            notes.append(f"waybill {code}: not in the depot's export")
        epcs = self._tags_of(s, notes)
        if s.by not in ("eye", "scan"):
            notes.append(f"no scanner message: parcel found by its {s.by}")
        if xray is not None and xray.pixels is not None:
            exit_ts = self.exit_ts(xray)
        else:
            v = xray.belt_mps if xray is not None and xray.belt_mps > 0 else self.geo.belt_mps
            entry = xray.ts if xray is not None else s.anchor + self._off_xray
            exit_ts = entry + (self.geo.xray_len_m + self._length(s)) / v
        for piece in missing:
            self._count(f"missing.{piece}")
        self._count("parcels")
        return Parcel(ts=s.anchor, lane=self.lane, seq=self.seq, waybill=code,
                      waybill_record=record, weight_kg=weight,
                      dims_cm=None if dims is None else dims.dims_cm,
                      dim_weight_kg=None if dims is None else dims.dim_weight_kg,
                      rfid_epcs=epcs, xray=xray, missing=tuple(missing), notes=tuple(notes),
                      xray_exit_ts=exit_ts)

    def _barcode(self, s: _Slot, notes: list[str]) -> str | None:
        codes = list(dict.fromkeys(r.code for r in s.scans if r.valid))
        invalid = [r.code for r in s.scans if not r.valid and not r.noread]
        if invalid:
            notes.append(f"barcode: {len(invalid)} decode(s) not shaped like a waybill")
        if len(codes) > 1:
            known = [c for c in codes if self._lookup(c) is not None]
            pick = known[0] if len(known) == 1 else codes[0]
            notes.append(f"barcode: {len(codes)} different codes ({', '.join(codes)}), "
                         f"took {pick}" + (" (the only one with a waybill)" if len(known) == 1
                                          else " (the first)"))
            self._count("ambiguous.barcode")
            return pick
        if codes:
            n = sum(1 for r in s.scans if r.code == codes[0])
            if n > 1:
                notes.append(f"barcode: read {n} times")
            return codes[0]
        if any(r.noread for r in s.scans):
            notes.append("barcode: scanner reported no read")
        return None

    def _weight_of(self, s: _Slot, notes: list[str]) -> float | None:
        if not s.weighings:
            return None
        w = s.weighings[-1]
        if len(s.weighings) > 1:
            notes.append(f"weight: {len(s.weighings)} weighings, took the last")
        if w.over:
            notes.append("weight: scale over range")
        if not w.stable:
            notes.append(f"weight: never stable ({w.dynamic} dynamic readings)")
            return None
        return float(median(w.stable))

    def _dims_of(self, s: _Slot, notes: list[str]) -> DimsReading | None:
        ok = [d for d in s.dims if d.ok]
        bad = [d for d in s.dims if not d.ok]
        if len(ok) > 1 and len({d.dims_cm for d in ok}) > 1:
            notes.append(f"dims: {len(ok)} different measurements, took the last")
        if ok:
            return ok[-1]
        if bad:
            notes.append("dims: " + ", ".join(bad[-1].flags))
            return bad[-1]
        return None

    def _xray_of(self, s: _Slot, notes: list[str]) -> XrayImage | None:
        if not s.xrays:
            return None
        exp = s.anchor + self._off_xray
        best = min(s.xrays, key=lambda x: abs(x.ts - exp))
        if len(s.xrays) > 1:
            notes.append(f"xray: {len(s.xrays)} images in the window, took the nearest")
        if not best.sidecar_ok:
            notes.append("xray: no sidecar, defaults used")
        return best

    def _tags_of(self, s: _Slot, notes: list[str]) -> tuple[str, ...]:
        keep: list[tuple[int, str]] = []
        for epc, (reads, rssi) in s.tags.items():
            rivals = [o.tags[epc][1] for o in self._open
                      if o.anchor > s.anchor and epc in o.tags]
            prev = self._tag_best.get(epc)
            if prev is not None and prev[1] >= rssi and prev[0] >= self.seq - 2:
                notes.append(f"rfid: tag {epc} cross-read, it belongs to parcel {prev[0]}")
                self._count("rfid.cross_read")
                continue
            if any(r > rssi for r in rivals):
                notes.append(f"rfid: tag {epc} cross-read, read stronger on the next parcel")
                self._count("rfid.cross_read")
                continue
            keep.append((-reads, epc))
            self._tag_best[epc] = (self.seq, rssi)
            self._tag_best.move_to_end(epc)
            if len(self._tag_best) > TAG_HISTORY:
                self._tag_best.popitem(last=False)
        return tuple(epc for _, epc in sorted(keep))

    def counters(self) -> dict[str, int | float]:
        return {**dict(sorted(self.counts.items())), "open": len(self._open)}


class AssemblyStage:
    """The pipeline stage around :class:`ParcelAssembler` (and the waybill refresh)."""

    consumes: tuple[type, ...] = (ScanRead, WeightReading, DimsReading, RfidRead, XrayImage,
                                  PhotoEyeEvent)

    def __init__(self, assembler: ParcelAssembler, waybills: Any = None,
                 name: str = "depot.assembly") -> None:
        self.name = name
        self.assembler = assembler
        self.waybills = waybills
        self._now = float("-inf")

    def feed(self, item: Any) -> Sequence[Any]:
        ts = item.ts
        if ts > self._now:
            self._now = ts
        self.assembler.feed(item)
        if type(item) is XrayImage:
            # the image usually completes a parcel: hand it on now, not at the next
            # pipeline tick (up to a second later; the diverter is seconds away). Its
            # file exists only once the parcel left the tunnel, so the station's clock
            # is at least there (the image's own time is the tunnel entry)
            self._now = max(self._now, self.assembler.exit_ts(item))
            return self.assembler.tick(self._now)
        return ()

    def tick(self, now: float) -> Sequence[Any]:
        if self.waybills is not None:
            self.waybills.maybe_refresh(now)
        return self.assembler.tick(now)

    def flush(self, now: float) -> Sequence[Any]:
        return self.assembler.flush()

    def counters(self) -> dict[str, int | float]:
        out = dict(self.assembler.counters())
        if self.waybills is not None:
            out.update({f"waybills.{k}": v for k, v in self.waybills.counters().items()})
        return out


def _content_length_m(pixels: Any, mm_per_px: float) -> float | None:
    """Length along the belt of what the X-ray image shows (its non-white columns), in
    metres; None for an empty image. The image itself is wider: the machine records
    belt before and after the parcel, and counting that would put the divert deadline
    after the parcel has passed the diverter."""
    import numpy as np

    a = np.asarray(pixels)
    if a.ndim != 3 or a.shape[1] == 0:
        return None
    dark = (255 - a.mean(axis=2)) > 28          # content, not belt noise
    cols = np.flatnonzero(dark.sum(axis=0) >= 3)
    if len(cols) == 0:
        return None
    return float((cols[-1] - cols[0] + 1) * mm_per_px / 1000.0)
