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


def test_an_office_is_called_on_its_own_extensions_and_has_several_makes() -> None:
    """Phones behind one NAT address: incoming calls go to the extensions they
    registered, colleagues call each other's extensions, the phones are of two makes;
    the detector's rules keep the behaviour model from reporting it."""
    from edge.telecom.ipplane.detector import behaviour_veto, relay_evidence

    ep = EndpointState("10.0.0.4", T, T)
    uas = ["Yealink SIP-T46S 66.86.0.15", "Yealink SIP-T46S 66.85.0.5",
           "Grandstream GXP2170 1.0.11.23"]
    for k in range(12):
        ep.register(T + k, f"{200 + k}@pbx.example", uas[k % 3], 600)
    for k in range(6):
        _call(ep, f"i{k}", T + 50 + 60 * k, T + 90 + 60 * k, True, f"{200 + k}",
              f"1380013{k:04d}")
        _call(ep, f"o{k}", T + 60 + 60 * k, T + 80 + 60 * k, False, f"{210 - k}", f"{200 + k}")
    f = _feat(ep, T + 600)
    assert f["own_in_share"] == 1.0
    assert f["ua_families"] == 2.0  # two Yealink firmwares are one product
    assert f["internal_share"] == 0.5  # the six calls between extensions
    row = ep.features(T + 600, 600.0)
    assert behaviour_veto(row) == "own_line_calls_skipped"
    assert not relay_evidence(row, 600.0)


def test_relay_rule_and_vetoes_on_feature_rows() -> None:
    from edge.telecom.ipplane.detector import behaviour_veto, relay_evidence

    ep = EndpointState("10.0.0.5", T, T)
    for line in range(4):
        ep.register(T + line, f"sim{line}@vos", "Linphone/4.4.0", 120)
        for k in range(3):
            s = T + 10 + k * 150 + line
            _call(ep, f"c{line}-{k}", s, s + 80, True, f"138{line}{k}0000123",
                  f"447700900{k}{line}")
    row = ep.features(T + 600, 600.0)
    assert relay_evidence(row, 600.0) and behaviour_veto(row) is None
    # the same box with its calls arriving on its own line users: not a relay
    own = EndpointState("10.0.0.6", T, T)
    for line in range(4):
        own.register(T + line, f"sim{line}@vos", "Linphone/4.4.0", 120)
        for k in range(3):
            s = T + 10 + k * 150 + line
            _call(own, f"c{line}-{k}", s, s + 80, True, f"sim{line}", f"447700900{k}{line}")
    row = own.features(T + 600, 600.0)
    assert not relay_evidence(row, 600.0)
    assert behaviour_veto(row) == "own_line_calls_skipped"
    # one line that made two calls: no call behaviour to judge
    few = EndpointState("10.0.0.7", T, T)
    few.register(T, "me@reg", "Zoiper rv2.10.20.2", 60)
    _call(few, "a", T + 10, T + 40, False, "13900000001", "me")
    _call(few, "b", T + 100, T + 140, False, "13900000002", "me")
    assert behaviour_veto(few.features(T + 600, 600.0)) == "few_calls_skipped"


def test_one_line_one_call_at_a_time_is_not_judged() -> None:
    from edge.telecom.ipplane.detector import behaviour_veto

    ep = EndpointState("10.0.0.8", T, T)
    ep.register(T, "me@reg", "Zoiper rv2.10.20.2", 60)
    for k in range(4):
        _call(ep, f"a{k}", T + 10 + 120 * k, T + 100 + 120 * k, False, f"1390000000{k}", "me")
    assert behaviour_veto(ep.features(T + 600, 600.0)) == "single_line_skipped"
