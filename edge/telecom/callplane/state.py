"""Bounded per-entity state over event time: per SIM (IMSI), per device (IMEI), per
IMEI block, per cell, and per IMSI-IMEI pair.

In: :class:`~edge.records.BaseStationEvent` via :meth:`EntityTables.add`. Out: the
state objects that :mod:`edge.telecom.callplane.features` reads.

Memory is what decides whether this runs on a gateway box with half a million
subscribers, so a SIM keeps its last 24 h of events in three compact arrays (time,
code, value) plus the B-numbers of its calls, and only SIMs or devices that show more
than one partner get a dict. Old entries are trimmed when a SIM is scored or when its
arrays reach the cap; idle entities are evicted on a sweep (counted).

Late events (up to a few seconds) are appended where they arrive: windows filter by
timestamp, so order inside a SIM's arrays only matters to the gap features, which
sort. Duplicates (same call_id and type, or same type and timestamp) are dropped.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left

from edge.records import BaseStationEvent

# Event codes stored per SIM.
MO_START, MT_START, MO_END, MT_END, SMS_MO, SMS_MT, DATA, HANDOVER, ATTACH, DETACH = range(10)
_CODES = {"attach": ATTACH, "detach": DETACH, "data": DATA, "handover": HANDOVER}
WINDOW_LONG_S = 24 * 3600.0
MAX_EVENTS = 2048  # per SIM, within the long window (a box makes ~700 calls a day)
MAX_PARTNERS = 64  # IMEIs per IMSI, IMSIs per IMEI, cells per SIM


class SimState:
    """One SIM's recent events (24 h), its devices and cells, and detector flags."""

    __slots__ = ("first", "last", "t", "c", "v", "pt", "pc", "pp", "imei", "imeis",
                 "cells", "keys", "dirty", "alerted", "next_score", "mo_n", "score")

    def __init__(self, ts: float) -> None:
        self.first = ts
        self.last = ts
        self.t = array("d")
        self.c = array("b")
        self.v = array("f")
        self.pt = array("d")  # peer events: calls and SMS
        self.pc = array("b")
        self.pp: list[str] = []
        self.imei: str | None = None
        self.imeis: dict[str, float] | None = None  # only when more than one IMEI
        self.cells: dict[str, float] = {}
        self.keys: tuple[object, ...] = ()
        self.dirty = False
        self.alerted = 0.0
        self.next_score = 0.0
        self.mo_n = 0  # MO call starts currently held
        self.score = 0.0

    def trim(self, now: float) -> None:
        """Drop entries older than the long window."""
        horizon = now - WINDOW_LONG_S
        t = self.t
        if t and t[0] < horizon:
            cut = bisect_left(t, horizon)
            del t[:cut], self.c[:cut], self.v[:cut]
        pt = self.pt
        if pt and pt[0] < horizon:
            cut = bisect_left(pt, horizon)
            self.mo_n -= self.pc[:cut].count(MO_START)
            del pt[:cut], self.pc[:cut], self.pp[:cut]
        if self.imeis is not None and len(self.imeis) > 1:
            for k in [k for k, ts in self.imeis.items() if ts < horizon]:
                del self.imeis[k]
        if len(self.cells) > 1:
            for k in [k for k, ts in self.cells.items() if ts < horizon]:
                del self.cells[k]

    def imei_set(self) -> dict[str, float]:
        if self.imeis is not None:
            return self.imeis
        return {self.imei: self.last} if self.imei is not None else {}


class ImeiState:
    """One device (IMEI): the SIMs it carried (IMSI -> last seen)."""

    __slots__ = ("last", "one", "many")

    def __init__(self, imsi: str, ts: float) -> None:
        self.last = ts
        self.one: str | None = imsi
        self.many: dict[str, float] | None = None

    def add(self, imsi: str, ts: float) -> None:
        if ts > self.last:
            self.last = ts
        if self.many is None:
            if imsi == self.one:
                return
            self.many = {self.one: self.last} if self.one is not None else {}
            self.one = None
        if imsi in self.many or len(self.many) < MAX_PARTNERS:
            self.many[imsi] = ts

    def imsis(self, since: float) -> list[str]:
        if self.many is None:
            return [self.one] if self.one is not None and self.last >= since else []
        return [k for k, ts in self.many.items() if ts >= since]


