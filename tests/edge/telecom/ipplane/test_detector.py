"""The detector stage on real captures, signature byte literals, RtpBatch, bounds."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import sys
from pathlib import Path

import pytest

from edge.config import Config, parse_config
from edge.detection import Detection
from edge.eval.ipplane import run_packets
from edge.records import Packet, RtpBatch
from edge.telecom.ipplane.build import build_stages
from edge.telecom.ipplane.detector import DetectorSettings, IpPlaneDetector

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pcaputil import packets_from_pcap  # noqa: E402


def _packaged() -> IpPlaneDetector:
    (st,) = build_stages(Config())
    assert isinstance(st, IpPlaneDetector)
    return st


def _goip_reports(dets: list[Detection]) -> dict[str, Detection]:
    out = {}
    for d in dets:
        assert d.kind == "goip.endpoint" and d.route == ["telecom", "police"]
        assert d.subject.type == "ip" and d.evidence
        out[d.subject.id] = d
    return out


@pytest.mark.parametrize(("name", "addr", "must"), [
    ("goip/startup.pcap", "192.168.1.31", {"dhcp_vendor_dbl", "dbl_mac_oui", "dns_gontp"}),
    ("goip/ddns.pcap", "192.168.1.30", {"goip_ddns"}),
    ("goip/smtp.pcap", "192.168.1.30", {"dbl_mac_oui"}),
])
def test_real_goip_captures_are_recognised(captures_dir: Path, name: str, addr: str,
                                           must: set[str]) -> None:
    dets = run_packets(_packaged(), packets_from_pcap(captures_dir / name))
    rep = _goip_reports(dets)
    assert set(rep) == {addr}
    d = rep[addr]
    sigs = {e.features.get("signature") for e in d.evidence}
    assert must <= sigs
    assert d.severity == "high" and d.score == 1.0
    for e in d.evidence:  # the MAC's device part stays out of the report
        if e.features.get("signature") == "dbl_mac_oui":
            assert e.features["detail"] == "38:3f:10:xx:xx:xx"
    for e in d.evidence:
        if "signature" in e.features:
            assert e.features["signatures_version"] and e.features["count"] >= 1


def test_evidence_before_a_time_gap_is_judged_not_evicted(captures_dir: Path) -> None:
    # A capture followed by input from much later (another file, a feed gap): the tick
    # that jumps over the gap must judge the endpoint before idle eviction drops it.
    st = _packaged()
    pk = packets_from_pcap(captures_dir / "goip/startup.pcap")
    dets: list[Detection] = []
    for p in pk:
        dets += st.feed(p)
    dets += st.tick(pk[-1].ts + 6 * 365 * 86400.0)
    assert set(_goip_reports(dets)) == {"192.168.1.31"}
    assert st.flush(pk[-1].ts + 6 * 365 * 86400.0) == []


REAL_SIP = sorted(p.name for p in (Path(__file__).resolve().parents[4] / "../shared/captures/sip"
                                   ).glob("*.pcap*"))


def _real_sip_records(captures_dir: Path, name: str) -> list[Packet | RtpBatch]:
    from drivers.capture.fastpcap import FastPcapSource

    src = FastPcapSource(captures_dir / "sip" / name)
    try:
        return [r for r in src if type(r) in (Packet, RtpBatch)]
    finally:
        src.close()


def _shifted(pk: list[Packet], to: float) -> list[Packet]:
    """A capture's packets moved in time to start at ``to``."""
    d = to - pk[0].ts
    return [dataclasses.replace(p, ts=p.ts + d) for p in pk]


@pytest.mark.parametrize("name", REAL_SIP)
def test_real_sip_calls_raise_nothing(captures_dir: Path, name: str) -> None:
    """Real softphones, IP phones and PBXes (registrations with challenges, calls with
    RTP, SUBSCRIBE/PUBLISH, SIP over TCP and WebSocket, one inside ERSPAN): no report,
    and the detector really read their signalling. The same assertion is made on the
    same capture with a real GoIP's boot traffic mixed in: it must then name the GoIP and
    only the GoIP, so "no report" here is a verdict, not a detector that saw nothing."""
    recs = _real_sip_records(captures_dir, name)
    st = _packaged()
    assert _goip_reports(run_packets(st, recs)) == {}
    c = st.counters()
    assert c["sip_messages"] >= 5 and c["internal_errors"] == 0 and c["sip_errors"] == 0
    assert c["evaluations"] > 0
    goip = _shifted(packets_from_pcap(captures_dir / "goip/startup.pcap"), recs[0].ts + 1.0)
    mixed = sorted([*recs, *goip], key=lambda r: r.ts)
    assert set(_goip_reports(run_packets(_packaged(), mixed))) == {"192.168.1.31"}


