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
        # A box family the call plane reports within its first hour (SIM banks: the
        # rules; naive boxes' first hours are confused with call centres on batch
        # phones since model 2.4.0, human-imitating boxes on random phone IMEIs mostly
        # go unflagged: see models/callplane/README.md); this test is about covering
        # the victims of what it flags.
        write_events(EventSimConfig(seed=78, subscribers=600, hours=6.0,
                                    evasion=("rotation",), min_ports=4), fh, truth)
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
    # Recall counts every number a box SIM called or texted as missed unless its SIM was
    # flagged early enough for its last 32 calls to hold it: 0.92 on this day
    # (simulator 3, model 2.4.0; 1.0 with model 2.1.0 on the earlier day).
    # Precision is bounded by the call plane's: 1.0 here; on the earlier day (simulator
    # 2.1, model 2.1.0) five call-centre SIMs on one batch of consecutive-IMEI phones
    # were flagged at the start of their shift (the confusion the call-plane card
    # describes), and the ~300 customers they dialled were warned: 0.82.
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


def test_a_flagged_device_makes_its_other_sims_sources_too() -> None:
    st = VictimWarningStage(window_s=3600, recent_s=600, device_sources=True)
    flagged_sim, other_sim = "460001111111111", "460002222222222"
    imei = "86000000000001"
    call = lambda t, sim, peer, dev=imei + "5": BaseStationEvent(  # noqa: E731
        t, "call_start", sim, imei=dev, dir="mo", peer=peer)
    assert st.feed(call(0, other_sim, "8613000000001")) == ()  # before anything is known
    assert st.feed(call(10, "460003333333333", "8613000000009", "35000000000000")) == ()
    dev = Detection(100, "simbox.device", "critical", 0.9, Subject("imei", imei),
                    [Evidence("device", {})], ["telecom"],
                    related=[Subject("imsi", flagged_sim), Subject("imei", "86000000000002")])
    early = st.feed(dev)  # the other SIM called from the device's IMEI (as IMEISV)
    assert [(d.subject.id, d.related[0].id) for d in early] == [("8613000000001", other_sim)]
    assert early[0].evidence[0].features["source_kind"] == "simbox.device"
    later = st.feed(call(200, "460004444444444", "8613000000002", "86000000000002" + "7"))
    assert [d.subject.id for d in later] == ["8613000000002"]  # a third SIM, another IMEI
    assert st.feed(call(210, "460005555555555", "8613000000003", "35000000000000")) == ()


def test_recent_callees_keep_the_last_n_and_memory_stays_bounded() -> None:
    st = VictimWarningStage(window_s=3600, recent_s=10_000, recent_per_sim=4, max_sims=100)
    box = "460001111111111"
    for i in range(10):
        st.feed(BaseStationEvent(float(i), "sms" if i % 2 else "call_start", box, dir="mo",
                                 peer=f"+86130000000{i:02d}"))
    for i in range(500):  # 500 other SIMs: the box called last, so it stays
        st.feed(BaseStationEvent(5.0 + i * 1e-3, "call_start", f"46009{i:010d}", dir="mo",
                                 peer="8613999999999"))
    st.feed(BaseStationEvent(9.5, "call_start", box, dir="mo", peer="+8613000000010"))
    assert st.counters()["tracked_sims"] <= 100 and st.counters()["evicted"] >= 400
    out = st.feed(Detection(20, "simbox.sim", "high", 0.99, Subject("imsi", box),
                            [Evidence("model", {})], ["telecom"]))
    assert [(d.subject.id, d.evidence[0].features["contact"],
             d.evidence[0].features["contact_ts"]) for d in out] == [
        ("+8613000000007", "sms", 7.0), ("+8613000000008", "call_start", 8.0),
        ("+8613000000009", "sms", 9.0), ("+8613000000010", "call_start", 9.5)]
