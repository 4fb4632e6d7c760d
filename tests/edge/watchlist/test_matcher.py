"""Watchlist hits: a listed identifier in the event feed becomes a police report."""

from __future__ import annotations

from pathlib import Path

import orjson

from edge.cli.agent import main as agent_main
from edge.downlink.messages import WatchlistUpdate
from edge.downlink.watchlist import WatchlistStore
from edge.report.pseudonym import Pseudonymiser
from edge.report.schema import validation_errors

KEY = "site-key-for-the-watchlist-test"


def _events(path: Path) -> None:
    base = 1_767_225_600.0
    rows = []
    for i in range(6):
        rows.append({"ts": base + i * 60, "type": "call_start", "imsi": "460001111111111",
                     "imei": "35209900176148", "msisdn": "8613800000001", "dir": "mo",
                     "peer": "8613912345678" if i % 2 else f"86137000000{i:02d}",
                     "call_id": f"c{i}", "cell": "46000-1-2"})
    rows.append({"ts": base + 7200, "type": "sms", "imsi": "460002222222222",
                 "dir": "mt", "peer": "+86 139-1234-5678"})
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n")


def _store(data: Path, entries: list[str], fmt: str = "pseudonymised") -> None:
    WatchlistStore(data).replace(WatchlistUpdate(id="w1", version=1, body={
        "id": "w1", "version": 1, "id_type": "any", "format": fmt, "entries": entries}))


def test_pseudonymised_watchlist_hits_are_reported_once_per_hour(tmp_path: Path) -> None:
    data = tmp_path / "data"
    p = Pseudonymiser(KEY.encode())
    # the police list the number as a pseudonym computed with the site key
    _store(data, [p.pseudonym("phone", "008613912345678")])
    ev = tmp_path / "ev.jsonl"
    _events(ev)
    cfg = tmp_path / "a.toml"
    cfg.write_text(f'[agent]\ndata_dir = "{data}"\n[privacy]\nkey = "{KEY}"\n')
    out = tmp_path / "r.jsonl"
    assert agent_main(["replay", "--config", str(cfg), "--events", str(ev), "--out",
                       str(out), "--quiet"]) == 0
    reports = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    hits = [r for r in reports if r["kind"] == "watchlist.hit"]
    # three calls to the number within an hour -> one report; the SMS 2 h later -> another
    assert len(hits) == 2
    assert {h["evidence"][0]["features"]["event_type"] for h in hits} == {"call_start", "sms"}
    for h in hits:
        assert validation_errors(h) == []
        assert h["subject"] == {"type": "phone", "pseudonymised": True,
                                "id": p.pseudonym("phone", "8613912345678")}
        assert h["route"] == ["police", "telecom"]
        assert "8613912345678" not in repr(h) and "460001111111111" not in repr(h)


def test_empty_or_missing_watchlist_costs_nothing(tmp_path: Path) -> None:
    from edge.watchlist.matcher import WatchlistMatcher

    m = WatchlistMatcher(WatchlistStore(tmp_path), Pseudonymiser(KEY.encode()))
    from edge.records import BaseStationEvent

    assert m.feed(BaseStationEvent(1.0, "attach", "460001111111111")) == ()
    assert m.counters()["checked"] == 0 and m.counters()["version"] == 0


def test_clear_watchlist_matches_imsi(tmp_path: Path) -> None:
    from edge.records import BaseStationEvent
    from edge.watchlist.matcher import WatchlistMatcher

    _store(tmp_path, ["460002222222222"], fmt="clear")
    m = WatchlistMatcher(WatchlistStore(tmp_path), Pseudonymiser(KEY.encode()))
    (d,) = m.feed(BaseStationEvent(5.0, "attach", "460002222222222", cell="x"))
    assert d.kind == "watchlist.hit" and d.subject.type == "imsi"
    assert not m.feed(BaseStationEvent(6.0, "attach", "460003333333333"))
