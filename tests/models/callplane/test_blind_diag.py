"""The blind-run diagnosis (models/callplane/blind_diag.py): the verdict per SIM is the
live stage's decision, and a small blind run goes through end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from edge.telecom.callplane.features import FEATURES, INDEX
from edge.telecom.callplane.rules import certain, device_tell
from models.callplane import blind_diag
from simulators.blind.events import generate


def _vec(**kv: float) -> list[float]:
    x = [0.0] * len(FEATURES)
    x[INDEX["mo_24h"]] = 6.0
    x[INDEX["mt_24h"]] = 1.0
    x[INDEX["sms_24h"]] = 1.0
    x[INDEX["data_24h"]] = 1.0
    x[INDEX["block_imsis"]] = 1.0
    for k, v in kv.items():
        x[INDEX[k]] = v
    return x


def test_verdicts_follow_rule_then_gated_score() -> None:
    plain = _vec()
    told = _vec(max_imsis_per_imei=2.0)  # a shared IMEI: the gate opens
    rule = _vec(max_imsis_per_imei=4.0, mt_24h=0.0, sms_24h=0.0, data_24h=0.0,
                distinct_peer_ratio=1.0)  # shared_device_outbound
    assert certain(plain) is None and not device_tell(plain)
    assert certain(told) is None and device_tell(told)
    assert certain(rule) is not None
    rows = [plain, told, plain, told, plain, told, rule, plain]
    imsi = ["a", "a", "b", "b", "c", "c", "d", "e"]
    probs = np.array([0.99, 0.5, 0.5, 0.5, 0.99, 0.5, 0.0, 0.1])
    v = blind_diag.Vectors(np.asarray(rows, dtype=np.float32), imsi, [float(i) for i in range(8)])
    got = {s: (r.how, r.row) for s, r in blind_diag.verdicts(v, probs, 0.9).items()}
    assert got["a"][0] == "never_together"  # high score without a tell, then a tell, low
    assert got["b"] == ("gate_open_low_score", 2)  # the best-scored vector is kept
    assert got["c"] == ("never_together", 4)
    assert got["d"] == ("rule:shared_device_outbound", 6)
    assert got["e"][0] == "neither"
    probs[1] = 0.95  # a's second vector: score and tell together
    assert blind_diag.verdicts(v, probs, 0.9)["a"].how == "model"
    probs[1], probs[0] = 0.5, 0.5
    probs[4] = 0.99
    assert blind_diag.verdicts(v, probs, 0.9)["a"].how == "gate_open_low_score"


def test_small_blind_run_end_to_end(tmp_path: Path) -> None:
    generate(3, 160, 4.0, str(tmp_path), boxes=7)
    vec = blind_diag.load_vectors(tmp_path, tmp_path / "v.npz")
    assert vec.rows.shape[1] == len(FEATURES) and len(vec.imsi) == len(vec.rows) > 0
    again = blind_diag.load_vectors(tmp_path, tmp_path / "v.npz")  # from the cache
    assert np.array_equal(again.rows, vec.rows) and again.imsi == vec.imsi

    class Model:
        contract = {"threshold": 0.5}

        @staticmethod
        def predict_proba(x: np.ndarray) -> np.ndarray:
            return np.full(len(x), 0.6)

    truth = orjson.loads((tmp_path / "truth.json").read_bytes())
    text = blind_diag.report(vec, truth, Model())
    for b in truth["boxes"]:
        assert f"| {b['box']} | {b['family']} | {b['channels']} |" in text
    # every judged SIM with a device tell and score 0.6 >= 0.5 is flagged: none is
    # "gate open, score < thr" in the box table
    rows = [ln.split(" | ") for ln in text.splitlines() if ln.startswith("| box")]
    assert rows and all(r[6] == "0" for r in rows if len(r) > 6 and r[1] != "family")
    ver = blind_diag.verdicts(vec, Model.predict_proba(vec.rows), 0.5)
    flagged = {s for s, r in ver.items() if r.how == "model" or r.how.startswith("rule:")}
    boxes = {s for s, t in truth["sims"].items() if t["class"] == "simbox"}
    line = blind_diag.totals(vec, truth, Model())
    assert line.startswith(f"box SIMs found {len(flagged & boxes)}/{len(boxes)}, "
                           f"false alarms {len(flagged - boxes)} ")
