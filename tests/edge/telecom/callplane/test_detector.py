"""The call-plane detector end to end: simulated held-out day -> JSONL file -> decoder ->
pipeline -> detector (committed ONNX model) -> reporter -> JSONL reports -> scorer.
Plus robustness: garbage lines, missing fields, duplicate and late events."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from drivers.events.sources import JsonlEventFile
from edge.config import CallPlaneSection, Config
from edge.eval.callplane import load_reports, score
from edge.pipeline import Pipeline
from edge.report.ids import IdFactory
from edge.report.pseudonym import Pseudonymiser
from edge.report.reporter import Reporter
from edge.report.sinks import JsonlSink
from edge.telecom.callplane.build import build_stages, load_callplane_model
from simulators.telecom.events import EventSimConfig, EventSimulator

KEY = b"callplane-test-key-01"


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list[bytes]]:
    # Seed and profile never used in training.
    sim = EventSimulator(EventSimConfig(seed=4242, subscribers=3000, simbox_devices=8,
                                        ports_per_device=6, hours=12, profile="heldout"))
    lines = [orjson.dumps(e) for e in sim.events()]
    path = tmp_path_factory.mktemp("cp") / "day.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, sim.truth(), lines


def _replay(path: Path, out: Path, cfg: CallPlaneSection | None = None) -> Pipeline:
    c = Config()
    if cfg is not None:
        c.detectors.callplane = cfg
    rep = Reporter(site="s", agent="a", pseudonymiser=Pseudonymiser(KEY),
                   ids=IdFactory("s/a/replay"), sinks=[JsonlSink(out)])
    pipe = Pipeline(build_stages(c), rep, status_interval_s=3600)
    src = JsonlEventFile(path)
    pipe.sources = [src]
    pipe.run(iter(src))
    rep.close()
    return pipe


@pytest.mark.slow
def test_heldout_day_detects_boxes_without_false_alarms(day: tuple[Path, dict, list[bytes]],
                                                        tmp_path: Path) -> None:
    path, truth, _ = day
    out = tmp_path / "r.jsonl"
    pipe = _replay(path, out)
    reports = load_reports(out)
    res = score(reports, truth, KEY)
    assert res.positives >= 20
    assert res.recall >= 0.85, res.as_dict()
    # At most 0.2 % false positives per SIM-day on this day, about twice the pooled
    # leave-one-family-out rate in the card (0.09 %; the goal is 0.05 %, not met):
    # 2 of 2,893 normal SIMs over these 12 h since the 2.1 model and simulator.
    assert res.fp_sim_days <= 0.002 * res.sim_days, res.as_dict()
    # Boxes are grouped by shared/consecutive IMEIs or, when every SIM has its own
    # phone IMEI, by the calls between their SIMs; hardly any report names a SIM or
    # IMEI of another device (1 of 36 on this day since the 2.0 simulator: see the
    # card's device-grouping note).
    assert res.devices_detected >= res.devices - 2
    assert res.device_reports_mixed <= max(1, res.device_reports // 20)
    c = pipe.counters()
    assert c["callplane.scored"] > 0 and c["callplane.batches"] < c["callplane.scored"]
    sims = [r for r in reports if r["kind"] == "simbox.sim"]
    assert any(r["model"] is not None for r in sims)  # the model decided some
    for r in sims:
        assert r["route"] == ["telecom", "police"] and r["subject"]["pseudonymised"]
        assert r["evidence"] and all(e["features"] for e in r["evidence"])
        assert all(s["type"] == "imei" for s in r.get("related", []))
    devs = [r for r in reports if r["kind"] == "simbox.device"]
    assert devs and all(sum(s["type"] == "imsi" for s in r["related"]) >= 2 for r in devs)
    # No clear identifier anywhere in what leaves the agent.
    text = out.read_bytes()
    clear = [i for i, t in truth["sims"].items() if t["label"] == "simbox"]
    clear += [i for t in truth["sims"].values() if t["label"] == "simbox" for i in t["imeis"]]
    assert not any(c.encode() in text for c in clear)


@pytest.mark.slow
def test_garbage_duplicates_and_late_events_change_little(
        day: tuple[Path, dict, list[bytes]], tmp_path: Path) -> None:
    path, truth, lines = day
    rng = random.Random(7)
    dirty: list[bytes] = []
    for ln in lines:
        r = rng.random()
        if r < 0.01:
            dirty.append(b"\x00garbage{")
        elif r < 0.02:
            obj = orjson.loads(ln)
            obj.pop(rng.choice(["ts", "type", "imsi"]))
            dirty.append(orjson.dumps(obj))
        elif r < 0.03:
            dirty.append(orjson.dumps({**orjson.loads(ln), "type": "paging"}))
        dirty.append(ln)
        if r > 0.97:
            dirty.append(ln)  # duplicate
    # Late arrival: swap neighbours up to 5 s apart.
    for i in range(1, len(dirty) - 1, 3):
        try:
            a, b = orjson.loads(dirty[i]), orjson.loads(dirty[i + 1])
        except orjson.JSONDecodeError:
            continue
        if isinstance(a, dict) and isinstance(b, dict) and 0 <= b.get("ts", 0) - a.get(
                "ts", 0) <= 5:
            dirty[i], dirty[i + 1] = dirty[i + 1], dirty[i]
    p2 = tmp_path / "dirty.jsonl"
    p2.write_bytes(b"\n".join(dirty) + b"\n")
    clean_out, dirty_out = tmp_path / "c.jsonl", tmp_path / "d.jsonl"
    _replay(path, clean_out)
    pipe = _replay(p2, dirty_out)
    c = pipe.counters()
    assert c["malformed"] > 0 and c["callplane.duplicates"] > 0
    assert c["callplane.late_events"] > 0
    a = score(load_reports(clean_out), truth, KEY)
    b = score(load_reports(dirty_out), truth, KEY)
    assert b.fp <= a.fp + 1
    assert b.recall >= a.recall - 0.05


@pytest.mark.slow
def test_rules_only_reports_carry_no_model(day: tuple[Path, dict, list[bytes]],
                                           tmp_path: Path) -> None:
    path, truth, _ = day
    out = tmp_path / "r.jsonl"
    cfg = CallPlaneSection(rules_only=True)
    assert load_callplane_model(cfg) is None
    _replay(path, out, cfg)
    reports = load_reports(out)
    sims = [r for r in reports if r["kind"] == "simbox.sim"]
    assert sims and all(r["model"] is None for r in sims)
    assert all(r["evidence"][0]["reason"].startswith("rule ") for r in sims)
    res = score(reports, truth, KEY)
    assert res.fp == 0


def test_threshold_follows_config_at_runtime() -> None:
    from edge.telecom.callplane.detector import CallPlaneDetector

    cfg = CallPlaneSection()
    model = load_callplane_model(cfg)
    assert model is not None
    det = CallPlaneDetector(cfg, model)
    assert det.threshold == model.contract["threshold"]
    cfg.threshold = 0.5  # e.g. a signed config update over the downlink
    assert det.threshold == 0.5
    assert CallPlaneDetector(CallPlaneSection(rules_only=True)).threshold > 1.0
