"""The matcher with the call plane's SIM states (``sims``: a SIM's IMSI, device and number
looked at once per list version, the call plane queueing the events of SIMs not checked
under the list in force): the same detections in the same order, the same counters, as
the matcher alone on each record, whatever the run boundaries, with devices and numbers
that change, duplicates (dropped by the call plane) carrying other fields, odd values,
expiries, and deltas between runs (adding and removing entries)."""

from __future__ import annotations

from pathlib import Path

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from watchlist_entries import list_entries, stores_with

from edge.assembly import assemble
from edge.config import parse_config
from edge.downlink.watchlist import WatchlistStore
from edge.pipeline import merge_by_time
from edge.records import BaseStationEvent
from edge.report.pseudonym import Pseudonymiser
from edge.report.sinks import MemorySink
from edge.telecom.callplane.state import EntityTables
from edge.watchlist.matcher import WatchlistMatcher

P = Pseudonymiser(b"site-key-for-watchlist-tests")
T = 1_767_225_600.0
IMSIS = [f"46000{i:010d}" for i in range(5)]
# 15 and 14 digits, an IMEISV, two sharing their first 14 characters but not their
# first 14 digits, and one that is no number
IMEIS = [f"35209900{i:06d}{i % 10}" for i in range(3)] + [
    "35209900000001", "3520990000000107", "3520990000-0011", "3520990000-0012",
    "3520990000001x"]
NUMBERS = [f"861380000{i:04d}" for i in range(5)] + ["00861380000" + "0001",
                                                     "+8613800000002", "unknown"]
TYPES = ["call_start", "sms", "data", "attach"]


def _entries(entries: list) -> list[dict]:
    return list_entries(entries, {"imsi": IMSIS, "imei": IMEIS[:5], "msisdn": NUMBERS[:5]}, P)


entry = st.tuples(st.sampled_from(["imsi", "imei", "msisdn"]), st.integers(0, 7),
                  st.booleans(), st.sampled_from([None, T + 100, T + 1e9]))
# (SIM, type, IMEI, number, peer, repeat an earlier event of the run with these fields)
event = st.tuples(st.integers(0, 4), st.sampled_from(TYPES),
                  st.sampled_from([None, *IMEIS]), st.sampled_from([None, *NUMBERS]),
                  st.sampled_from([None, *NUMBERS]), st.booleans())


def _events(spec: list) -> list[BaseStationEvent]:
    evs: list[BaseStationEvent] = []
    for n, (i, typ, imei, msisdn, peer, repeat) in enumerate(spec):
        same = [e for e in evs if e.imsi == IMSIS[i]]
        if repeat and same:  # a duplicate for the call plane (same time, type, value)
            ts, typ = same[-1].ts, same[-1].type
        else:
            ts = T + n * 10.0
        evs.append(BaseStationEvent(ts, typ, IMSIS[i], imei=imei, msisdn=msisdn, dir="mo",
                                    peer=peer if typ in ("call_start", "sms") else None))
    return evs


def _key(d: object) -> tuple:
    return (d.ts, d.subject.id, d.evidence[0].features["field"],  # type: ignore[attr-defined]
            d.evidence[0].features["watchlist_version"])  # type: ignore[attr-defined]


@settings(max_examples=150, deadline=None)
@given(st.lists(entry, min_size=1, max_size=10), st.lists(entry, max_size=5),
       st.lists(entry, max_size=4), st.lists(event, min_size=1, max_size=90),
       st.lists(st.integers(1, 25), min_size=1), st.integers(1, 6))
def test_with_sim_states_the_same_as_alone(tmp_path_factory: object, entries: list,
                                          added: list, removed: list, spec: list,
                                          cuts: list[int], delta_at: int) -> None:
    d = tmp_path_factory.mktemp("wl")  # type: ignore[attr-defined]
    stores = stores_with(d, ("alone", "states"), _entries(entries), T)
    alone = WatchlistMatcher(stores["alone"], P, realert_s=25.0, memo_size=8)
    tables = EntityTables()
    states = WatchlistMatcher(stores["states"], P, realert_s=25.0, memo_size=8, sims=tables)
    evs = _events(spec)
    errors: list[Exception] = []
    want, got = [], []
    i = c = 0
    while i < len(evs):
        run = evs[i:i + cuts[c % len(cuts)]]
        for ev in run:
            want += [_key(h) for h in alone.feed(ev)]
        tables.fold(run)  # the call plane folds each run before the matcher sees it
        got += [_key(h) for h in states.feed_many(run, errors.append)]
        i += len(run)
        c += 1
        if c == delta_at:  # a delta between runs: in force from the next run on
            rm = [{"kind": r["kind"], "value": r["value"]} for r in _entries(removed)]
            for s in stores.values():
                s.apply({"id": "w2", "version": 2, "type": "delta", "base_version": 1,
                         "add": _entries(added), "remove": rm}, now=T)
    assert not errors
    assert got == want
    assert states.checked == alone.checked  # (not counted while the list is empty)
    assert (states.hits, states.suppressed) == (alone.hits, alone.suppressed)


