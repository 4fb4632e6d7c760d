"""End to end for issue 12: the simulated station at 10x real time (ptys + watched folder),
a real ``edge-agent run`` with the parcel decision stage, and its reports.

The station carries more threats than a real belt (so that a short run has some);
the agent must report the threat parcels (card batches, gold, cash) to the police
channel with the waybill as subject, send every divert over the firmware bridge to the
simulated station controller (a pty, signed frames), which pushes a parcel only while
it is in front of the pusher, have every divert acted on and acknowledged before its
deadline, report truncated images and missing pieces as such, and exit cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from simulators.depot.run import LiveStation
from simulators.depot.score import load_jsonl
from simulators.depot.station import StationConfig, plan_station

SPEED = 10.0
PARCELS = 36


@pytest.mark.slow
def test_station_parcels_reported_and_diverts_followed(tmp_path: Path) -> None:
    plan = plan_station(StationConfig(parcels=PARCELS, seed=12, speed=SPEED, mm_per_px=1.5,
                                      profile="heldout", threat_rates=(0.2, 0.12, 0.12),
                                      p_truncated_png=0.05, unplugs=0))
    secret = bytes(range(40, 72))
    (tmp_path / "bridge.key").write_text(secret.hex())
    station = LiveStation(plan, tmp_path / "station", controller_key=secret)
    reports = tmp_path / "reports.jsonl"
    s = SPEED
    cfg = tmp_path / "agent.toml"
    cfg.write_text(f"""[agent]
id = "parcel-e2e"
data_dir = "{tmp_path}/data"
[privacy]
key = "parcel-e2e-key-0000001"
[mqtt]
enabled = false
[outputs.jsonl]
path = "{reports}"
[depot]
lane = "L1"
scanner_port = "{station.link('scanner')}"
scale_port = "{station.link('scale')}"
dims_port = "{station.link('dims')}"
rfid_port = "{station.link('rfid')}"
xray_dir = "{station.xray_dir}"
xray_poll_s = 0.02
waybills = "{tmp_path}/station/waybills.jsonl"
belt_mps = {0.5 * s}
scale_poll_s = {0.1 / s}
dims_poll_s = {0.25 / s}
rfid_poll_s = {0.1 / s}
match_window_s = {0.9 / s}
double_read_s = {0.6 / s}
xray_wait_s = 3.0
rfid_settle_s = {1.0 / s}
xray_to_diverter_m = {plan.cfg.xray_to_diverter_m}
decide_divert_margin_s = {0.15 / s}
[bridge]
station_port = "{station.link('station')}"
key_file = "{tmp_path}/bridge.key"
""")
    agent = subprocess.Popen([sys.executable, "-m", "edge.cli.agent", "run", "--config",
                              str(cfg)], env={**os.environ, "PYTHONUNBUFFERED": "1"},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # the belt starts once the agent runs: its bridge link to the controller is up
        ctl = station.controller
        assert ctl is not None
        t_end = time.monotonic() + 90
        while not ctl.link.up and time.monotonic() < t_end and agent.poll() is None:
            time.sleep(0.05)
        assert ctl.link.up, ("the agent never brought the station link up",
                             agent.poll(), agent.stdout.read() if agent.poll() is not None
                             and agent.stdout else b"")
        station.start(lead_s=1.0)
        assert station.wait(plan.duration / SPEED + 60), "station timeline did not finish"
        time.sleep(4.0)
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            log = agent.communicate(timeout=30)[0].decode(errors="replace")
        finally:
            station.stop()
    assert agent.returncode == 0, log[-3000:]
    truth = {t["waybill"]: t for t in load_jsonl(tmp_path / "station" / "truth.jsonl")}
    reps = [orjson.loads(line) for line in reports.read_bytes().splitlines() if line.strip()]
    alerts = [r for r in reps if r["kind"] in ("parcel.card_batch", "parcel.gold",
                                                 "parcel.cash")]
    diverts = [r for r in reps if r["kind"] == "parcel.divert"]
    incomplete = [r for r in reps if r["kind"] == "parcel.incomplete"]
    flagged = {r["subject"]["id"] for r in alerts}
    threats = {w for w, t in truth.items() if t["category"] != "none"}
    normals = set(truth) - threats
    print(orjson.dumps({"threats": len(threats), "flagged_threats": len(flagged & threats),
                        "false_alarms": len(flagged & normals), "diverts": len(diverts),
                        "incomplete": len(incomplete)}).decode())
    assert threats, "the plan should hold threats"
    for r in alerts:
        assert r["route"] == ["police"]
        # the waybill, or lane-seq when the scanner could not read the barcode
        assert r["subject"]["type"] == "parcel" or r["subject"]["id"] in truth, r["subject"]
        feats = r["evidence"][0]["features"]
        assert feats["crop_ref"] and feats["alert_ref"].startswith("divert-")
        # personal fields never in clear
        for rel in r.get("related", []):
            assert rel["id"].startswith("h1:")
    # detection quality is measured by models.xray.evaluate over held-out days (model
    # card); here: the decisions happen live, and false alarms stay rare
    final = [r for r in reps if r["kind"] == "agent.status"][-1]["evidence"][0]["features"]
    assert final["parcel.parcels"] >= PARCELS - 1, final
    assert final["parcel.judged"] + final["parcel.incomplete"] == final["parcel.parcels"]
    assert final.get("stage.parcel.errors", 0) == 0
    assert len(flagged & normals) <= max(1, 0.1 * len(normals))
    # every divert asked for went over the bridge, was acted on by the controller while
    # the parcel was in front of the pusher, and was acknowledged before its deadline
    asked = {r["evidence"][0]["features"]["alert_ref"] for r in alerts
             if r["evidence"][0]["features"]["divert_status"] == "requested"}
    assert asked, "no divert was asked for"
    answered = {r["evidence"][0]["features"]["alert_ref"]: r["evidence"][0]["features"]
                for r in diverts}
    assert asked <= set(answered)
    statuses = sorted(f["divert_status"] for f in answered.values())
    assert set(statuses) == {"acted"}, (statuses, [r["evidence"][0]["reason"] for r in diverts])
    for r in diverts:  # the controller's result came back in time (link timestamps)
        assert "before the deadline" in r["evidence"][0]["reason"], r["evidence"][0]
    act = final["actuator.station.acked"], final["actuator.station.acked_in_time"]
    assert act[0] == act[1] == len(asked), (act, len(asked))
    ctl = station.controller
    assert ctl is not None and not ctl.late
    flagged_requested = {r["subject"]["id"] for r in alerts
                         if r["evidence"][0]["features"]["divert_status"] == "requested"}
    assert {w for _seq, w in ctl.diverted} == flagged_requested
    assert len(ctl.diverted) == len(asked)  # each pushed once
    # truncated images and parcels without image are reported, not dropped
    no_image = {w for w, t in truth.items() if "xray" in t["expected_missing"]}
    reported_incomplete = {r["subject"]["id"] for r in incomplete}
    assert no_image <= reported_incomplete | {None}
