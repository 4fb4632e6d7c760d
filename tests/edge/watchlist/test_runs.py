"""The matcher over runs (``feed_many``, what the pipeline calls): the same detections in
the same order as ``feed`` on each record, whatever the run boundaries, with odd values
(numbers in international form, IMEIs of 14 and 15 digits, non-digits), pseudonymised
and clear entries, expiries, and a delta between runs; and the pseudonym hasher it uses
equals the HMAC of the reporting path."""

from __future__ import annotations

import hmac

from hypothesis import given, settings
from hypothesis import strategies as st
from watchlist_entries import list_entries, stores_with

from edge.downlink.watchlist import WatchlistStore
from edge.pipeline import Pipeline
from edge.records import BaseStationEvent
from edge.report.ids import IdFactory
from edge.report.pseudonym import Pseudonymiser
from edge.report.reporter import Reporter
from edge.report.sinks import MemorySink
from edge.watchlist.matcher import WatchlistMatcher
from edge.watchlist.warning import VictimWarningStage

P = Pseudonymiser(b"site-key-for-watchlist-tests")
T = 1_767_225_600.0
IMSIS = [f"46000{i:010d}" for i in range(6)]
IMEIS = [f"35209900{i:06d}{i % 10}" for i in range(4)] + ["35209900000001", "3520990000001x"]
NUMBERS = [f"861380000{i:04d}" for i in range(6)] + ["00861380000" + "0001", "+8613800000002",
                                                     "unknown"]


def _ev(ts: float, imsi: str, imei: str | None, msisdn: str | None,
        peer: str | None) -> BaseStationEvent:
    return BaseStationEvent(ts, "call_start", imsi, imei=imei, msisdn=msisdn, dir="mo",
                            peer=peer)


def _entries(entries: list) -> list[dict]:
    return list_entries(entries, {"imsi": IMSIS, "imei": IMEIS[:5], "msisdn": NUMBERS[:6]}, P)


entry = st.tuples(st.sampled_from(["imsi", "imei", "msisdn"]), st.integers(0, 7),
                  st.booleans(), st.sampled_from([None, T + 50, T + 1e9]))
event = st.tuples(st.integers(0, 5), st.sampled_from([None, *IMEIS]),
                  st.sampled_from([None, *NUMBERS]), st.sampled_from([None, *NUMBERS]))


def _key(d: object) -> tuple:
    return (d.ts, d.subject.id, d.evidence[0].features["field"])  # type: ignore[attr-defined]


@settings(max_examples=60, deadline=None)
@given(st.lists(entry, min_size=1, max_size=12), st.lists(entry, max_size=6),
       st.lists(event, min_size=1, max_size=80), st.lists(st.integers(1, 30), min_size=1))
def test_runs_find_what_single_records_find(tmp_path_factory: object, entries: list,
                                            delta: list, events: list,
                                            cuts: list[int]) -> None:
    d = tmp_path_factory.mktemp("wl")  # type: ignore[attr-defined]
    stores = stores_with(d, ("one", "runs"), _entries(entries), T)
    single = WatchlistMatcher(stores["one"], P, realert_s=25.0, memo_size=8)
    runs = WatchlistMatcher(stores["runs"], P, realert_s=25.0, memo_size=8)
    evs = [_ev(T + n * 10.0, IMSIS[i], imei, msisdn, peer)
           for n, (i, imei, msisdn, peer) in enumerate(events)]
    errors: list[Exception] = []
    want, got = [], []
    i, c = 0, 0
    while i < len(evs):
        run = evs[i:i + cuts[c % len(cuts)]]
        for ev in run:
            want += [_key(h) for h in single.feed(ev)]
        got += [_key(h) for h in runs.feed_many(run, errors.append)]
        i += len(run)
        c += 1
        if c == 2 and delta:  # a delta between runs: new memos at once
            for s in stores.values():
                s.apply({"id": "w2", "version": 2, "type": "delta", "base_version": 1,
                         "add": _entries(delta)}, now=T)
    assert not errors
    assert got == want
    assert runs.checked == single.checked == len(evs)
    assert runs.hits == single.hits and runs.suppressed == single.suppressed


def test_the_pseudonym_hasher_is_the_reporting_hmac() -> None:
    for key in (b"k" * 16, b"x" * 64, b"y" * 65, bytes(range(200))):
        p = Pseudonymiser(key)
        for domain in ("phone", "imsi", "imei", "iccid"):
            h = p.hasher(domain)
            for v in ("8613900000000", "", "460001234567890", "9" * 80):
                mac = hmac.new(key, f"{domain}:{v}".encode(), "sha256").hexdigest()
                assert h(v) == "h1:" + mac[:32] == p.of_normalised(domain, v)


def test_a_listed_number_flags_its_sim_for_the_warning_stage_through_the_pipeline(
        tmp_path: object) -> None:
    """The hit of a run comes after the warning stage saw the run's calls: the SIM of
    the listed number is flagged by its IMSI, so the call that carried the hit (and the
    SIM's earlier ones) still warn their callees; a subscriber who called a listed
    number is not a source."""
    store = WatchlistStore(tmp_path)  # type: ignore[arg-type]
    store.apply({"id": "w", "version": 1, "type": "snapshot", "entries": [
        {"kind": "msisdn", "value": P.pseudonym("phone", NUMBERS[0])}]}, now=T)
    mem = MemorySink()
    rep = Reporter(site="s", agent="a", pseudonymiser=P, ids=IdFactory("t"), sinks=[mem])
    pipe = Pipeline([WatchlistMatcher(store, P), VictimWarningStage()], rep,
                    status_interval_s=1e9)
    pipe.run([
        _ev(T, IMSIS[1], IMEIS[0], None, NUMBERS[3]),          # before: number not shown
        _ev(T + 0.1, IMSIS[1], IMEIS[0], NUMBERS[0], NUMBERS[4]),  # carries the listed number
        _ev(T + 0.2, IMSIS[2], IMEIS[1], NUMBERS[5], NUMBERS[0]),  # calls the listed number
        _ev(T + 0.3, IMSIS[2], IMEIS[1], NUMBERS[5], NUMBERS[2]),
    ])
    reports = [r for r in mem.reports if r["kind"] != "agent.status"]
    ph = {P.pseudonym("phone", n): n for n in NUMBERS}
    kinds = [(r["kind"], ph.get(r["subject"]["id"])) for r in reports]
    assert ("watchlist.hit", NUMBERS[0]) in kinds
    victims = sorted(n for k, n in kinds if k == "warning.victim")
    assert victims == sorted([NUMBERS[3], NUMBERS[4]])  # not NUMBERS[2]: IMSIS[2] is no source
