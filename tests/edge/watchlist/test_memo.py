"""The memoised matcher: same answers as a plain lookup per field, list updates at once
(a delta applied through another store of the process, a file replaced by another
process), removals and expiry honoured although answers are memoised."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.downlink.watchlist import WatchlistStore
from edge.records import BaseStationEvent
from edge.report.pseudonym import Pseudonymiser
from edge.watchlist.matcher import WatchlistMatcher
from edge.watchlist.model import Watchlist

P = Pseudonymiser(b"site-key-for-watchlist-tests")
T = 1_767_225_600.0
IMSIS = [f"46000{i:010d}" for i in range(6)]
IMEIS = [f"35209900{i:06d}{i % 10}" for i in range(4)] + ["35209900000001"]  # 15 and 14 digits
NUMBERS = [f"861380000{i:04d}" for i in range(6)] + ["00861380000" + "0001", "+8613800000002"]


def _ev(ts: float, imsi: str, imei: str | None, msisdn: str | None,
        peer: str | None) -> BaseStationEvent:
    return BaseStationEvent(ts, "call_start", imsi, imei=imei, msisdn=msisdn, dir="mo",
                            peer=peer)


def _reference(wl: Watchlist, ev: BaseStationEvent) -> list[tuple[str, str]]:
    """What the matcher must find: each field looked up on its own, no memo."""
    out = []
    for field, kind in (("imsi", "imsi"), ("imei", "imei"), ("msisdn", "msisdn"),
                        ("peer", "msisdn")):
        v = getattr(ev, field)
        if v is not None and wl.lookup(kind, v, P, ev.ts) is not None:
            out.append((field, v))
    return out


entry = st.tuples(st.sampled_from(["imsi", "imei", "msisdn"]), st.integers(0, 7),
                  st.booleans(), st.sampled_from([None, T + 50, T + 1e9]))
event = st.tuples(st.integers(0, 5), st.sampled_from([None, *IMEIS]),
                  st.sampled_from([None, *NUMBERS]), st.sampled_from([None, *NUMBERS]))


@settings(max_examples=60, deadline=None)
@given(st.lists(entry, min_size=1, max_size=12), st.lists(event, min_size=1, max_size=60))
def test_memoised_answers_equal_plain_lookups(tmp_path_factory: object,
                                              entries: list, events: list) -> None:
    raw = []
    for kind, i, pseudo, exp in entries:
        pool = {"imsi": IMSIS, "imei": IMEIS, "msisdn": NUMBERS}[kind]
        v = pool[i % len(pool)]
        dom = {"msisdn": "phone"}.get(kind, kind)
        raw.append({"kind": kind, "value": P.pseudonym(dom, v) if pseudo else v,
                    **({"expires": exp} if exp is not None else {})})
    d = tmp_path_factory.mktemp("wl")  # type: ignore[attr-defined]
    store = WatchlistStore(d)
    store.apply({"id": "w", "version": 1, "type": "snapshot", "entries": raw}, now=T)
    wl = store.latest
    m = WatchlistMatcher(store, P, realert_s=0.0)  # every hit reported: compare them all
    for n, (i, imei, msisdn, peer) in enumerate(events):
        ev = _ev(T + n * 10.0, IMSIS[i], imei, msisdn, peer)  # some past the expiries
        got = [(h.evidence[0].features["field"], h.subject.id) for h in m.feed(ev)]
        assert got == _reference(wl, ev), (ev, raw)


def test_a_delta_takes_effect_at_the_next_event_and_a_removal_too(tmp_path: Path) -> None:
    matcher_store = WatchlistStore(tmp_path, check_s=3600.0)  # never re-reads the file
    downlink_store = WatchlistStore(tmp_path)  # the downlink's own store object
    m = WatchlistMatcher(matcher_store, P, realert_s=0.0)
    box, peer = IMSIS[1], NUMBERS[3]
    assert not m.feed(_ev(T, box, IMEIS[0], NUMBERS[0], peer))  # no list yet, memo empty
    downlink_store.apply({"id": "w1", "version": 1, "type": "snapshot", "entries": [
        {"kind": "imsi", "value": IMSIS[5]}]}, now=T)
    assert not m.feed(_ev(T + 1, box, IMEIS[0], NUMBERS[0], peer))  # memoised: not listed
    downlink_store.apply({"id": "w2", "version": 2, "type": "delta", "base_version": 1,
                          "add": [{"kind": "imsi", "value": box},
                                  {"kind": "msisdn", "value": P.pseudonym("phone", peer)}]},
                         now=T + 2)
    hits = m.feed(_ev(T + 2, box, IMEIS[0], NUMBERS[0], peer))  # the very next event
    assert [h.evidence[0].features["field"] for h in hits] == ["imsi", "peer"]
    assert {h.evidence[0].features["watchlist_version"] for h in hits} == {2}
    downlink_store.apply({"id": "w3", "version": 3, "type": "delta", "base_version": 2,
                          "remove": [{"kind": "imsi", "value": box}]}, now=T + 3)
    hits = m.feed(_ev(T + 3, box, IMEIS[0], NUMBERS[0], peer))
    assert [h.evidence[0].features["field"] for h in hits] == ["peer"]


def test_an_expired_entry_stops_hitting_although_memoised(tmp_path: Path) -> None:
    store = WatchlistStore(tmp_path)
    store.apply({"id": "w1", "version": 1, "type": "snapshot", "entries": [
        {"kind": "imsi", "value": IMSIS[2], "expires": T + 100}]}, now=T)
    m = WatchlistMatcher(store, P, realert_s=0.0)
    assert len(m.feed(_ev(T + 99, IMSIS[2], None, None, None))) == 1
    assert not m.feed(_ev(T + 101, IMSIS[2], None, None, None))  # event time past expiry
    assert m.memo_misses == 1  # the second answer came from the memo


def test_a_file_replaced_by_another_process_is_picked_up_on_tick(tmp_path: Path) -> None:
    store = WatchlistStore(tmp_path, check_s=0.0)
    m = WatchlistMatcher(store, P)
    assert not m.feed(_ev(T, IMSIS[4], None, None, None))
    code = ("import sys; from pathlib import Path; "
            "from edge.downlink.watchlist import WatchlistStore; "
            "WatchlistStore(Path(sys.argv[1])).apply({'id': 'x', 'version': 7, "
            "'type': 'snapshot', 'entries': [{'kind': 'imsi', 'value': sys.argv[2]}]})")
    subprocess.run([sys.executable, "-c", code, str(tmp_path), IMSIS[4]], check=True,
                   env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])})
    assert not m.feed(_ev(T + 0.5, IMSIS[4], None, None, None))  # not stat'ed per event
    m.tick(T + 1)  # the pipeline's tick, once per second
    (hit,) = m.feed(_ev(T + 1, IMSIS[4], None, None, None))
    assert hit.evidence[0].features["watchlist_version"] == 7


def test_memos_stay_bounded(tmp_path: Path) -> None:
    store = WatchlistStore(tmp_path)
    store.apply({"id": "w1", "version": 1, "type": "snapshot", "entries": [
        {"kind": "msisdn", "value": P.pseudonym("phone", "8613999999999")}]}, now=T)
    m = WatchlistMatcher(store, P, memo_size=64)
    for i in range(1000):
        m.feed(_ev(T + i, f"46000{i:010d}", None, f"86139{i:08d}", f"86137{i:08d}"))
    assert all(len(d) <= 64 for d in m._memos.values()) and len(m._m_sub or {}) <= 64
    assert len(m.feed(_ev(T + 2000, IMSIS[0], None, None, "8613999999999"))) == 1
