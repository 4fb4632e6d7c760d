"""Random and mutated packets and SIP messages never raise out of the parsers or stage."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.records import Packet
from edge.telecom.ipplane.detector import DetectorSettings, IpPlaneDetector, load_default_model
from edge.telecom.ipplane.dhcp_dns import dns_query_name, parse_dhcp
from edge.telecom.ipplane.goip_sms import parse_goip_sms
from edge.telecom.ipplane.rtp import RtpFlow, rtp_header
from edge.telecom.ipplane.sdp import parse_sdp
from edge.telecom.ipplane.sip import SipStream, parse_message
from simulators.telecom.ipplane_behaviour import generate

MODEL = load_default_model()
SEEDS = [p.payload for p in generate(77, duration_s=200.0, rtp_packets=3).packets
         if p.payload[:3] in (b"INV", b"SIP", b"REG", b"BYE", b"OPT", b"req", b"reg")][:300]
SEEDS += [
    b"USSD 1 pw *100#", b"\x78\x56\x21\x43\x00", b"\x86\x70\x14\x13\x01",
    b"RECEIVE:1;id:a;pass:b;srcnum:1;msg:x", b"\r\n\r\n",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    base = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.integers(0, 3))
        if not base:
            break
        i = draw(st.integers(0, len(base) - 1))
        if op == 0:
            base[i] = draw(st.integers(0, 255))
        elif op == 1:
            del base[i:i + draw(st.integers(1, 40))]
        elif op == 2:
            base[i:i] = draw(st.binary(max_size=40))
        else:
            cut = draw(st.integers(0, len(base)))
            base = base[:cut]
    return bytes(base)


payloads = st.one_of(st.binary(max_size=600), mutated())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads)
def test_parsers_never_raise(p: bytes) -> None:
    parse_message(p)
    parse_message(p, stream=True)
    parse_sdp(p)
    parse_goip_sms(p)
    parse_dhcp(p)
    dns_query_name(p)
    hdr = rtp_header(p)
    if hdr is not None:
        RtpFlow(0.0, 0.0).add(1.0, hdr[0], hdr[1], hdr[2], hdr[3], len(p))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), payloads), max_size=8))
def test_tcp_reassembly_never_raises(segs: list[tuple[int, bytes]]) -> None:
    s = SipStream()
    for seq, p in segs:
        s.feed(seq, p)
    assert len(s.buf) <= s.max_buffer + 600


ports = st.sampled_from([53, 67, 68, 1920, 5060, 5062, 25, 44444, 56000, 39800, 10000, 4000])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(payloads, ports, ports, st.sampled_from([6, 17]),
                          st.integers(0, 2**32 - 1), st.integers(0, 255),
                          st.one_of(st.none(), st.binary(min_size=0, max_size=8))),
                max_size=25))
def test_stage_never_raises(items: list[tuple[bytes, int, int, int, int, int, bytes | None]]
                            ) -> None:
    det = IpPlaneDetector(DetectorSettings(eval_interval_s=1.0, min_activity=1),
                          model=MODEL)
    ts = 1000.0
    for p, sp, dp, proto, seq, flags, eth in items:
        ts += 0.7
        det.feed(Packet(ts, "10.0.0.1", "10.0.0.2", sp, dp, proto, p, tcp_seq=seq,
                        tcp_flags=flags, eth_src=eth))
        det.feed(Packet(ts, "10.0.0.2", "0.0.0.0", dp, sp, proto, p[::-1]))
        det.tick(ts)
    det.flush(ts + 1.0)
    assert det.counters()["internal_errors"] == 0
