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


def _slow_relay(addr: str = "10.0.0.9") -> EndpointState:
    """A 2-line box relaying one call every 7 minutes, each to a fresh mobile number,
    registering every 10 minutes: two calls in any 10-minute window, four in 30."""
    ep = EndpointState(addr, T, T)
    for k in range(4):
        for line in range(2):
            ep.register(T + 600 * k + line, f"sim{line}@vos", "Linphone/4.4.0", 1200)
    for k in range(4):
        s = T + 60 + 420 * k
        _call(ep, f"c{k}", s, s + 90, True, f"13{k}8{k}00{k}4123", f"4477009{k}0{k}")
    return ep


def test_the_ledger_keeps_a_slow_relays_calls_beyond_the_window() -> None:
    from edge.telecom.ipplane.detector import behaviour_veto, ledger_relay, relay_evidence

    ep = _slow_relay()
    now = T + 1500.0
    row = ep.features(now, 600.0)
    led = ep.ledger_counts(now, 1800.0)
    assert led == (4, 0, 4, 0)  # four calls in, none to its own users, four fresh numbers
    assert not relay_evidence(row, 600.0)  # the window alone holds two of them
    assert behaviour_veto(row, 600.0) == "few_calls_skipped"
    assert ledger_relay(row, led) and behaviour_veto(row, 600.0, led) is None
    # a ledger as short as the window knows no more than the window: its two calls in
    # make the ledger rule's count, but two calls placed in ten minutes are too few to
    # judge (the few-calls veto holds without three fresh calls over the ledger)
    short = ep.ledger_counts(now, 600.0)
    assert short == (2, 0, 2, 0) and behaviour_veto(row, 600.0, short) == "few_calls_skipped"
    # calls that repeat a number block (a DID block) are not fresh
    ep.call_start("r", now, True, "130800004199", "447700")
    assert ep.ledger_counts(now + 1, 1800.0) == (5, 0, 3, 0)
    assert not ledger_relay(ep.features(now + 1, 600.0), ep.ledger_counts(now + 1, 1800.0))


def _human_paced_box(first_in_callee: str = "13912345678") -> EndpointState:
    """A 4-line box at human pace: lines 0-1 re-registered 8 minutes ago, lines 2-3 15
    minutes before that (the window sees two); four calls placed at once, one per line,
    to fresh mobile numbers; two calls came in, each ringing a fresh number; one victim's
    call-back forwarded to the first line's (short) user."""
    ep = EndpointState("10.0.0.14", T, T)
    users = ("8001", "8002", "8003", "8004")
    for line, u in enumerate(users):
        ep.register(T + line, f"{u}@vos", "Linphone/4.4.0", 1800)
    for line, u in enumerate(users[:2]):
        ep.register(T + 900 + line, f"{u}@vos", "Linphone/4.4.0", 1800)
    for line, u in enumerate(users):
        _call(ep, f"o{line}", T + 1000 + line, T + 1100 + line, False, f"1370{line}55{line}123", u)
    _call(ep, "i0", T + 1150, T + 1240, True, first_in_callee, "4477009000")
    _call(ep, "i1", T + 1250, T + 1330, True, "15866554433", "4477009001")
    _call(ep, "fwd", T + 1340, T + 1380, False, "8001", "13702552123")
    return ep


