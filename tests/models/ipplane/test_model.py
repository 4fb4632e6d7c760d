"""The packaged IP-plane model: contract, determinism of training, held-out acceptance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.errors import ModelError
from edge.eval.ipplane import evaluate_generated, score
from edge.telecom.ipplane.endpoint import FEATURES
from models.loader import MODELS_DIR, load_model, sha256_file

FOLDER = MODELS_DIR / "ipplane"


def test_contract_matches_the_committed_onnx() -> None:
    m = load_model(FOLDER)
    assert m.features == list(FEATURES)
    c = m.contract
    assert c["sha256"] == sha256_file(FOLDER / "model.onnx")
    assert 0.5 <= c["threshold"] <= 0.95
    assert len(c["benign_mean"]) == len(FEATURES) == len(c["benign_std"])
    p = m.predict_proba(np.zeros((3, len(FEATURES)), dtype=np.float32))
    assert p.shape == (3,) and ((0 <= p) & (p <= 1)).all()


def test_a_tampered_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text((FOLDER / "model.json").read_text())
    data = bytearray((FOLDER / "model.onnx").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        load_model(tmp_path)


def test_training_is_deterministic(tmp_path: Path) -> None:
    from models.ipplane.train import train

    a = train(tmp_path / "a", 3, n_train=2, n_val=1, duration_s=400.0, n_estimators=20,
              n_pcap=0)
    b = train(tmp_path / "b", 3, n_train=2, n_val=1, duration_s=400.0, n_estimators=20,
              n_pcap=0)
    assert a["sha256"] == b["sha256"]
    assert json.loads((tmp_path / "a" / "model.json").read_text())["features"] == list(FEATURES)
    load_model(tmp_path / "a")  # the quick model is loadable with its own contract


@pytest.mark.slow
def test_heldout_generated_scenarios_meet_acceptance() -> None:
    """Seeds and parameter ranges never used in training (profile ``heldout``)."""
    s, _ = evaluate_generated(range(9001, 9004), "heldout", 1200.0)
    assert s.recall(["goip_plain"]) == 1.0
    assert s.recall(["goip_masked"]) >= 0.9
    assert s.n_false_alarms == 0, s.false_alarm_ips


@pytest.mark.slow
def test_stress_personas_call_centres_quiet_human_paced_boxes_found() -> None:
    """Held-out seeds with the stress personas in their held-out ranges: outbound
    call-centre trunks, diallers and NAT offices of up to 40 phones (training stops at
    24) raise nothing; boxes that imitate humans are mostly found. Offices pass because
    they are called on the extensions they registered, which a relay never is
    (``behaviour_veto``), not because of a threshold."""
    from simulators.telecom.ipplane_behaviour import STRESS_COUNTS, generate

    s, _ = evaluate_generated(range(9004, 9007), "heldout", 1200.0, stress=True)
    assert s.false_alarm_ips == []
    human = [e["ip"] for seed in range(9004, 9007) for e in
             generate(seed, profile="heldout", counts=dict(STRESS_COUNTS)).truth["endpoints"]
             if e["persona"] == "goip_human"]
    missed = [m.split()[0] for m in s.missed]
    assert sum(1 for ip in human if ip not in missed) >= 0.8 * len(human), s.missed
    offices = [e for seed in range(9004, 9007) for e in
               generate(seed, profile="heldout", counts=dict(STRESS_COUNTS)).truth["endpoints"]
               if e["persona"] == "nat_office"]
    assert len(offices) == 9 and max(e["lines"] for e in offices) > 24


@pytest.mark.slow
def test_heldout_pcap_simulator_capture_meets_acceptance(tmp_path: Path) -> None:
    """A capture of the pcap simulator (seed and line count not used in training), read
    by the fast reader, scored against its truth file."""
    pytest.importorskip("drivers.capture.fastpcap")
    from edge.eval.ipplane import evaluate_pcap
    from simulators.telecom.pcap import PcapSimConfig, simulate_pcap

    cfg = PcapSimConfig(seed=7007, duration_s=420.0, lines=16, goip_masked=3, goip_plain=1,
                        softphones=8, ipphones=4, pbx_trunks=3)
    pcap, truth = tmp_path / "h.pcap", tmp_path / "h.truth.json"
    simulate_pcap(cfg, pcap, truth)
    s = evaluate_pcap(pcap, truth)
    assert s.recall(["goip_plain"]) == 1.0 and s.recall(["simbank_client"]) == 1.0
    assert s.recall(["goip_masked"]) >= 0.9
    assert s.n_false_alarms == 0, s.false_alarm_ips


def test_score_counts_against_truth() -> None:
    from edge.detection import Detection, Subject

    truth = {"start": 0.0, "endpoints": [
        {"ip": "1", "label": "goip_masked", "positive": True},
        {"ip": "2", "label": "goip_masked", "positive": True},
        {"ip": "3", "label": "pbx_trunk", "positive": False},
        {"ip": "4", "label": "softphone", "positive": False}]}

    def det(ip: str, ts: float) -> Detection:
        return Detection(ts, "goip.endpoint", "high", 1.0, Subject("ip", ip), [], ["police"])

    s = score([det("1", 30.0), det("1", 90.0), det("3", 5.0), det("9", 1.0)], truth)
    assert s.recall(["goip_masked"]) == 0.5 and s.n_false_alarms == 1
    assert s.unknown_subjects == 1 and s.delays_s == [30.0]
    assert s.summary()["false_alarms_by_label"] == {"pbx_trunk": "1/1", "softphone": "0/1"}
