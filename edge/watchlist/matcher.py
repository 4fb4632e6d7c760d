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
as evidence, at most once per identifier per ``realert_s``; an entry past its
``expires`` (event time) no longer hits.

Cost. The pipeline hands call-plane events over in runs (``feed_many``: a tick's
worth, at most 4,096), and only the events of a run holding a listed value are matched
one by one. When the call plane runs before this stage (``sims``, wired by
:mod:`edge.telecom.domain`), its per-SIM state, looked up per event anyway, carries
this stage's stamp: a SIM's IMSI, IMEI and own number are looked at once per list
version (and again when its device or number changes), from the events the call
plane queues; without it, each of a run's IMSIs and IMEIs is looked at once as a set
(C loops), only values never seen under the list in force resolved. A run's numbers
(the peers, and the queued SIMs' own) are looked up a set at a time without a memo:
one keyed hash each against pseudonymised entries (in C with the native build), a
probe against clear ones. ``bench/bench_watchlist.py`` compares an empty, a 5-entry
and a 1 M-entry list. Packets and parcels go one by one.

Each identifier kind the list holds has a memo, observed value -> entry or None, for
the list object in force (``store.latest``: a new version is a new object, and the
memos and stamps are dropped the record it appears, so an update takes effect at once):
an identifier seen before costs one dict probe, whatever normalising, keyed hashing
(pseudonymised entries) or prefix walk its first lookup took. Memos are bounded
(``memo_size`` per kind, the older half dropped when full). Kinds the list does not
hold are not looked at, payloads are parsed only for the kinds it holds, and with no
list the stage costs two attribute reads per record. The file a separate process
replaced is picked up from ``tick`` (a stat at most every second).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import count, islice
from operator import attrgetter
from typing import Any, Protocol

from edge.detection import Detection, Evidence, Subject
from edge.records import BaseStationEvent, Packet
from edge.report.pseudonym import Pseudonymiser
from edge.telecom.callplane.state import NO_NUMBER
from edge.watchlist import extract
from edge.watchlist.model import Entry

NOTHING: tuple[()] = ()
_MISS: Any = object()
#: kinds whose values feeds carry as digits, and their pseudonym domain
_DIGIT_KINDS = {"imsi": "imsi", "imei": "imei", "msisdn": "phone", "iccid": "iccid"}
_EVENT_FIELDS = (("imsi", "imsi"), ("imei", "imei"), ("msisdn", "msisdn"), ("peer", "msisdn"))
_GETTERS = {f: attrgetter(f) for f, _ in _EVENT_FIELDS}
_GET_MSISDN, _GET_PEER = _GETTERS["msisdn"], _GETTERS["peer"]
_SIM_KINDS = ("imsi", "imei")  # checked once per SIM and list when the call plane runs
_GENERATIONS = count(1)  # of SIM checks: a new list (version) is a new generation
_SUBJECT = {"msisdn": "phone", "ip": "ip", "domain": "domain", "url": "url",
            "sender_id": "sender_id", "imsi": "imsi", "imei": "imei", "iccid": "iccid"}


#: what runs need of a kind: getters of its fields, memo, hits, resolver of unseen values
_RunKind = tuple[tuple[Any, ...], dict[str, "Entry | None"], dict[str, Entry],
                 Callable[[set[str]], None]]


def _expired(e: Entry, ts: float) -> bool:
    return e.expires is not None and ts > e.expires


def _make_room(memo: dict[str, Any], incoming: int, size: int) -> None:
    """Drop the older half of a memo that ``incoming`` more answers would overfill
    (dicts keep insertion order: the first half is the oldest)."""
    if len(memo) + incoming > size:
        for k in list(islice(memo, len(memo) // 2)):
            del memo[k]


class SimStates(Protocol):
    """What the call plane's tables (:class:`edge.telecom.callplane.state.EntityTables`)
    offer a checker of SIM identifiers: while ``check_gen`` is not 0, the fold queues
    in ``unchecked`` each event of a SIM whose state's ``checked`` stamp is not that
    generation (its device changed, or it was never checked under this list), as
    (state, event). The state's ``imei`` is the 14-digit key of its device, its
    ``number`` the ``hash`` of its first number (``NO_NUMBER`` before one); the fold
    clears the stamp when either changes or the event carries a number other than the
    first."""

    check_gen: int
    unchecked: list[tuple[Any, BaseStationEvent]]


class _Unresolved(Exception):
    """Resolving a run's new values failed (``error``): the run is matched singly."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _parcel_type() -> tuple[type, ...]:
    try:
        from edge.courier.records import Parcel
    except ImportError:  # the depot part is optional
        return ()
    return (Parcel,)


class WatchlistMatcher:
    name = "watchlist"

    def __init__(self, store: Any, pseudonymiser: Pseudonymiser, *,
                 realert_s: float = 3600.0, max_alerted: int = 100_000,
                 memo_size: int = 1 << 17, sims: SimStates | None = None) -> None:
        self._store = store
        # the call plane's SIM states when it folds each run before this stage sees it
        self._sims = sims
        self._sim_gen = 0
        self._pseudo = pseudonymiser
        self.realert_s = realert_s
        self._max_alerted = max_alerted
        self.memo_size = memo_size
        self._last_alert: dict[tuple[str, str], float] = {}
        self._parcel = _parcel_type()
        self.consumes: tuple[type, ...] = (BaseStationEvent, Packet, *self._parcel)
        self._wl: Any = None
        self._n = 0
        self._kinds: frozenset[str] = frozenset()
        self._memos: dict[str, dict[str, Entry | None]] = {}
        self._hits: dict[str, dict[str, Entry]] = {}  # the memos' non-None answers
        self._hashers: dict[str, Callable[[str], str]] = {}
        # per kind the list can match on events: (getters of its fields, memo, hits,
        # resolver of a set of unseen values), for runs; the SIM's kinds (IMSI, IMEI)
        # and the numbers (the SIM's own and the peer's) apart
        self._sim_probes: tuple[Callable[[str], bool] | None, ...] = (None, None)
        self._sim_run_kinds: tuple[_RunKind, ...] = ()
        # for runs: whether a set of numbers holds a listed one (hits recorded)
        self._numbers_listed: Callable[[set[Any]], bool] | None = None
        self._m_imsi: dict[str, Entry | None] | None = None
        self._m_imei: dict[str, Entry | None] | None = None
        self._m_phone: dict[str, Entry | None] | None = None
        self._m_sub: dict[str, Any] | None = None
        self._switch(store.latest)
        self.checked = 0
        self.hits = 0
        self.suppressed = 0
        self.memo_misses = 0
        self.hits_by_plane = {"call": 0, "ip": 0, "depot": 0}

    def _switch(self, wl: Any) -> None:
        """A new list (or version) is in force: fresh memos for the kinds it holds."""
        self._wl = wl
        self._n = len(wl)
        self._kinds = kinds = frozenset(wl.kinds)  # which payloads are worth parsing
        if "any" in kinds:  # the first format: bare identifiers of the event fields
            kinds |= {"imsi", "imei", "msisdn", "sender_id"}
        self._memos = {k: {} for k in kinds}
        self._hits = {k: {} for k in kinds}
        self._hashers = {k: self._pseudo.hasher(_DIGIT_KINDS[k])
                         for k in wl._pseudo_kinds if k in _DIGIT_KINDS}
        self._sim_run_kinds = tuple((tuple(_GETTERS[f] for f, k2 in _EVENT_FIELDS if k2 == k),
                                     self._memos[k], self._hits[k], self._resolver(k))
                                    for k in _SIM_KINDS if k in kinds)
        self._sim_probes = (self._sim_probe("imsi"), self._sim_probe("imei"))
        self._numbers_listed = self._numbers_check() if "msisdn" in kinds else None
        if self._sims is not None:
            # SIMs are checked again under this list from the next run on; this run's
            # were folded before it came: matched in full
            on_events = self._sim_run_kinds or self._numbers_listed is not None
            self._sim_gen = next(_GENERATIONS) if self._n and on_events else 0
            self._sims.check_gen = self._sim_gen
            self._sims.unchecked = []
        self._m_imsi = self._memos.get("imsi")
        self._m_imei = self._memos.get("imei")
        self._m_phone = self._memos.get("msisdn")
        self._m_sub = {} if kinds & {"imsi", "imei", "msisdn"} else None

    def _resolve(self, kind: str, value: str) -> Entry | None:
        """First sight of ``value`` under this list: the full lookup, memoised."""
        memo = self._memos[kind]
        _make_room(memo, 1, self.memo_size)
        self.memo_misses += 1
        wl = self._wl
        if kind in _DIGIT_KINDS and value.isdigit() and value.isascii() and not wl._any \
                and not (kind == "msisdn" and value.startswith("00")):
            # as feeds carry them: already normalised (an IMEI to its 14 digits)
            norm = value[:14] if kind == "imei" else value
            d = wl.kinds.get(kind)
            e = None
            if d is not None:
                row = d.get(norm)
                if row is None and kind in self._hashers:
                    norm = self._hashers[kind](norm)
                    row = d.get(norm)
                if row is not None:
                    e = Entry(kind, norm, *row)
        else:
            e = wl.lookup(kind, value, self._pseudo)
        memo[value] = e
        if e is not None:
            self._hits[kind][value] = e
        return e

    def _resolver(self, kind: str) -> Callable[[set[str]], None]:
        """For runs: a function resolving a set of values of ``kind`` never seen under
        this list (each memoised, hits kept apart), with the same answers as
        :meth:`_resolve` on each. The common case (digits as feeds carry them, against
        a table of clear values and pseudonyms) is done a set at a time in C, bar one
        keyed hash per value for a table holding pseudonyms; everything is bound here
        because a run is often a second of events, and the per-run cost shows."""
        wl, resolve_one = self._wl, self._resolve
        table = wl.kinds.get(kind)
        memo, hits = self._memos[kind], self._hits[kind]
        if kind not in _DIGIT_KINDS or table is None or wl._any:
            def one_by_one(new: set[str]) -> None:
                for v in new:
                    resolve_one(kind, v)
            return one_by_one
        d: dict[str, list[Any]] = table
        hasher = self._hashers.get(kind)
        clear = kind in wl._clear_kinds  # else every listed value is a pseudonym
        is_imei, is_msisdn = kind == "imei", kind == "msisdn"

        def resolve(new: set[str]) -> None:
            _make_room(memo, len(new), self.memo_size)
            joined = "\n" + "\n".join(new)  # one C pass over all of them
            if not joined.isascii() or not joined.replace("\n", "").isdigit() or (
                    is_msisdn and "\n00" in joined):  # some need normalising first
                odd = [v for v in new if not (v.isdigit() and v.isascii())
                       or (is_msisdn and v.startswith("00"))]
                for v in odd:
                    resolve_one(kind, v)
                new = new.difference(odd)
            self.memo_misses += len(new)
            memo.update(dict.fromkeys(new))  # misses, unless found below
            values = list(new)
            norms = [v[:14] for v in values] if is_imei else values
            if clear and not d.keys().isdisjoint(norms):  # clear values listed
                for v, n in zip(values, norms, strict=True):
                    row = d.get(n)
                    if row is not None:
                        memo[v] = hits[v] = Entry(kind, n, *row)
            if hasher is not None:
                pseudonyms = list(map(hasher, norms))
                if not d.keys().isdisjoint(pseudonyms):
                    for v, n in zip(values, pseudonyms, strict=True):
                        row = d.get(n)
                        if row is not None and memo[v] is None:
                            memo[v] = hits[v] = Entry(kind, n, *row)
        return resolve

    def _numbers_check(self) -> Callable[[set[Any]], bool]:
        """For runs: a function telling whether a set of numbers (the run's peers and
        SIMs' own) holds a listed one, each listed one kept in the number hits. Not
        memoised: the numbers as feeds carry them (digits) are looked up a set at a
        time, one keyed hash each against a table holding pseudonyms (~0.2 us in C)
        and a probe, which costs about what a memo's probe and upkeep did (most
        numbers a feed carries are seen once or twice); the others, one by one
        through the memo. The same answers as :meth:`_resolve`."""
        wl, match = self._wl, self._match
        hits = self._hits["msisdn"]
        table = wl.kinds.get("msisdn")
        if table is None or wl._any:
            def one_by_one(numbers: set[Any]) -> bool:
                numbers.discard(None)
                return any([match("msisdn", v) is not None for v in numbers])
            return one_by_one
        d: dict[str, list[Any]] = table
        hasher = self._hashers.get("msisdn")
        clear = "msisdn" in wl._clear_kinds  # else every listed value is a pseudonym

        def listed(numbers: set[Any]) -> bool:
            numbers.discard(None)
            if not numbers:
                return False
            hot = False
            joined = "\n" + "\n".join(numbers)
            if not joined.isascii() or not joined.replace("\n", "").isdigit() or \
                    "\n00" in joined:  # some need normalising first: through the memo
                odd = [v for v in numbers if not (v.isdigit() and v.isascii())
                       or v.startswith("00")]
                hot = any([match("msisdn", v) is not None for v in odd])
                numbers = numbers.difference(odd)
            values: list[str] = list(numbers)
            if clear and not d.keys().isdisjoint(values):  # clear values listed
                hot = True
                for v in values:
                    row = d.get(v)
                    if row is not None:
                        hits[v] = Entry("msisdn", v, *row)
            if hasher is not None:
                pseudonyms = list(map(hasher, values))
                if not d.keys().isdisjoint(pseudonyms):
                    hot = True
                    for v, n in zip(values, pseudonyms, strict=True):
                        row = d.get(n)
                        if row is not None and v not in hits:
                            hits[v] = Entry("msisdn", n, *row)
            return hot
        return listed

    def _subscriber(self, ev: BaseStationEvent, sub: dict[str, Any]) -> tuple[Any, ...]:
        """(IMEI, MSISDN, hits without the number, hits with it) of a SIM, memoised."""
        base = tuple((field, field, e) for field, value in (("imsi", ev.imsi),
                                                            ("imei", ev.imei))
                     if value is not None and (e := self._match(field, value)) is not None)
        old = sub.get(ev.imsi)
        number = ev.msisdn if ev.msisdn is not None else old[1] if old is not None else None
        e = self._match("msisdn", number) if number is not None else None
        with_number = base + (("msisdn", "msisdn", e),) if e is not None else base
        _make_room(sub, 1, self.memo_size)
        s = sub[ev.imsi] = (ev.imei, number, base or None, with_number or None)
        return s

    def _match(self, kind: str, value: str) -> Entry | None:
        memo = self._memos.get(kind)
        if memo is None:
            return None
        e = memo.get(value, _MISS)
        return self._resolve(kind, value) if e is _MISS else e  # type: ignore[return-value]

    def feed(self, rec: Any) -> Sequence[Detection]:
        wl = self._store.latest
        if wl is not self._wl:
            self._switch(wl)
        if not self._n:
            return NOTHING
        self.checked += 1
        t = type(rec)
        if t is BaseStationEvent:
            return self._event(rec)
        if t is Packet:
            return self._packet(rec)
        if self._parcel and t is self._parcel[0]:
            return self._parcel_hits(rec)
        return NOTHING

    def feed_many(self, records: Sequence[Any],
                  on_error: Callable[[Exception], None]) -> Sequence[Detection]:
        """A run of records (the pipeline hands them over in runs, before the next
        tick, detection routed to stages or status report, and at the end of every
        live ``feed``): the same detections, in the same order, as ``feed`` on each.

        Why: one call per event cost more than matching. For a run of call-plane
        events each field the list can match is looked at once as a set (C loops);
        only values never seen under this list are resolved, a set at a time, and
        only the events of a run holding a listed value are matched one by one.
        When the call plane folded the run before (``sims``), a SIM's IMSI and device
        are looked at only for the events it queued (SIMs not yet checked under this
        list, or on a new device); the numbers, of every event."""
        wl = self._store.latest
        switched = wl is not self._wl
        if switched:
            self._switch(wl)
        queue: list[tuple[Any, BaseStationEvent]] | None = None
        if self._sim_gen:
            sims = self._sims
            queue = sims.unchecked  # type: ignore[union-attr]
            if queue:
                sims.unchecked = []  # type: ignore[union-attr]
        if not self._n:
            return NOTHING
        if records[0].__class__ is not BaseStationEvent or \
                len(set(map(type, records))) != 1:  # packets, parcels, mixed: one by one
            return self._one_by_one(records, on_error)  # (queued SIMs stay unchecked)
        # the SIMs' identifiers: those of the run, or of the events the call plane
        # queued (SIMs not yet checked under this list); then the run's numbers (with
        # the queue, the peers': a SIM's own number is one of its identifiers)
        sim_fields: list[tuple[Any, dict[str, Entry]]] = []
        hot_ids: set[int] = set()
        numbers_listed = self._numbers_listed
        num_hot = False
        try:
            if switched or queue is None:
                if self._look_at(self._sim_run_kinds, records):
                    sim_fields = [(get, hits) for gets, _, hits, _ in self._sim_run_kinds
                                  if hits for get in gets]
                if numbers_listed is not None:
                    numbers = set(map(_GET_MSISDN, records))
                    numbers.update(map(_GET_PEER, records))
                    num_hot = numbers_listed(numbers)
            else:
                # the peers and the queued SIMs' own numbers, then the queued SIMs
                if numbers_listed is not None:
                    numbers = set(map(_GET_PEER, records))
                    numbers.update([ev.msisdn for _, ev in queue])
                    num_hot = numbers_listed(numbers)
                if queue:
                    hot_ids = self._check_sims(queue)
        except _Unresolved as exc:  # counted; the run matched singly
            on_error(exc.error)
            return self._one_by_one(records, on_error)
        self.checked += len(records)
        if not (sim_fields or hot_ids or num_hot):
            return NOTHING
        # the events holding a listed value (those of a listed SIM, or calling a listed
        # number) are matched one by one, in order; the others cannot hit
        nums = self._hits.get("msisdn", {})
        fields = sim_fields + ([(_GET_MSISDN, nums), (_GET_PEER, nums)] if num_hot else [])
        listed = [ev for ev in records if id(ev) in hot_ids
                  or any(get(ev) in hits for get, hits in fields)]
        return self._one_by_one(listed, on_error, self._event)

    @staticmethod
    def _look_at(kinds: tuple[_RunKind, ...], events: Sequence[BaseStationEvent],
                 more: Sequence[str | None] = ()) -> bool:
        """Resolve the values of ``kinds`` in ``events`` (and ``more``) never seen under
        this list; whether any of them is listed."""
        hot = False
        for gets, memo, hits, resolve in kinds:
            values = set(map(gets[0], events))
            for get in gets[1:]:  # the number: the SIM's own and the peer's
                values.update(map(get, events))
            if more:
                values.update(more)
            new = values.difference(memo)
            if new:
                new.discard(None)
                if new:
                    try:
                        resolve(new)
                    except Exception as exc:  # noqa: BLE001 - handed to the caller
                        for v in new:
                            memo.pop(v, None)
                        raise _Unresolved(exc) from exc
            if hits and not hits.keys().isdisjoint(values):
                hot = True
        return hot

    def _check_sims(self, queue: list[tuple[Any, BaseStationEvent]]) -> set[int]:
        """The events the call plane queued: the SIM's IMSI, the event's IMEI and
        number, and the device the SIM is on now (its later events are not queued for
        it) looked up. A SIM with none listed is stamped with this list's generation,
        so its next events are not queued, once the event carries its number (its
        first, as the call plane hashed it) or it has none yet. The ids of the queued
        events holding a listed (or odd) value, to be matched one by one; their SIMs
        stay unstamped. A SIM comes about once per list version: no memo for its IMSI
        and IMEI; its number was resolved with the run's peers (``nums``: the listed
        numbers seen under this list, never trimmed)."""
        gen = self._sim_gen
        imsi_listed, imei_listed = self._sim_probes
        nums = self._hits.get("msisdn", {})
        hot: set[int] = set()
        for st, ev in queue:
            dev = st.imei
            imei = ev.imei
            num = ev.msisdn
            if (imsi_listed is not None and imsi_listed(ev.imsi)) or (
                    num is not None and num in nums) or (
                    imei is not None and imei_listed is not None and imei_listed(imei)) or (
                    dev is not None and (not (dev.isdigit() and dev.isascii()) or (
                        imei_listed is not None and (imei is None or imei[:14] != dev)
                        and imei_listed(dev)))):
                # (a device key not plain digits: the IMEIs of its later events might
                # normalise to another, so they are all looked at)
                hot.add(id(ev))
            elif (hash(num) if num is not None else NO_NUMBER) == st.number:
                st.checked = gen  # (the event carries its first number, or it has none)
        return hot

    def _sim_probe(self, kind: str) -> Callable[[str], bool] | None:
        """For the queued SIMs: a function telling whether an IMSI or IMEI is listed
        (:meth:`_resolve`'s answer, not memoised: a SIM comes about once per list
        version), or None when the list holds none of ``kind``."""
        wl, match = self._wl, self._match
        table = wl.kinds.get(kind)
        if wl._any:
            return lambda value: match(kind, value) is not None
        if table is None:
            return None
        d: dict[str, list[Any]] = table
        clear = kind in wl._clear_kinds  # else every listed value is a pseudonym
        hasher = self._hashers.get(kind)
        is_imei = kind == "imei"

        def listed(value: str) -> bool:
            if not (value.isdigit() and value.isascii()):
                return match(kind, value) is not None  # needs normalising first
            norm = value[:14] if is_imei else value
            return (clear and norm in d) or (hasher is not None and hasher(norm) in d)
        return listed

    def _one_by_one(self, records: Sequence[Any], on_error: Callable[[Exception], None],
                    feed: Callable[[Any], Sequence[Detection]] | None = None
                    ) -> list[Detection]:
        out: list[Detection] = []
        feed = feed or self.feed
        for rec in records:
            try:
                found = feed(rec)
            except Exception as exc:  # noqa: BLE001 - the pipeline counts it
                on_error(exc)
                continue
            if found:
                out += found
        return out

    # -- planes
    def _event(self, ev: BaseStationEvent) -> Sequence[Detection]:
        found: tuple[tuple[str, str, Entry], ...] | None = None
        sub = self._m_sub
        msisdn = ev.msisdn
        if sub is not None:
            # a SIM's IMSI, IMEI and number come together: one probe per event for a
            # SIM seen before in the same device with the same number, instead of three
            s = sub.get(ev.imsi)
            if s is None or s[0] != ev.imei or (msisdn is not None and s[1] != msisdn):
                s = self._subscriber(ev, sub)
            found = s[2] if msisdn is None else s[3]
        m = self._m_phone
        if m is not None:
            value = ev.peer
            if value is not None:
                e = m.get(value, _MISS)
                if e is _MISS:
                    e = self._resolve("msisdn", value)
                if e is not None:
                    found = (*(found or ()), ("peer", "msisdn", e))
        if found is None:
            return NOTHING
        out: list[Detection] = []
        for field, kind, e in found:
            if e.expires is not None and ev.ts > e.expires:
                continue
            value = getattr(ev, field)
            related = [Subject("phone" if f in ("msisdn", "peer") else f, getattr(ev, f))
                       for f, _ in _EVENT_FIELDS if f != field and getattr(ev, f)]
            self._hit(out, e, kind, value, ev.ts, "call", related,
                      {"field": field, "event_type": ev.type, "direction": ev.dir,
                       "cell": ev.cell})
        return out

    def _packet(self, pkt: Packet) -> list[Detection]:
        kinds = self._kinds
        out: list[Detection] = []
        ctx = {"proto": pkt.proto, "sport": pkt.sport, "dport": pkt.dport,
               "frame": pkt.frame, "teid": pkt.teid}
        if "ip" in kinds:
            for side, addr in (("src", pkt.src), ("dst", pkt.dst)):
                e = self._match("ip", addr)
                if e is not None and not _expired(e, pkt.ts):
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
            e = self._match(kind, value)
            if e is not None and not _expired(e, pkt.ts):
                self._hit(out, e, kind, value, pkt.ts, "ip", [Subject("ip", pkt.src)],
                          {"field": where, **ctx})
        return out

    def _parcel_hits(self, parcel: Any) -> list[Detection]:
        rec = parcel.waybill_record
        if rec is None:
            return []
        out: list[Detection] = []
        for field, kind in (("sender_phone", "msisdn"), ("receiver_phone", "msisdn"),
                            ("sender_id", "sender_id")):
            value = getattr(rec, field, None)
            if not value:
                continue
            e = self._match(kind, value)
            if e is not None and not _expired(e, parcel.ts):
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
                    "issuer": e.issuer, "watchlist_version": self._wl.version,
                    **{k: v for k, v in ctx.items() if v is not None}}
        out.append(Detection(
            ts, "watchlist.hit", "high", 1.0, Subject(subject_type, value),
            [Evidence(f"{kind} on watchlist '{e.list}'"
                      + (f" ({e.reason})" if e.reason else ""), evidence)],
            ["police", "telecom"] if plane != "depot" else ["police"],
            related=related, detector=self.name))

    def tick(self, now: float) -> Sequence[Detection]:
        self._store.current()  # a file replaced by another process (a stat per check_s)
        return NOTHING

    def flush(self, now: float) -> Sequence[Detection]:
        return NOTHING

    def counters(self) -> dict[str, int | float]:
        wl = self._store.latest
        return {"checked": self.checked, "hits": self.hits, "suppressed": self.suppressed,
                **{f"hits_{k}": v for k, v in self.hits_by_plane.items()},
                "entries": len(wl), "version": wl.version}