def test_a_human_paced_box_meets_the_ledger_relay_rule_on_its_identities() -> None:
    """Issue 13: the window sees two of its four lines register, four calls at once on
    four identities (two calls per line seen), and one call dialled to a short number;
    the identities carry one call each and the calls that came in rang fresh numbers."""
    from edge.telecom.ipplane.detector import behaviour_veto, ledger_relay, relay_evidence

    ep = _human_paced_box()
    now = T + 1400.0
    f = _feat(ep, now)
    assert f["lines"] == 2 and f["max_concurrent"] == 4 and f["identity_concurrency"] == 1
    assert f["concurrent_per_line"] == 2.0 and f["internal_share"] > 0
    row, led = ep.features(now, 600.0), ep.ledger_counts(now, 1800.0)
    assert led == (2, 0, 2, 0)
    assert not relay_evidence(row, 600.0)  # two calls in: under the window rule's three
    assert ledger_relay(row, led) and behaviour_veto(row, 600.0, led) is None
    # the same device called once on its own user is a phone system: vetoed
    own = _human_paced_box(first_in_callee="8003")
    led_own = own.ledger_counts(now, 1800.0)
    assert led_own[:3] == (2, 1, 1) and not ledger_relay(own.features(now, 600.0), led_own)
    assert behaviour_veto(own.features(now, 600.0), 600.0, led_own) == "own_line_calls_skipped"
    # its two calls in to one number block (a DID block) are not fresh: no relay rule
    did = _human_paced_box(first_in_callee="15866554499")
    led_did = did.ledger_counts(now, 1800.0)
    assert led_did[:3] == (2, 0, 0) and not ledger_relay(did.features(now, 600.0), led_did)


def test_the_ledger_remembers_calls_to_its_own_users() -> None:
    """A two-account softphone: called on its own account early on, then three calls out
    in the last ten minutes; the window alone has nothing that says "phone"."""
    from edge.telecom.ipplane.detector import behaviour_veto

    ep = EndpointState("10.0.0.10", T, T)
    for k in range(3):
        for acct in ("4711", "4712"):
            ep.register(T + 600 * k, f"{acct}@sip.example", "Zoiper rv2.10.20.2", 900)
    _call(ep, "in", T + 100, T + 200, True, "4711", "13900000009")
    for k in range(3):
        _call(ep, f"o{k}", T + 900 + 150 * k, T + 960 + 150 * k, False, f"1390000010{k}",
              ("4711", "4712")[k % 2])
    now = T + 1400.0
    row = ep.features(now, 600.0)
    assert row[FEATURES.index("own_in_share")] == 0.0  # no call came in in the window
    led = ep.ledger_counts(now, 1800.0)
    assert led == (1, 1, 0, 0)
    assert behaviour_veto(row, 600.0) is None
    assert behaviour_veto(row, 600.0, led) == "own_line_calls_skipped"


def test_a_trunk_called_again_on_its_scattered_dids_is_vetoed_over_the_ledger() -> None:
    """A 3-line trunk whose DIDs are scattered numbers: in any ten minutes two or three
    calls come in, too few for the window's DID-block veto, but over the ledger most of
    them went to a number another call also went to: its own numbers, not a relay's."""
    from edge.telecom.ipplane.detector import behaviour_veto, ledger_relay

    ep = EndpointState("10.0.0.12", T, T)
    for k in range(3):
        for line in range(3):
            ep.register(T + 600 * k + line, f"{7000 + line}@carrier", "FreeSWITCH", 700)
    dids = ("13662836945", "15754542125", "13189277954")
    for k, did in enumerate(dids + dids[:2]):
        s = T + 50 + 300 * k
        _call(ep, f"i{k}", s, s + 120, True, did, f"1597057{k:04d}")
        _call(ep, f"o{k}", s + 100, s + 200, False, f"1345503{k:04d}", f"{7000 + k % 3}")
    now = T + 1500.0
    row = ep.features(now, 600.0)
    led = ep.ledger_counts(now, 1800.0)
    assert led == (5, 0, 1, 0)  # five calls in, one to a number nobody else called
    assert behaviour_veto(row, 600.0) is None  # the window alone: two calls in
    assert not ledger_relay(row, led)
    assert behaviour_veto(row, 600.0, led) == "own_number_block_skipped"
    # a relay's ledger: every call to a fresh number, never vetoed by it
    assert behaviour_veto(row, 600.0, (5, 0, 5)) is None
    # two calls in are too few to say a number recurs by more than chance
    assert behaviour_veto(row, 600.0, (2, 0, 0)) is None


