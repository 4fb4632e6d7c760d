"""Early warning on a simulated box day: potential victims against the truth."""

from __future__ import annotations

from pathlib import Path

import orjson

from edge.cli.agent import main as agent_main
from edge.detection import Detection, Evidence, Subject
from edge.eval.victims import score
from edge.records import BaseStationEvent
from edge.watchlist.warning import VictimWarningStage
from simulators.telecom.events import EventSimConfig, write_events

KEY = "victim-test-key-0123456789"


def test_victims_of_a_simulated_box_day(tmp_path: Path) -> None:
    ev, truth = tmp_path / "d.jsonl", tmp_path / "d.truth.json"
    with open(ev, "wb") as fh:
        # Box families the call plane reports within the day (human-imitating boxes
        # on random phone IMEIs mostly go unflagged: see models/callplane/README.md);
        # this test is about covering the victims of what it flags.
        write_events(EventSimConfig(seed=78, subscribers=600, hours=6.0,
                                    evasion=("naive", "rotation")), fh, truth)
    conf = tmp_path / "a.toml"
    conf.write_text(f'[agent]\ndata_dir = "{tmp_path}/st"\n[privacy]\nkey = "{KEY}"\n')
    out = tmp_path / "r.jsonl"
    assert agent_main(["replay", "--config", str(conf), "--events", str(ev), "--out",
                       str(out), "--quiet"]) == 0
    reports = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    res = score(ev, orjson.loads(truth.read_bytes()), reports, KEY.encode())
    print(res)
    assert res["truth_victims"] > 50
    # what the call plane flags, early warning covers: victims of boxes, not of others.
    # Recall counts every number a box called or texted before it was flagged (beyond
    # recent_s) as missed; the 2.0 simulator's boxes also text and are flagged later
    # than the old, separable ones were (0.53 here; it was 0.8+ on the old simulator).
    # Precision is bounded by the call plane's: on this day (simulator 2.1, model 2.1.0)
    # five call-centre SIMs on one batch of consecutive-IMEI phones are flagged at the
    # start of their shift (the confusion the call-plane card describes), and the
    # ~300 customers they dialled are warned: 0.83. Everything a box contacted is.
    assert res["precision"] >= 0.8 and res["recall"] >= 0.5
    victims = [r for r in reports if r["kind"] == "warning.victim"]
    assert all(r["route"] == ["warning"] and r["subject"]["pseudonymised"] for r in victims)
    assert len({r["subject"]["id"] for r in victims}) == len(victims)  # once per window


def test_callees_before_the_flag_and_after_it_once_each() -> None:
    st = VictimWarningStage(window_s=3600, recent_s=600)
    box = "460001111111111"
    call = lambda t, peer: BaseStationEvent(t, "call_start", box, dir="mo",  # noqa: E731
                                            peer=peer)
    assert st.feed(call(0, "8613000000001")) == ()
    assert st.feed(call(200, "8613000000002")) == ()
    flag = Detection(700, "simbox.sim", "high", 0.99, Subject("imsi", box),
                     [Evidence("model", {})], ["telecom"])
    early = st.feed(flag)  # the call at t=0 is older than recent_s: not reported
    assert [d.subject.id for d in early] == ["8613000000002"]
    later = st.feed(call(800, "8613000000003"))
    assert [d.subject.id for d in later] == ["8613000000003"]
    assert st.feed(call(900, "8613000000003")) == []  # same victim within the window
