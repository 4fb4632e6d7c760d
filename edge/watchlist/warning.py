"""Stage ``warning``: potential victims of a SIM-box, a GoIP or a watchlisted number.

The law asks carriers to find potential victims early and dissuade them (Zhejiang
art. 32, Beijing item 6). A subscriber called or texted by a source of fraud — a SIM
reported as a SIM-box SIM (``simbox.sim``), a watchlisted IMSI or number
(``watchlist.hit``) and, with ``device_sources``, any SIM in a device reported as a
SIM box (``simbox.device``: its IMEIs; off by default, as a device false positive
warns the callees of every SIM in it) — is reported as a
``warning.victim`` (route ``warning``, the subject the called number, pseudonymised),
once per victim per ``window_s``, so the carrier can call, text or warn them.

Calls made *before* the source was flagged count too: each SIM's last
``recent_per_sim`` (32) outgoing callees of the last ``recent_s`` are kept for at most
``max_sims`` (100,000) SIMs (when full, the eighth whose last call is oldest is
dropped: a box calls every few minutes, so it stays, and memory stays bounded whatever
the subscriber count), and are reported when the SIM is flagged; later calls are
reported as they happen. A SIM's callees are one ``bytearray`` of packed records
(time, kind, number: ~25 bytes a call, ~1 KB a SIM with 32, against ~1.9 KB for 16 as
tuples in a deque), appended without reordering anything; so the worst case (100,000
SIMs, 32 callees each) is the old one's (50,000 SIMs, 16 each). (A GoIP found on the
IP plane is an address: the numbers it dials appear in the event feed under its SIMs,
which the call plane flags in turn.)
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Sequence
from itertools import islice
from typing import Any

from edge.detection import Detection, Evidence, Subject
from edge.records import BaseStationEvent

NOTHING: tuple[()] = ()
_SOURCES = ("simbox.sim", "watchlist.hit", "simbox.device")
_CONTACTS = {"call_start": 0, "sms": 1}
_KIND_NAME = ("call_start", "sms")
_REC = struct.Struct("<dBB")  # time, contact kind, length of the number that follows
_pack = _REC.pack
_HEAD = _REC.size


class VictimWarningStage:
    name = "warning"
    consumes: tuple[type, ...] = (BaseStationEvent, Detection)

    def __init__(self, *, window_s: float = 7 * 86400.0, recent_s: float = 86400.0,
                 recent_per_sim: int = 32, max_sims: int = 100_000,
                 max_victims: int = 1_000_000, device_sources: bool = False) -> None:
        self.device_sources = device_sources
        self.window_s = window_s
        self.recent_s = recent_s
        self.recent_per_sim = recent_per_sim
        self.max_sims = max_sims
        self.max_victims = max_victims
        # imsi -> [packed callees, how many, IMEI of the last (with device_sources)];
        # the time of the last call in a dict of its own, in the same order (eviction
        # reads only the times)
        self._recent: dict[str, list[Any]] = {}
        self._last: dict[str, float] = {}
        self._flagged: dict[str, tuple[str, float]] = {}  # imsi or msisdn -> (why, since)
        self._flagged_imeis: dict[str, tuple[str, float]] = {}  # of SIM-box devices
        self._any_source = False  # one attribute per event until something is flagged
        self._warned: OrderedDict[str, float] = OrderedDict()
        self.c = dict.fromkeys(("sources", "victims", "suppressed", "evicted"), 0)

    def feed(self, rec: Any) -> Sequence[Detection]:
        if rec.__class__ is not BaseStationEvent:
            return self._source(rec) if type(rec) is Detection else NOTHING
        ev: BaseStationEvent = rec
        kind = _CONTACTS.get(ev.type)
        if kind is None or ev.dir != "mo" or not ev.peer:
            return NOTHING
        if self._any_source:
            flagged = self._flagged
            why = flagged.get(ev.imsi) or (flagged.get(ev.msisdn) if ev.msisdn else None)
            if why is None and ev.imei is not None and self._flagged_imeis:
                why = self._flagged_imeis.get(ev.imei[:14])
            if why is not None:
                return self._warn(ev.peer, ev.ts, why[0], ev.imsi, ev.type)
        peer = ev.peer.encode()
        n = len(peer)
        if n > 255:  # not a number: nothing to warn
            return NOTHING
        r = self._recent.get(ev.imsi)
        if r is None:
            if len(self._recent) >= self.max_sims:
                self._evict()
            r = self._recent[ev.imsi] = [bytearray(), 0, None]
        buf = r[0]
        buf += _pack(ev.ts, kind, n)
        buf += peer
        self._last[ev.imsi] = ev.ts
        if self.device_sources:  # only read for device sources (a string a SIM)
            r[2] = ev.imei
        if r[1] == self.recent_per_sim:  # the oldest call goes
            del buf[:_HEAD + buf[_HEAD - 1]]
        else:
            r[1] += 1
        return NOTHING

    def _evict(self) -> None:
        """About the eighth of the tracked SIMs whose last call is oldest (older than
        that quantile of an even sample: one pass, no sort of every SIM), so at least
        ~7/8 of ``max_sims`` stay tracked."""
        rec = self._recent
        last = self._last
        step = max(1, len(last) // 1024)
        lasts = sorted(islice(last.values(), 0, None, step))
        cut = lasts[len(lasts) // 8]
        gone = [k for k, t in last.items() if t <= cut]
        for k in gone:
            del rec[k]
            del last[k]
        self.c["evicted"] += len(gone)

    def _source(self, d: Detection) -> Sequence[Detection]:
        if d.kind not in _SOURCES:
            return NOTHING
        if d.kind == "simbox.device":
            return self._device(d) if self.device_sources else NOTHING
        out: list[Detection] = []
        if d.kind == "watchlist.hit" and d.evidence and \
                d.evidence[0].features.get("field") in ("msisdn", "imei"):
            # the SIM's own number or device is listed: the SIM (its IMSI, as the
            # matcher relates it) is a source too, with the callees it kept; the hit
            # may come after the event's other stages have seen it (the matcher reports
            # a run of events at once), so this is where that event's call is counted
            for s in d.related:
                if s.type == "imsi":
                    out += self._flag(s.id, d.kind, d.ts)
        if d.subject.type in ("imsi", "phone", "msisdn"):
            out += self._flag(d.subject.id, d.kind, d.ts)
        return out

    def _device(self, d: Detection) -> list[Detection]:
        """A SIM-box device: its IMEIs are sources from now on, and every SIM seen
        calling from one of them is flagged (with the callees it kept)."""
        # 14 digits (TAC + serial), as the call plane names them: IMEI and IMEISV agree
        imeis = {s.id[:14] for s in (d.subject, *d.related) if s.type == "imei"} - \
            self._flagged_imeis.keys()
        if not imeis:
            return []
        for imei in imeis:
            self._flagged_imeis[imei] = (d.kind, d.ts)
        self._any_source = True
        out: list[Detection] = []
        for imsi in [k for k, r in self._recent.items() if r[2] and r[2][:14] in imeis]:
            out += self._flag(imsi, d.kind, d.ts)
        return out

    def _flag(self, ident: str, why: str, ts_flag: float) -> list[Detection]:
        if ident in self._flagged:
            return []
        self._flagged[ident] = (why, ts_flag)
        self._any_source = True
        self.c["sources"] += 1
        out: list[Detection] = []
        r = self._recent.pop(ident, None)
        self._last.pop(ident, None)
        if r is None:
            return out
        buf, i = r[0], 0
        while i < len(buf):  # called before it was flagged, oldest first
            ts, kind, n = _REC.unpack_from(buf, i)
            i += _REC.size
            peer = buf[i:i + n].decode()
            i += n
            if ts_flag - ts <= self.recent_s:
                out += self._warn(peer, ts_flag, why, ident, _KIND_NAME[kind], earlier_ts=ts)
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
        return {**self.c, "flagged": len(self._flagged),
                "flagged_imeis": len(self._flagged_imeis), "tracked_sims": len(self._recent)}