def _scattered_did_trunk(call_backs: int) -> EndpointState:
    """A 4-line trunk whose ten incoming calls each ring a different scattered DID (none
    twice: the relay rule holds on the calls in), with ``call_backs`` of its outgoing
    calls returning a caller's call."""
    ep = EndpointState("10.0.0.13", T, T)
    for k in range(3):
        for line in range(4):
            ep.register(T + 600 * k + line, f"{7000 + line}@carrier", "FreeSWITCH", 700)
    callers = [f"1597057{k:04d}" for k in range(10)]
    for k in range(10):
        s = T + 30 + 140 * k
        _call(ep, f"i{k}", s, s + 100, True, f"13{k}6{k}83{k}945", callers[k])
        dialled = callers[k - 1] if 0 < k <= call_backs else f"1345503{k:04d}"
        _call(ep, f"o{k}", s + 60, s + 130, False, dialled, f"{7000 + k % 4}")
    return ep


def test_a_trunk_that_calls_its_callers_back_is_vetoed() -> None:
    """Scattered DIDs that never repeat leave nothing in the calls that came in to say
    "its own numbers"; calling back two of the numbers that called it does."""
    from edge.telecom.ipplane.detector import behaviour_veto, ledger_relay

    now = T + 1500.0
    ep = _scattered_did_trunk(call_backs=2)
    row, led = ep.features(now, 600.0), ep.ledger_counts(now, 1800.0)
    assert led[:3] == (10, 0, 10) and ledger_relay(row, led)
    assert led[3] == 2 and ep.called_both_ways(now, 1800.0) == 2
    assert behaviour_veto(row, 600.0, led) == "called_back_skipped"
    # one number both ways may be a softswitch's fixed caller ID that is also the box's
    # forward route: not enough
    one = _scattered_did_trunk(call_backs=1)
    led1 = one.ledger_counts(now, 1800.0)
    assert led1[3] == 1 and behaviour_veto(one.features(now, 600.0), 600.0, led1) is None
    # outside the ledger's reach they are forgotten
    assert ep.called_both_ways(now + 1800.0, 1800.0) == 0
    ep.prune(now + 3600.0, 600.0, 1800.0)
    assert not ep.remotes


def test_a_relay_whose_victims_call_back_is_not_called_back() -> None:
    """Victims calling the SIM back reach the box from the radio side; it forwards them
    to its softswitch (From the victim, To its route): the victims' numbers were dialled
    on the relayed calls' To, never on their From, so nothing is called both ways."""
    ep = EndpointState("10.0.0.14", T, T)
    for line in range(4):
        ep.register(T + line, f"sim{line}@vos", "Linphone/4.4.0", 1200)
    victims = [f"13{k}8{k}00{k}4123" for k in range(6)]
    for k, v in enumerate(victims):
        _call(ep, f"c{k}", T + 20 + 90 * k, T + 80 + 90 * k, True, v, f"4477009{k}0{k}")
    for k in range(3):
        _call(ep, f"b{k}", T + 700 + 60 * k, T + 740 + 60 * k, False, "8613800000000",
              victims[k])
    assert ep.called_both_ways(T + 1000.0, 1800.0) == 0