class CellState:
    """One cell: MO calls per hour (24 buckets) and the SIMs alerted on it."""

    __slots__ = ("last", "hour", "mo", "alerted")

    def __init__(self, ts: float) -> None:
        self.last = ts
        self.hour = array("q", [0] * 24)
        self.mo = array("l", [0] * 24)
        self.alerted: set[str] = set()

    def add_mo(self, ts: float) -> None:
        h = int(ts // 3600)
        i = h % 24
        if self.hour[i] != h:
            self.hour[i] = h
            self.mo[i] = 0
        self.mo[i] += 1
        if ts > self.last:
            self.last = ts

    def mo_last_hour(self, now: float) -> int:
        h = int(now // 3600)
        i = h % 24
        return self.mo[i] if self.hour[i] == h else 0


class EntityTables:
    """All per-entity tables with idle eviction and a hard cap on SIMs."""

    def __init__(self, *, idle_evict_s: float = WINDOW_LONG_S, max_sims: int = 2_000_000) -> None:
        self.sims: dict[str, SimState] = {}
        self.imeis: dict[str, ImeiState] = {}
        self.blocks: dict[str, set[str] | str] = {}  # imei[:12] -> IMEIs (consecutive ports)
        self.cells: dict[str, CellState] = {}
        self.idle_evict_s = idle_evict_s
        self.max_sims = max_sims
        self.evicted_sims = 0
        self.evicted_imeis = 0
        self.evicted_cells = 0
        self.duplicates = 0

    def add(self, ev: BaseStationEvent) -> SimState | None:
        """Fold one event into the tables; returns the SIM's state (None for a duplicate)."""
        ts = ev.ts
        imsi = ev.imsi
        st = self.sims.get(imsi)
        if st is None:
            if len(self.sims) >= self.max_sims:
                self.evict_oldest(max(1, self.max_sims // 100))
            st = self.sims[imsi] = SimState(ts)
        etype = ev.type
        if etype == "call_start" or etype == "call_end":
            key: object = (etype, ev.call_id) if ev.call_id is not None else (etype, ts)
        else:
            key = (etype, ts)
        if key in st.keys:
            self.duplicates += 1
            return None
        keys = st.keys
        st.keys = (keys[-5:] + (key,)) if len(keys) >= 6 else keys + (key,)
        if ts > st.last:
            st.last = ts
        elif ts < st.first:
            st.first = ts
        mo = ev.dir != "mt"
        val = 0.0
        if etype == "call_start":
            code = MO_START if mo else MT_START
            st.pt.append(ts)
            st.pc.append(code)
            st.pp.append(ev.peer or "")
            if mo:
                st.mo_n += 1
                if ev.cell is not None:
                    cs = self.cells.get(ev.cell)
                    if cs is None:
                        cs = self.cells[ev.cell] = CellState(ts)
                    cs.add_mo(ts)
        elif etype == "call_end":
            code = MO_END if mo else MT_END
            val = ev.duration_s or 0.0
        elif etype == "sms":
            code = SMS_MO if mo else SMS_MT
            st.pt.append(ts)
            st.pc.append(code)
            st.pp.append(ev.peer or "")
        else:
            code = _CODES[etype]
            if code == ATTACH:
                val = ev.auth_ms if ev.auth_ms is not None else -1.0
        st.t.append(ts)
        st.c.append(code)
        st.v.append(val)
        if len(st.t) > MAX_EVENTS or len(st.pt) > MAX_EVENTS:
            st.trim(st.last)
            if len(st.t) > MAX_EVENTS:  # still over: keep the newest half
                half = MAX_EVENTS // 2
                del st.t[:-half], st.c[:-half], st.v[:-half]
            if len(st.pt) > MAX_EVENTS:
                half = MAX_EVENTS // 2
                st.mo_n -= st.pc[:-half].count(MO_START)
                del st.pt[:-half], st.pc[:-half], st.pp[:-half]
        cell = ev.cell
        if cell is not None:
            cells = st.cells
            if cell in cells or len(cells) < MAX_PARTNERS:
                cells[cell] = ts
        imei = ev.imei
        if imei is not None:
            if st.imei != imei:
                if st.imei is not None:
                    if st.imeis is None:
                        st.imeis = {st.imei: st.last}
                    if len(st.imeis) < MAX_PARTNERS:
                        st.imeis[imei] = ts
                st.imei = imei
            elif st.imeis is not None:
                st.imeis[imei] = ts
            dev = self.imeis.get(imei)
            if dev is None:
                self.imeis[imei] = ImeiState(imsi, ts)
                blk = imei[:12]
                b = self.blocks.get(blk)
                if b is None:
                    self.blocks[blk] = imei
                elif isinstance(b, str):
                    if b != imei:
                        self.blocks[blk] = {b, imei}
                elif len(b) < MAX_PARTNERS:
                    b.add(imei)
            else:
                dev.add(imsi, ts)
        return st

    def block_imeis(self, imei: str) -> list[str]:
        b = self.blocks.get(imei[:12])
        if b is None:
            return [imei]
        return [b] if isinstance(b, str) else list(b)

    # -- eviction
    def sweep(self, now: float) -> None:
        """Evict SIMs, devices and cells idle for longer than ``idle_evict_s``."""
        horizon = now - self.idle_evict_s
        stale = [k for k, s in self.sims.items() if s.last < horizon]
        for k in stale:
            del self.sims[k]
        self.evicted_sims += len(stale)
        stale = [k for k, d in self.imeis.items() if d.last < horizon]
        for k in stale:
            del self.imeis[k]
            self._unblock(k)
        self.evicted_imeis += len(stale)
        stale = [k for k, c in self.cells.items() if c.last < horizon]
        for k in stale:
            del self.cells[k]
        self.evicted_cells += len(stale)

    def _unblock(self, imei: str) -> None:
        blk = imei[:12]
        b = self.blocks.get(blk)
        if b is None:
            return
        if isinstance(b, str):
            if b == imei:
                del self.blocks[blk]
        else:
            b.discard(imei)
            if not b:
                del self.blocks[blk]

    def evict_oldest(self, n: int) -> None:
        """Hard cap: drop the ``n`` SIMs idle the longest."""
        victims = sorted(self.sims.items(), key=lambda kv: kv[1].last)[:n]
        for k, _ in victims:
            del self.sims[k]
        self.evicted_sims += len(victims)

    def counters(self) -> dict[str, int]:
        return {"sims": len(self.sims), "imeis": len(self.imeis), "cells": len(self.cells),
                "evicted_sims": self.evicted_sims, "evicted_imeis": self.evicted_imeis,
                "evicted_cells": self.evicted_cells, "duplicates": self.duplicates}
