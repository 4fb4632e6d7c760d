"""Leave-one-family-out: rows without a family, and the offline judge = the live detector."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.eval.ipplane import run_packets
from edge.telecom.ipplane.detector import DetectorSettings, IpPlaneDetector
from models.ipplane.lofo import (
    POSITIVE_FAMILIES,
    collect_heldout,
    explain,
    judge,
    per_family,
    veto_endpoints,
)
from models.ipplane.train import collect, train
from models.loader import load_model
from simulators.telecom.ipplane_behaviour import STRESS_COUNTS, generate


def test_rows_without_a_family_hold_none_of_it() -> None:
    rows = collect([11], "train", 400.0)
    assert "nat_office" in rows.fams and "goip_masked" in rows.fams
    rest = rows.without(("nat_office",))
    assert "nat_office" not in rest.fams
    assert len(rest.y) == len(rows.y) - rows.fams.count("nat_office")
    assert len(rest.keys) == len(rest.y) == rest.x.shape[0]


def test_offline_judge_reports_what_the_live_detector_reports(tmp_path: Path) -> None:
    """The LOFO figures come from :func:`judge` over rows the detector collected once; it
    must name exactly the endpoints the detector itself reports with the same model."""
    tr = collect([21, 22], "train", 600.0)
    va = collect([521], "train", 600.0)
    c = train(tmp_path / "m", 3, n_train=2, n_val=1, n_estimators=20, n_pcap=0,
              exclude=("nat_office",), data=(tr, va))
    model = load_model(tmp_path / "m")
    seeds = [9101, 9102]
    h = collect_heldout(seeds, 600.0, [])
    offline = judge(h, np.asarray(model.predict_proba(h.x)), float(c["threshold"]))
    live: set[str] = set()
    for seed in seeds:
        sc = generate(seed, profile="heldout", duration_s=600.0, counts=dict(STRESS_COUNTS))
        det = IpPlaneDetector(DetectorSettings(threshold=float(c["threshold"])), model=model)
        live |= {f"{seed}/{d.subject.id}" for d in run_packets(det, sc.packets)}
    assert offline == live
    fams = per_family(h, offline)
    assert sum(t for _, t in fams.values()) == len(h.truth)
    assert {"nat_office", "dialer", "goip_human", "softphone"} <= set(fams)
    # --explain: one header line per wrong verdict, each followed by its rows
    probs = np.asarray(model.predict_proba(h.x))
    lines = explain(h, probs, offline, float(c["threshold"]))
    wrong = [k for k, (_f, pos) in h.truth.items() if (k in offline) != pos]
    assert [ln.split()[0] for ln in lines if not ln.startswith(" ")] == sorted(wrong)
    # the vetoes per family: the DID-block veto never stops a GoIP's row
    vetoes = veto_endpoints(h)
    assert any("own_number_block_skipped" in v for v in vetoes.values())
    assert not any("own_number_block_skipped" in vetoes.get(f, {}) for f in POSITIVE_FAMILIES)
    # nor the call-back veto (numbers called both ways): relays do not call their callers
    assert not any("called_back_skipped" in vetoes.get(f, {}) for f in POSITIVE_FAMILIES)
    assert h.ledger is not None and h.ledger.shape[1] == 4