def test_calls_to_the_operators_trunk_numbers_count_as_its_own() -> None:
    """``[detectors.ipplane] trunk_numbers``: the operator lists the numbers it routes
    to business trunks (a DID range, a ported-in number); the calls that came in to them
    count as calls to its own numbers, and the trunk with scattered DIDs is vetoed."""
    from edge.config import parse_config
    from edge.telecom.ipplane.build import settings_from
    from edge.telecom.ipplane.detector import behaviour_veto

    cfg = parse_config('[detectors.ipplane]\ntrunk_numbers = ["+1306", "1316183", '
                       '"13262832945"]\n')
    det = IpPlaneDetector(settings_from(cfg.detectors.ipplane))
    assert det._trunk_number("13062836945") and det._trunk_number("+13161831945")
    assert det._trunk_number("13262832945") and not det._trunk_number("13262832946")
    assert not det._trunk_number("1306"[:3]) and not det._trunk_number("trunk")
    plain = _scattered_did_trunk(call_backs=0)
    listed = EndpointState("10.0.0.15", T, T)
    for ts, user, _own in plain.ledger:
        listed.call_start(f"x{ts}", ts, True, user, "15970570000", det._trunk_number(user))
    now = T + 1500.0
    assert plain.ledger_counts(now, 1800.0)[:3] == (10, 0, 10)
    n_in, n_own, _fresh, _both = listed.ledger_counts(now, 1800.0)
    assert (n_in, n_own) == (10, 3)  # 1306..., 1316183..., and the one whole number
    row = plain.features(now, 600.0)
    assert behaviour_veto(row, 600.0, plain.ledger_counts(now, 1800.0)) is None
    # half of them listed: the own-numbers veto
    assert behaviour_veto(row, 600.0, (10, 5, 5, 0)) == "own_line_calls_skipped"
    assert IpPlaneDetector(DetectorSettings())._trunk_lengths == []


def test_one_account_carrying_parallel_calls_it_placed_is_a_trunk() -> None:
    from edge.telecom.ipplane.detector import behaviour_veto

    ep = EndpointState("10.0.0.11", T, T)
    ep.register(T, "campaign@provider", "VICIdial", 300)
    for k in range(8):
        s = T + 10 + 60 * (k // 4) + k % 4
        _call(ep, f"d{k}", s, s + 30, False, f"1390000{k:04d}", f"44770090{k % 3}")
    assert behaviour_veto(ep.features(T + 600, 600.0)) == "one_account_trunk_skipped"


def test_a_slow_relay_below_the_activity_floor_is_reported_by_its_ledger() -> None:
    """The detector with the packaged model: too little activity in the window for the
    model (2 registrations + 2 calls), but the ledger holds four relayed calls; two
    looks, then a report that names the ledger rule, not the model."""
    from edge.telecom.ipplane.detector import load_default_model

    model = load_default_model()
    det = IpPlaneDetector(DetectorSettings(threshold=float(model.contract["threshold"])),
                          model=model)
    ep = _slow_relay()
    det.endpoints[ep.addr] = ep
    now = T + 1500.0
    assert ep.activity(now, 600.0) < det.s.min_activity
    ep.dirty = True
    assert det._evaluate(now) == []
    ep.dirty = True
    (d,) = det._evaluate(now + 60.0)
    assert d.subject.id == ep.addr and d.model is None
    rules = [e.features.get("rule") for e in d.evidence]
    assert "relay_ledger" in rules
    c = det.counters()
    assert c["ledger_only_evaluations"] == 2 and c["ledger_relay_reports"] == 1


def test_at_the_end_of_input_one_look_by_a_relay_rule_reports() -> None:
    """No later look comes after the input ends: the flush judges with the same rules,
    and a relay rule's look (counted calls, not a score) confirms itself there; a look
    the vetoes stop does not count."""
    from edge.telecom.ipplane.detector import load_default_model

    model = load_default_model()
    det = IpPlaneDetector(DetectorSettings(threshold=float(model.contract["threshold"])),
                          model=model)
    ep = _slow_relay()
    det.endpoints[ep.addr] = ep
    ep.dirty = True
    (d,) = det.flush(T + 1500.0)
    assert d.subject.id == ep.addr
    assert "relay_ledger" in [e.features.get("rule") for e in d.evidence]
    # the same box whose one earlier call went to its own line: vetoed, no report
    det2 = IpPlaneDetector(DetectorSettings(threshold=float(model.contract["threshold"])),
                           model=model)
    own = _slow_relay("10.0.0.12")
    own.call_start("x", T + 1490.0, True, "sim0", "447700900")
    own.call_end("x", T + 1495.0)
    det2.endpoints[own.addr] = own
    for k in range(3):
        own.dirty = True
        assert det2._evaluate(T + 1500.0 + 60 * k) == []
    assert own.ledger_counts(T + 1500.0, 1800.0) == (5, 1, 4, 0)  # one call in was its own