def _ua_dble(p: bytes) -> bytes:
    """The User-Agent values of a SIP message rewritten to a GoIP's ``dble``, padded to
    the same length (TCP sequence numbers stay valid)."""
    return re.sub(rb"(?im)^(user-agent:[ \t]*)([^\r\n]+)",
                  lambda m: m.group(1) + b"dble".ljust(len(m.group(2)), b" ")
                  if len(m.group(2)) >= 4 else m.group(0), p)


@pytest.mark.parametrize("name", REAL_SIP)
def test_real_sip_with_a_goip_user_agent_is_reported(captures_dir: Path, name: str) -> None:
    """The control for the quiet set: the same real capture whose clients announce the
    GoIP User-Agent must be reported, on an address that sent the rewritten messages."""
    recs = _real_sip_records(captures_dir, name)
    senders = set()
    out: list[Packet | RtpBatch] = []
    for r in recs:
        if type(r) is Packet and b"ser-Agent" in r.payload[:4096]:
            q = _ua_dble(r.payload)
            if q != r.payload:
                senders.add(r.src)
                r = dataclasses.replace(r, payload=q)
        out.append(r)
    if not senders:  # WebSocket frames from browsers are masked: no clear header to edit
        assert name == "heplify__sip_tcp_websocket.pcap"
        return
    rep = _goip_reports(run_packets(_packaged(), out))
    assert rep and set(rep) <= senders
    sigs = {e.features.get("signature") for d in rep.values() for e in d.evidence}
    assert "sip_ua_dble" in sigs

def test_the_real_sip_captures_are_there() -> None:
    assert len(REAL_SIP) >= 7, REAL_SIP


@pytest.mark.parametrize("name", ["sipp/g711a.pcap", "sipp/dtmf_2833_1.pcap"])
def test_rtp_only_captures_are_counted(captures_dir: Path, name: str) -> None:
    st = _packaged()
    pk = packets_from_pcap(captures_dir / name)
    assert run_packets(st, pk) == []
    c = st.counters()
    assert c["rtp_packets"] == len(pk) and c["internal_errors"] == 0


def _fast_source() -> type | None:
    if importlib.util.find_spec("drivers.capture.fastpcap") is None:
        return None
    from drivers.capture.fastpcap import FastPcapSource

    return FastPcapSource  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ["goip/startup.pcap", "goip/ddns.pcap", "goip/smtp.pcap",
                                  "sipp/g711a.pcap", "sipp/dtmf_2833_1.pcap"])
def test_same_verdicts_through_the_fast_reader(captures_dir: Path, name: str) -> None:
    src_cls = _fast_source()
    if src_cls is None:
        pytest.skip("drivers.capture.fastpcap not built yet")
    src = src_cls(captures_dir / name)
    recs = list(iter(src))
    want = {d.subject.id for d in run_packets(_packaged(), packets_from_pcap(captures_dir / name))}
    got = {d.subject.id for d in run_packets(_packaged(), recs)}
    assert got == want


def _udp(ts: float, src: str, dst: str, sport: int, dport: int, payload: bytes,
         eth: bytes | None = None) -> Packet:
    return Packet(ts, src, dst, sport, dport, 17, payload, eth_src=eth)


