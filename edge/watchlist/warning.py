"""Stage ``warning``: potential victims of a SIM-box, a GoIP or a watchlisted number.

The law asks carriers to find potential victims early and dissuade them (Zhejiang
art. 32, Beijing item 6). A subscriber called or texted by a source of fraud — a SIM
reported as a SIM-box SIM (``simbox.sim``) or a watchlisted IMSI or number
(``watchlist.hit``) — is reported as a
``warning.victim`` (route ``warning``, the subject the called number, pseudonymised),
once per victim per ``window_s``, so the carrier can call, text or warn them.

Calls made *before* the source was flagged count too: each SIM's last
``recent_per_sim`` (16) outgoing callees of the last ``recent_s`` are kept for at most
``max_sims`` (50,000) SIMs (when full, the half whose last call is oldest is dropped:
a box calls every few minutes, so it stays, and memory stays bounded whatever the
subscriber count), and are reported when the SIM is flagged; later calls are
reported as they happen. A SIM's callees are one ``bytearray`` of packed records
(time, kind, number: ~25 bytes a call, ~0.5 KB a SIM, against ~1.9 KB as tuples in
a deque), appended without reordering anything. (A GoIP found on the IP plane is an
address: the numbers it dials appear in the event feed under its SIMs, which the
call plane flags in turn.)
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from edge.detection import Detection, Evidence, Subject
from edge.records import BaseStationEvent

NOTHING: tuple[()] = ()
_SOURCES = ("simbox.sim", "watchlist.hit")
_CONTACTS = {"call_start": 0, "sms": 1}
_KIND_NAME = ("call_start", "sms")
_REC = struct.Struct("<dBB")  # time, contact kind, length of the number that follows


class VictimWarningStage:
    name = "warning"
    consumes: tuple[type, ...] = (BaseStationEvent, Detection)

    def __init__(self, *, window_s: float = 7 * 86400.0, recent_s: float = 86400.0,
                 recent_per_sim: int = 16, max_sims: int = 50_000,
                 max_victims: int = 1_000_000) -> None:
        self.window_s = window_s
        self.recent_s = recent_s
        self.recent_per_sim = recent_per_sim
        self.max_sims = max_sims
        self.max_victims = max_victims
        # imsi -> [packed callees, how many, time of the last]
        self._recent: dict[str, list[Any]] = {}
        self._flagged: dict[str, tuple[str, float]] = {}  # imsi or msisdn -> (why, since)
        self._warned: OrderedDict[str, float] = OrderedDict()
        self.c = dict.fromkeys(("sources", "victims", "suppressed", "evicted"), 0)

    def feed(self, rec: Any) -> Sequence[Detection]:
        if rec.__class__ is not BaseStationEvent:
            return self._source(rec) if type(rec) is Detection else NOTHING
        ev: BaseStationEvent = rec
        if ev.dir != "mo" or not ev.peer or ev.type not in _CONTACTS:
            return NOTHING
        flagged = self._flagged
        if flagged:
            why = flagged.get(ev.imsi) or (flagged.get(ev.msisdn) if ev.msisdn else None)
            if why is not None:
                return self._warn(ev.peer, ev.ts, why[0], ev.imsi, ev.type)
        peer = ev.peer.encode()
        if len(peer) > 255:  # not a number: nothing to warn
            return NOTHING
        r = self._recent.get(ev.imsi)
        if r is None:
            if len(self._recent) >= self.max_sims:
                self._evict()
            r = self._recent[ev.imsi] = [bytearray(), 0, 0.0]
        buf = r[0]
        buf += _REC.pack(ev.ts, _CONTACTS[ev.type], len(peer))
        buf += peer
        r[2] = ev.ts
        if r[1] == self.recent_per_sim:  # the oldest call goes
            del buf[:_REC.size + buf[_REC.size - 1]]
        else:
            r[1] += 1
        return NOTHING

    def _evict(self) -> None:
        """The half of the tracked SIMs whose last call is oldest."""
        by_last = sorted(self._recent.items(), key=lambda kv: kv[1][2])
        for k, _ in by_last[:max(1, len(by_last) // 2)]:
            del self._recent[k]
        self.c["evicted"] += max(1, len(by_last) // 2)

    def _source(self, d: Detection) -> Sequence[Detection]:
        if d.kind not in _SOURCES or d.subject.type not in ("imsi", "phone", "msisdn"):
            return NOTHING
        ident = d.subject.id
        if ident in self._flagged:
            return NOTHING
        self._flagged[ident] = (d.kind, d.ts)
        self.c["sources"] += 1
        out: list[Detection] = []
        r = self._recent.pop(ident, None)
        if r is None:
            return out
        buf, i = r[0], 0
        while i < len(buf):  # called before it was flagged, oldest first
            ts, kind, n = _REC.unpack_from(buf, i)
            i += _REC.size
            peer = buf[i:i + n].decode()
            i += n
            if d.ts - ts <= self.recent_s:
                out += self._warn(peer, d.ts, d.kind, ident, _KIND_NAME[kind], earlier_ts=ts)
        return out

    def _warn(self, peer: str, ts: float, why: str, source: str, how: str,
              earlier_ts: float | None = None) -> list[Detection]:
        last = self._warned.get(peer)
        if last is not None and ts - last < self.window_s:
            self.c["suppressed"] += 1
            return []
        if len(self._warned) >= self.max_victims:
            self._warned.popitem(last=False)
        self._warned[peer] = ts
        self._warned.move_to_end(peer)
        self.c["victims"] += 1
        stype = "imsi" if source.isdigit() and len(source) == 15 else "phone"
        feats: dict[str, Any] = {"source_kind": why, "contact": how}
        if earlier_ts is not None:
            feats["contact_ts"] = round(earlier_ts, 3)
        return [Detection(ts, "warning.victim", "medium", 0.8, Subject("phone", peer),
                          [Evidence(f"contacted ({how}) by a {why.replace('.', ' ')} source",
                                    feats)],
                          ["warning"], related=[Subject(stype, source)], detector=self.name)]

    def tick(self, now: float) -> Sequence[Detection]:
        return NOTHING

    def flush(self, now: float) -> Sequence[Detection]:
        return NOTHING

    def counters(self) -> dict[str, int | float]:
        return {**self.c, "flagged": len(self._flagged), "tracked_sims": len(self._recent)}