def test_a_sim_is_looked_at_once_per_list_version(tmp_path: object) -> None:
    """What the states save: a SIM's later events are not queued for the matcher until
    its device or number changes, or the list does."""
    store = WatchlistStore(tmp_path)  # type: ignore[arg-type]
    store.apply({"id": "w", "version": 1, "type": "snapshot", "entries": [
        {"kind": "imsi", "value": IMSIS[4]}]}, now=T)
    tables = EntityTables()
    m = WatchlistMatcher(store, P, sims=tables)
    ev = BaseStationEvent(T, "data", IMSIS[0], imei=IMEIS[0], msisdn=NUMBERS[0])
    queued = []
    for n, change in enumerate([{}, {}, {"imei": IMEIS[1]}, {}, {"msisdn": NUMBERS[1]},
                                {"msisdn": NUMBERS[0]}, "delta", {}, {}]):
        if change == "delta":
            store.apply({"id": "w", "version": 2, "type": "delta", "base_version": 1,
                         "add": [{"kind": "imsi", "value": IMSIS[3]}]}, now=T)
            change = {}
        ev = msgspec.structs.replace(ev, ts=T + n, **change)
        tables.fold([ev])
        queued.append(len(tables.unchecked))
        assert not m.feed_many([ev], lambda exc: None)
    # first; same; new device; same; another number (the SIM not stamped: not its
    # first); the first again (stamped); the run of a new version is matched in full,
    # the next one queued; then not
    assert queued == [1, 0, 1, 0, 1, 1, 0, 1, 0]


def test_a_device_between_two_others_in_one_run_is_looked_at(tmp_path: Path) -> None:
    """One run, one SIM on three devices, the middle one listed: the first event gets
    the SIM stamped (on the device it ends the run on), and the middle one must still
    be looked at on its own."""
    store = WatchlistStore(tmp_path)
    store.apply({"id": "w", "version": 1, "type": "snapshot", "entries": [
        {"kind": "imei", "value": IMEIS[1]}]}, now=T)
    tables = EntityTables()
    m = WatchlistMatcher(store, P, sims=tables)
    m.feed_many([BaseStationEvent(T, "data", IMSIS[1])], lambda exc: None)  # list in force
    run = [BaseStationEvent(T + i, "data", IMSIS[0], imei=IMEIS[i], msisdn=NUMBERS[0])
           for i in range(3)]
    tables.fold(run)
    hits = m.feed_many(run, lambda exc: None)
    assert [(h.ts, h.subject.id) for h in hits] == [(T + 1, IMEIS[1])]


def test_the_agent_wires_the_call_planes_states_and_hits_every_field(tmp_path: Path) -> None:
    """Through the assembled agent (events file, call plane, matcher): the matcher runs on
    the call plane's SIM states, and a listed IMSI, own number, peer and a device the SIM
    moves to each hit, at the time of the event that carried it."""
    key = "watchlist-states-test-key-01"
    ps = Pseudonymiser(key.encode())
    WatchlistStore(tmp_path / "d").apply({"id": "w1", "version": 1, "type": "snapshot",
                                          "entries": [
        {"kind": "imsi", "value": IMSIS[1]},
        {"kind": "msisdn", "value": ps.pseudonym("phone", NUMBERS[2])},
        {"kind": "msisdn", "value": NUMBERS[3]},
        {"kind": "imei", "value": IMEIS[2][:14]}]}, now=T)
    evs = [BaseStationEvent(T + 1, "call_start", IMSIS[0], imei=IMEIS[0], msisdn=NUMBERS[0],
                            dir="mo", peer=NUMBERS[4]),
           BaseStationEvent(T + 2, "call_start", IMSIS[1], imei=IMEIS[1], dir="mo",
                            peer=NUMBERS[4]),                      # listed IMSI
           BaseStationEvent(T + 3, "data", IMSIS[2], imei=IMEIS[1], msisdn=NUMBERS[2]),  # number
           BaseStationEvent(T + 4, "call_start", IMSIS[0], imei=IMEIS[0], msisdn=NUMBERS[0],
                            dir="mo", peer=NUMBERS[3]),            # calls a listed number
           BaseStationEvent(T + 5, "data", IMSIS[0], imei=IMEIS[2], msisdn=NUMBERS[0])]  # device
    (tmp_path / "ev.jsonl").write_bytes(b"".join(msgspec.json.encode(e) + b"\n" for e in evs))
    cfg = parse_config(f'[agent]\nid = "a"\ndata_dir = "{tmp_path}/d"\n'
                       f'[privacy]\nkey = "{key}"\n')
    sink = MemorySink()
    agent = assemble(cfg, mode="replay", sinks=[sink],
                     inputs={"events": [tmp_path / "ev.jsonl"]})
    by_name = {s.name: s for s in agent.pipeline.stages}
    assert by_name["watchlist"]._sims is by_name["callplane"].tables
    agent.pipeline.run(merge_by_time(agent.sources))
    agent.close()
    hits = [(r["ts"], r["evidence"][0]["features"]["field"]) for r in sink.reports
            if r["kind"] == "watchlist.hit"]
    assert hits == [("2026-01-01T00:00:02.000Z", "imsi"), ("2026-01-01T00:00:03.000Z", "msisdn"),
                    ("2026-01-01T00:00:04.000Z", "peer"), ("2026-01-01T00:00:05.000Z", "imei")]
