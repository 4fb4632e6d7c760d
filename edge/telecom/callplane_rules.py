"""A first, explicit SIM-box rule on base-station events (per SIM and per device).

Honest but simple: within a tumbling window per SIM, a SIM that makes many outgoing
calls to mostly distinct numbers, receives nothing, sends no SMS, uses no data and
stays on one or two cells is flagged. A device (IMEI) that carried two or more
flagged SIMs is flagged as a SIM-box device with its SIMs.
"""

from __future__ import annotations

from collections.abc import Sequence

from edge.config import CallPlaneSection
from edge.detection import Detection, Evidence, Subject
from edge.records import BaseStationEvent

NOTHING: tuple[()] = ()
ROUTE = ["telecom", "police"]


class _SimState:
    __slots__ = ("start", "last", "mo", "mt", "sms", "data", "answered", "dur",
                 "peers", "cells", "imeis", "alerted")

    def __init__(self, ts: float) -> None:
        self.start = ts
        self.last = ts
        self.mo = self.mt = self.sms = self.data = self.answered = 0
        self.dur = 0.0
        self.peers: set[str] = set()
        self.cells: set[str] = set()
        self.imeis: set[str] = set()
        self.alerted = False


class CallPlaneRules:
    name = "callplane_rules"
    consumes = (BaseStationEvent,)

    def __init__(self, cfg: CallPlaneSection) -> None:
        self.cfg = cfg
        self._sims: dict[str, _SimState] = {}
        self._flagged_by_imei: dict[str, set[str]] = {}
        self._device_alerted: set[str] = set()
        self._block_imeis: dict[str, set[str]] = {}
        self._alerted_sims: set[str] = set()
        self.evicted = 0
        self._next_evict = 0.0

    def feed(self, ev: BaseStationEvent) -> Sequence[Detection]:
        st = self._sims.get(ev.imsi)
        ts = ev.ts
        if st is None or ts - st.start > self.cfg.window_s:
            if len(self._sims) >= self.cfg.max_entities and st is None:
                self._evict_oldest()
            st = self._sims[ev.imsi] = _SimState(ts)
        if ts > st.last:
            st.last = ts
        t = ev.type
        if ev.cell is not None and len(st.cells) < 64:
            st.cells.add(ev.cell)
        if ev.imei is not None and len(st.imeis) < 64:
            st.imeis.add(ev.imei)
        if t == "call_start":
            if ev.dir == "mt":
                st.mt += 1
            else:
                st.mo += 1
                if ev.peer is not None and len(st.peers) < 4096:
                    st.peers.add(ev.peer)
        elif t == "call_end":
            if ev.duration_s:
                st.answered += 1
                st.dur += ev.duration_s
        elif t == "sms":
            st.sms += 1
        elif t == "data":
            st.data += 1
        if t != "call_start" or st.alerted or st.mo < self.cfg.min_calls:
            return NOTHING
        if ev.imsi in self._alerted_sims:  # one alert per SIM until it goes idle
            st.alerted = True
            return NOTHING
        return self._judge(ev, st)

    def _judge(self, ev: BaseStationEvent, st: _SimState) -> Sequence[Detection]:
        incoming = st.mt + st.sms + st.data
        distinct = len(st.peers) / max(1, st.mo)
        if incoming > 0.05 * st.mo or distinct < 0.8 or len(st.cells) > 2:
            return NOTHING
        st.alerted = True
        self._alerted_sims.add(ev.imsi)
        answer_ratio = st.answered / max(1, st.mo)
        ev_sim = Evidence(
            "only outgoing calls to mostly distinct numbers, no SMS or data, static cell",
            {"mo_calls": st.mo, "mt_calls": st.mt, "sms": st.sms, "data_sessions": st.data,
             "distinct_peer_ratio": round(distinct, 3), "cells": len(st.cells),
             "answer_ratio": round(answer_ratio, 3),
             "window_s": round(ev.ts - st.start, 1)},
        )
        score = min(0.99, 0.6 + 0.01 * st.mo)
        out = [Detection(ev.ts, "simbox.sim", "high", score, Subject("imsi", ev.imsi),
                         [ev_sim], ROUTE, detector=self.name,
                         related=[Subject("imei", i) for i in sorted(st.imeis)])]
        for imei in st.imeis:
            # Multi-port boxes carry consecutive module IMEIs: group them by TAC and the
            # leading serial digits (blocks of 100 serials).
            block = imei[:12]
            sims = self._flagged_by_imei.setdefault(block, set())
            sims.add(ev.imsi)
            self._block_imeis.setdefault(block, set()).add(imei)
            if len(sims) >= 2 and block not in self._device_alerted:
                self._device_alerted.add(block)
                imeis = sorted(self._block_imeis[block])
                out.append(Detection(
                    ev.ts, "simbox.device", "critical", min(0.99, 0.8 + 0.05 * len(sims)),
                    Subject("imei", imeis[0]),
                    [Evidence("one device (consecutive module IMEIs) carried several SIMs "
                              "flagged as SIM-box lines",
                              {"flagged_sims": len(sims), "imeis": len(imeis)})],
                    ROUTE, detector=self.name,
                    related=[Subject("imsi", s) for s in sorted(sims)]
                    + [Subject("imei", i) for i in imeis[1:]]))
        return out

    def _evict_oldest(self) -> None:
        victim = min(self._sims, key=lambda k: self._sims[k].last)
        del self._sims[victim]
        self.evicted += 1

    def tick(self, now: float) -> Sequence[Detection]:
        if now < self._next_evict:
            return NOTHING
        self._next_evict = now + 60.0
        horizon = now - self.cfg.idle_evict_s
        stale = [k for k, s in self._sims.items() if s.last < horizon]
        for k in stale:
            del self._sims[k]
            self._alerted_sims.discard(k)
        self.evicted += len(stale)
        return NOTHING

    def flush(self, now: float) -> Sequence[Detection]:
        return NOTHING

    def counters(self) -> dict[str, int | float]:
        return {"sims": len(self._sims), "evicted": self.evicted,
                "alerted_sims": len(self._alerted_sims),
                "alerted_devices": len(self._device_alerted)}
