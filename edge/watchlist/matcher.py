"""Stage ``watchlist``: base-station events whose identifiers are on the watchlist.

The watchlist (``edge.downlink.watchlist``) holds keyed pseudonyms (``h1:...``, the
site key, the same scheme as reports) or, where the site allows, clear identifiers.
Each event's IMSI, IMEI, MSISDN and peer number are checked; a hit becomes a
``watchlist.hit`` report for the police and telecom channels, at most once per
identifier per ``realert_s`` of event time. Nothing is computed while the list is
empty, so an agent without a watchlist pays one attribute read per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edge.detection import Detection, Evidence, Subject
from edge.records import BaseStationEvent
from edge.report.pseudonym import Pseudonymiser

NOTHING: tuple[()] = ()
_FIELDS = ("imsi", "imei", "msisdn", "peer")


class WatchlistMatcher:
    name = "watchlist"
    consumes = (BaseStationEvent,)

    def __init__(self, store: Any, pseudonymiser: Pseudonymiser, *,
                 realert_s: float = 3600.0, max_alerted: int = 100_000) -> None:
        self._store = store
        self._pseudo = pseudonymiser
        self.realert_s = realert_s
        self._max_alerted = max_alerted
        self._last_alert: dict[tuple[str, str], float] = {}
        self.checked = 0
        self.hits = 0
        self.suppressed = 0

    def feed(self, ev: BaseStationEvent) -> Sequence[Detection]:
        wl = self._store.current()
        if not wl.entries:
            return NOTHING
        self.checked += 1
        clear = wl.format == "clear"
        out: list[Detection] = []
        for field in _FIELDS:
            value = getattr(ev, field)
            if value is None or (wl.id_type not in ("any", field) and
                                 not (wl.id_type == "phone" and field in ("msisdn", "peer"))):
                continue
            key = value if clear else self._pseudo.pseudonym(field, value)
            if key not in wl.entries:
                continue
            last = self._last_alert.get((field, value))
            if last is not None and ev.ts - last < self.realert_s:
                self.suppressed += 1
                continue
            if len(self._last_alert) >= self._max_alerted:
                self._last_alert.clear()
            self._last_alert[(field, value)] = ev.ts
            self.hits += 1
            related = [Subject(f, getattr(ev, f)) for f in _FIELDS
                       if f != field and getattr(ev, f) is not None]
            out.append(Detection(
                ev.ts, "watchlist.hit", "high", 1.0,
                Subject("phone" if field in ("msisdn", "peer") else field, value),
                [Evidence(f"{field} of a {ev.type} event is on the watchlist",
                          {"field": field, "event_type": ev.type,
                           "direction": ev.dir, "cell": ev.cell,
                           "watchlist_version": wl.version})],
                ["police", "telecom"], related=related, detector=self.name))
        return out

    def tick(self, now: float) -> Sequence[Detection]:
        return NOTHING

    def flush(self, now: float) -> Sequence[Detection]:
        return NOTHING

    def counters(self) -> dict[str, int | float]:
        wl = self._store.current()
        return {"checked": self.checked, "hits": self.hits, "suppressed": self.suppressed,
                "version": wl.version, "entries": len(wl.entries)}
