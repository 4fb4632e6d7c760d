"""Stage ``watchlist``: every input's identifiers against the police watchlists.

Matched, each in O(1) (:mod:`edge.watchlist.model`):

- call plane (:class:`BaseStationEvent`): IMSI, IMEI, MSISDN and the peer number;
- IP plane (:class:`Packet`): source and destination addresses (longest prefix),
  the numbers in SIP From/To/Contact, the IMSI, ICCID, IMEI and number in GoIP
  keepalives, DNS query names and TLS SNI (domains, subdomains included), HTTP URLs;
- depot (:class:`~edge.courier.records.Parcel`): the waybill's sender and receiver
  phones and the sender id.

A hit is a ``watchlist.hit`` report at the time of the record that carried it (so
within a second of the event live), with the entry's list, reason, case and issuer
as evidence, at most once per identifier per ``realert_s``. Payload parsing only
happens for the kinds the current list holds, and nothing at all while it is empty:
then the stage costs one attribute read per record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edge.detection import Detection, Evidence, Subject
from edge.records import BaseStationEvent, Packet
from edge.report.pseudonym import Pseudonymiser
from edge.watchlist import extract
from edge.watchlist.model import Entry

NOTHING: tuple[()] = ()
_EVENT_FIELDS = (("imsi", "imsi"), ("imei", "imei"), ("msisdn", "msisdn"), ("peer", "msisdn"))
_SUBJECT = {"msisdn": "phone", "ip": "ip", "domain": "domain", "url": "url",
            "sender_id": "sender_id", "imsi": "imsi", "imei": "imei", "iccid": "iccid"}


def _parcel_type() -> tuple[type, ...]:
    try:
        from edge.courier.records import Parcel
    except ImportError:  # the depot part is optional
        return ()
    return (Parcel,)


class WatchlistMatcher:
    name = "watchlist"

    def __init__(self, store: Any, pseudonymiser: Pseudonymiser, *,
                 realert_s: float = 3600.0, max_alerted: int = 100_000) -> None:
        self._store = store
        self._pseudo = pseudonymiser
        self.realert_s = realert_s
        self._max_alerted = max_alerted
        self._last_alert: dict[tuple[str, str], float] = {}
        self._parcel = _parcel_type()
        self.consumes: tuple[type, ...] = (BaseStationEvent, Packet, *self._parcel)
        self._kinds_of: tuple[int, frozenset[str]] = (-1, frozenset())
        self.checked = 0
        self.hits = 0
        self.suppressed = 0
        self.hits_by_plane = {"call": 0, "ip": 0, "depot": 0}

    def _kinds(self, wl: Any) -> frozenset[str]:
        if self._kinds_of[0] != wl.version:  # recomputed once per list version
            self._kinds_of = (wl.version, frozenset(wl.kinds))
        return self._kinds_of[1]

    def feed(self, rec: Any) -> Sequence[Detection]:
        wl = self._store.current()
        if not wl._n:
            return NOTHING
        self.checked += 1
        t = type(rec)
        if t is BaseStationEvent:
            return self._event(wl, rec)
        if t is Packet:
            return self._packet(wl, rec)
        if self._parcel and t is self._parcel[0]:
            return self._parcel_hits(wl, rec)
        return NOTHING

    # -- planes
    def _event(self, wl: Any, ev: BaseStationEvent) -> list[Detection]:
        out: list[Detection] = []
        exact = wl.exact
        for field, kind in _EVENT_FIELDS:
            value = getattr(ev, field)
            if value is None:
                continue
            e = exact(kind, value, self._pseudo, ev.ts)
            if e is not None:
                related = [Subject("phone" if f in ("msisdn", "peer") else f, getattr(ev, f))
                           for f, _ in _EVENT_FIELDS if f != field and getattr(ev, f)]
                self._hit(out, e, kind, value, ev.ts, "call", related,
                          {"field": field, "event_type": ev.type, "direction": ev.dir,
                           "cell": ev.cell})
        return out

    def _packet(self, wl: Any, pkt: Packet) -> list[Detection]:
        kinds = self._kinds(wl)
        out: list[Detection] = []
        ctx = {"proto": pkt.proto, "sport": pkt.sport, "dport": pkt.dport,
               "frame": pkt.frame, "teid": pkt.teid}
        if "ip" in kinds:
            for side, addr in (("src", pkt.src), ("dst", pkt.dst)):
                e = wl.lookup("ip", addr, self._pseudo, pkt.ts)
                if e is not None:
                    self._hit(out, e, "ip", addr, pkt.ts, "ip",
                              [Subject("ip", pkt.dst if side == "src" else pkt.src)],
                              {"field": side, **ctx})
        p = pkt.payload
        if not p:
            return out
        found: list[tuple[str, str, str]] = []
        if "msisdn" in kinds:
            found += [("msisdn", n, "sip") for n in extract.sip_numbers(p)]
        if kinds & {"imsi", "iccid", "imei", "msisdn"} and p[:4] == b"req:":
            found += [(k, v, "goip_keepalive") for k, v in extract.goip_ids(p)]
        if "domain" in kinds:
            name = extract.dns_qname(p) if 53 in (pkt.sport, pkt.dport) else None
            if name is None and pkt.proto == 6:
                name = extract.tls_sni(p)
            if name:
                found.append(("domain", name, "dns" if 53 in (pkt.sport, pkt.dport)
                              else "tls_sni"))
        if "url" in kinds and pkt.proto == 6:
            url = extract.http_url(p)
            if url:
                found.append(("url", url, "http"))
        for kind, value, where in found:
            e = wl.lookup(kind, value, self._pseudo, pkt.ts)
            if e is not None:
                self._hit(out, e, kind, value, pkt.ts, "ip", [Subject("ip", pkt.src)],
                          {"field": where, **ctx})
        return out

    def _parcel_hits(self, wl: Any, parcel: Any) -> list[Detection]:
        rec = parcel.waybill_record
        if rec is None:
            return []
        out: list[Detection] = []
        for field, kind in (("sender_phone", "msisdn"), ("receiver_phone", "msisdn"),
                            ("sender_id", "sender_id")):
            value = getattr(rec, field, None)
            if not value:
                continue
            e = wl.lookup(kind, value, self._pseudo, parcel.ts)
            if e is not None:
                self._hit(out, e, kind, value, parcel.ts, "depot",
                          [Subject("waybill", parcel.waybill or "")],
                          {"field": field, "lane": parcel.lane, "parcel_seq": parcel.seq})
        return out

    # -- reporting
    def _hit(self, out: list[Detection], e: Entry, kind: str, value: str, ts: float,
             plane: str, related: list[Subject], ctx: dict[str, Any]) -> None:
        key = (kind, value)
        last = self._last_alert.get(key)
        if last is not None and ts - last < self.realert_s:
            self.suppressed += 1
            return
        if len(self._last_alert) >= self._max_alerted:
            self._last_alert.clear()
        self._last_alert[key] = ts
        self.hits += 1
        self.hits_by_plane[plane] += 1
        subject_type = _SUBJECT.get(kind, kind)
        evidence = {"plane": plane, "kind": e.kind, "list": e.list, "case": e.case,
                    "issuer": e.issuer, "watchlist_version": self._store.current().version,
                    **{k: v for k, v in ctx.items() if v is not None}}
        out.append(Detection(
            ts, "watchlist.hit", "high", 1.0, Subject(subject_type, value),
            [Evidence(f"{kind} on watchlist '{e.list}'"
                      + (f" ({e.reason})" if e.reason else ""), evidence)],
            ["police", "telecom"] if plane != "depot" else ["police"],
            related=related, detector=self.name))

    def tick(self, now: float) -> Sequence[Detection]:
        return NOTHING

    def flush(self, now: float) -> Sequence[Detection]:
        return NOTHING

    def counters(self) -> dict[str, int | float]:
        return {"checked": self.checked, "hits": self.hits, "suppressed": self.suppressed,
                **{f"hits_{k}": v for k, v in self.hits_by_plane.items()},
                "entries": len(self._store.current()), "version": self._store.current().version}
