"""Endpoint features that separate a GoIP's SIM ports from a PBX / call-centre trunk, and
the detector's evidence rules for behaviour-only reports."""

from __future__ import annotations

from edge.telecom.ipplane.detector import DetectorSettings, IpPlaneDetector
from edge.telecom.ipplane.endpoint import FEATURES, EndpointState

T = 1_000_000.0


def _feat(ep: EndpointState, now: float) -> dict[str, float]:
    return dict(zip(FEATURES, ep.features(now, 600.0), strict=True))


def _call(ep: EndpointState, cid: str, start: float, end: float, inbound: bool,
          callee: str, caller: str) -> None:
    ep.call_start(cid, start, inbound, callee, caller)
    ep.call_answer(cid, start + 5.0)
    ep.call_end(cid, end)


def test_relay_lines_carry_one_call_each_and_ring_fresh_numbers() -> None:
    """A 4-port box: each line one call at a time; the softswitch INVITEs it to ring a
    different mobile number every time."""
    ep = EndpointState("10.0.0.1", T, T)
    for line in range(4):
        ep.register(T + line, f"sim{line}")
        for k in range(5):
            s = T + 10 + k * 100 + line
            _call(ep, f"c{line}-{k}", s, s + 80, True, f"1380000{line}{k}123", f"4477{k}{line}")
    f = _feat(ep, T + 600)
    assert f["identity_concurrency"] == 1.0
    assert f["in_callee_ratio"] == 1.0  # 20 calls in, 20 different number blocks
    assert f["concurrent_per_line"] == 1.0  # 4 calls at once on 4 lines


def test_trunk_carries_many_calls_on_one_registration_and_its_dids_repeat() -> None:
    """One registration, eight calls at once out from the trunk identity, incoming calls
    to a DID block (consecutive numbers)."""
    ep = EndpointState("10.0.0.2", T, T)
    ep.register(T, "trunk")
    for k in range(8):
        _call(ep, f"o{k}", T + 10 + k, T + 200 + k, False, f"1390000{k:04d}", "trunk")
    for k in range(6):
        _call(ep, f"i{k}", T + 300 + k, T + 400, True, f"442079460{k:02d}", f"1377{k}")
    f = _feat(ep, T + 600)
    assert f["identity_concurrency"] == 8.0
    assert f["concurrent_per_line"] == 8.0
    assert abs(f["in_callee_ratio"] - 1 / 6) < 1e-9  # one block for six incoming calls


def test_no_incoming_calls_reads_zero() -> None:
    ep = EndpointState("10.0.0.3", T, T)
    _call(ep, "a", T + 1, T + 50, False, "13900000001", "me")
    assert _feat(ep, T + 600)["in_callee_ratio"] == 0.0


def _first_behaviour_reports(settings: DetectorSettings) -> dict[str, tuple[float, float]]:
    """{address: (first report ts, first packet ts)} for reports the model made alone, on a
    held-out behaviour-generator scenario, with the packaged model."""
    from edge.eval.ipplane import run_packets
    from edge.telecom.ipplane.detector import load_default_model
    from simulators.telecom.ipplane_behaviour import generate

    model = load_default_model()
    settings.threshold = float(model.contract["threshold"])
    det = IpPlaneDetector(settings, model=model)
    sc = generate(9002, profile="heldout", duration_s=900.0)
    out: dict[str, tuple[float, float]] = {}
    for d in run_packets(det, sc.packets):
        if not any("signature" in e.features for e in d.evidence):
            out.setdefault(d.subject.id, (d.ts, det.endpoints[d.subject.id].first_ts))
    return out


def test_behaviour_reports_wait_for_observation_time_and_a_second_look() -> None:
    gated = _first_behaviour_reports(DetectorSettings())
    assert gated, "the scenario's masked gateways are found by behaviour"
    assert all(ts - first >= 300.0 + 60.0 for ts, first in gated.values())
    quick = _first_behaviour_reports(DetectorSettings(min_observed_s=0.0, confirm_evals=1))
    assert set(gated) <= set(quick)
    assert min(ts - first for ts, first in quick.values()) < 300.0