def test_each_signature_kind_from_byte_literals() -> None:
    ua = (b"REGISTER sip:203.0.113.5 SIP/2.0\r\nVia: SIP/2.0/UDP 10.64.1.1:5060\r\n"
          b"From: <sip:801@203.0.113.5>;tag=1\r\nTo: <sip:801@203.0.113.5>\r\n"
          b"Call-ID: x1\r\nCSeq: 1 REGISTER\r\nUser-Agent: dble\r\nContent-Length: 0\r\n\r\n")
    sdp = (b"v=0\r\no=user3 20000001 20000001 IN IP4 10.64.1.2\r\ns=DBL Session\r\n"
           b"c=IN IP4 10.64.1.2\r\nt=0 0\r\nm=audio 10000 RTP/AVP 8 0 18 4 101\r\n")
    ok = (b"SIP/2.0 200 OK\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: y\r\n"
          b"CSeq: 1 INVITE\r\nX-ACrypt: ET263\r\nContent-Type: application/sdp\r\n"
          b"Content-Length: %d\r\n\r\n" % len(sdp) + sdp)
    reg2 = ua.replace(b"User-Agent: dble", b"User-Agent: Linphone").replace(b"x1", b"x2")
    pk = [
        _udp(1.0, "10.64.1.1", "203.0.113.5", 5060, 5060, ua),
        # X-ACrypt is attributed to the registering side (a server sends it too)
        _udp(1.5, "10.64.1.2", "203.0.113.5", 5062, 5060, reg2),
        _udp(2.0, "10.64.1.2", "203.0.113.5", 5062, 5060, ok),
        _udp(3.0, "10.64.1.3", "203.0.113.9", 44444, 44444,
             b"req:1;id:g1;pass:p;num:1;signal:20;gsm_status:LOGIN;voip_status:LOGIN;"),
        _udp(4.0, "203.0.113.9", "10.64.1.4", 44444, 44444, b"USSD 7 pw *100#"),
        _udp(5.0, "10.64.1.5", "203.0.113.7", 56011, 56011, b"\x78\x56\x21\x43" + b"\1" * 20),
        # the bank's reply carries the magic too: still the client's hit
        _udp(5.1, "203.0.113.7", "10.64.1.5", 56011, 56011, b"\x78\x56\x21\x43" + b"\2" * 20),
        _udp(6.0, "10.64.1.6", "202.104.186.90", 56000, 39800, b"\x86\x70\x14\x13\x01"),
        Packet(7.0, "10.64.1.7", "198.51.100.1", 40000, 1920, 6, b"", tcp_flags=2),
        Packet(7.5, "10.64.1.7", "198.51.100.1", 40001, 1920, 6, b"", tcp_flags=2),
    ]
    st = _packaged()
    rep = _goip_reports(run_packets(st, pk))
    sigs = {a: {e.features.get("signature") for e in d.evidence} for a, d in rep.items()}
    for a, d in rep.items():  # evidence never repeats the address it is about
        assert all(a not in str(v) for e in d.evidence for v in e.features.values())
    assert sigs["10.64.1.1"] == {"sip_ua_dble"}
    assert {"sip_x_acrypt", "sdp_dbl_session", "sdp_goip_origin", "sdp_goip_media"} \
        <= sigs["10.64.1.2"]
    assert sigs["10.64.1.3"] == {"goip_sms_protocol"}
    assert sigs["10.64.1.4"] == {"goip_sms_command"}
    assert sigs["10.64.1.5"] == {"simbank_magic"} and "203.0.113.7" not in rep
    assert "goip_ddns" in sigs["10.64.1.6"]
    # the admin port alone is weak evidence (weight < report weight): about the server side
    assert "198.51.100.1" not in rep and "10.64.1.7" not in rep
    assert st.endpoints["198.51.100.1"].sig_hits["goip_admin_port"].count == 2


def test_rtp_batches_tie_to_calls_and_feed_endpoint_stats() -> None:
    sdp = b"v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n" \
          b"m=audio 7000 RTP/AVP 0\r\n"
    inv = (b"INVITE sip:5@10.0.0.2 SIP/2.0\r\nFrom: <sip:a@10.0.0.1>;tag=1\r\n"
           b"To: <sip:5@10.0.0.2>\r\nCall-ID: r1\r\nCSeq: 1 INVITE\r\n"
           b"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n" % len(sdp) + sdp)
    st = IpPlaneDetector(DetectorSettings())
    st.feed(_udp(1.0, "10.0.0.1", "10.0.0.2", 5060, 5060, inv))
    for i in range(5):
        st.feed(RtpBatch(2.0 + i + 0.98, 2.0 + i, "10.0.0.1", "10.0.0.2", 9000, 7000, 42, 0,
                         50, 8000, i * 50, i * 50 + 49, lost=1, jitter_s=0.002))
    # RTCP on the announced port + 1 (RFC 3550 6.1) is tied to the call and counted
    st.feed(_udp(3.0, "10.0.0.1", "10.0.0.2", 9001, 7001, b"\x80\xc8\x00\x06" + bytes(24)))
    assert st.counters()["rtcp_packets"] == 1
    (f,) = st.rtp.values()
    assert f.call_id == "r1" and f.packets == 250 and f.lost == 5
    assert f.jitter_ms == pytest.approx(2.0)
    st.flush(100.0)
    ep = st.endpoints["10.0.0.1"]
    assert len(ep.rtp) == 1 and ep.rtp[0][1] == pytest.approx(2.0)
    assert st.counters()["rtp_batches"] == 5


def test_tables_stay_bounded_and_evictions_are_counted() -> None:
    s = DetectorSettings(max_flows=40, max_dialogs=20, max_endpoints=30, idle_evict_s=10.0,
                         window_s=20.0)
    st = IpPlaneDetector(s)
    for i in range(500):
        ts = float(i) * 0.1
        inv = (b"INVITE sip:%d@h SIP/2.0\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:%d@h>\r\n"
               b"Call-ID: c%d\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n" % (i, i, i))
        st.feed(_udp(ts, f"10.1.{i // 250}.{i % 250}", "10.9.9.9", 5060, 5060, inv))
        st.feed(_udp(ts, f"10.2.{i // 250}.{i % 250}", "10.9.9.8", 4000 + i, 6000,
                     b"\x80\x08" + bytes(30)))
        st.tick(ts)
    c = st.counters()
    assert c["endpoints"] <= 30 and c["dialogs"] <= 20 and c["rtp_flows"] <= 40
    assert c["endpoints_evicted_full"] > 0 and c["dialogs_evicted_full"] > 0
    assert c["flows_evicted_full"] + c["flows_evicted_idle"] > 0
    st.tick(1000.0)
    assert st.counters()["endpoints"] < 30
    assert st.counters()["endpoints_evicted_idle"] > 0


def test_config_keys() -> None:
    cfg = parse_config("[detectors.ipplane]\nwindow_s = 300\neval_interval_s = 30\n"
                       "min_activity = 5\nmax_endpoints = 1000\nrealert_s = 60\n"
                       "threshold = 0.8\nmin_observed_s = 120\nconfirm_evals = 3\n")
    (st,) = build_stages(cfg)
    assert st.s.window_s == 300 and st.s.eval_interval_s == 30 and st.s.threshold == 0.8
    assert st.s.min_observed_s == 120 and st.s.confirm_evals == 3
    assert build_stages(parse_config("[detectors.ipplane]\nenabled = false\n")) == []


def test_trunk_numbers_reach_the_ledger_through_the_sip_path() -> None:
    """``trunk_numbers`` end to end: the simulator's trunks' DIDs (the Request-URI users
    of the INVITEs they receive) listed as the operator's trunk numbers; the detector,
    fed the same packets, counts those calls in its ledger as calls to the trunk's own
    numbers, and without the list it does not (the trunks register other users)."""
    from edge.eval.ipplane import run_packets
    from edge.telecom.ipplane.detector import DetectorSettings as Settings
    from simulators.telecom.ipplane_behaviour import TRAIN_COUNTS, generate

    sc = generate(12, profile="train", duration_s=600.0, counts=dict(TRAIN_COUNTS))
    trunks = {e["ip"] for e in sc.truth["endpoints"] if e["persona"] == "pbx_trunk"}
    dids: set[str] = set()
    for p in sc.packets:
        if p.dst in trunks and p.payload.startswith(b"INVITE "):
            user = p.payload.split(b" ", 2)[1].decode().split(":", 1)[1].split("@", 1)[0]
            if user.isdigit() and len(user) >= 7:
                dids.add(user)
    assert dids, "some of the scenario's trunks take calls on DIDs"
    counts: dict[bool, int] = {}
    for listed in ((), tuple(sorted(dids))):
        det = IpPlaneDetector(Settings(trunk_numbers=listed))
        run_packets(det, sc.packets)
        counts[bool(listed)] = sum(own for a in trunks if a in det.endpoints
                                   for _t, _u, own in det.endpoints[a].ledger)
    assert counts[True] > counts[False]
    assert counts[True] >= len(dids)
