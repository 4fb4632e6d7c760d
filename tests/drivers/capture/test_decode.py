"""The per-frame decoder on frames crafted with scapy (scapy builds, we decode)."""

from __future__ import annotations

import struct
from typing import Any

from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    fragment6,
)
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

from drivers.capture.decode import FrameDecoder
from edge.records import Malformed, Packet, RtpBatch

MAC = "38:3f:10:01:02:03"
SIP = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n"


def run(frames: list[tuple[int, bytes]], dec: FrameDecoder | None = None,
        t0: float = 1000.0, step: float = 0.001) -> list[Any]:
    dec = dec or FrameDecoder("t")
    out: list[Any] = []
    for i, (lt, data) in enumerate(frames):
        dec.decode(t0 + i * step, lt, data, i + 1, out)
    dec.flush(out)
    return out


def only_packet(out: list[Any]) -> Packet:
    pk = [r for r in out if type(r) is Packet]
    assert len(pk) == 1, out
    return pk[0]


def test_ethernet_ipv4_udp() -> None:
    f = Ether(src=MAC) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5060, dport=5062) / SIP
    p = only_packet(run([(1, bytes(f))]))
    assert (p.src, p.dst, p.sport, p.dport, p.proto) == ("10.0.0.1", "10.0.0.2", 5060, 5062, 17)
    assert p.payload == SIP and p.eth_src == bytes.fromhex("383f10010203") and p.teid is None
    assert p.frame == 1 and p.source == "t"


def test_qinq_and_padding() -> None:
    f = (Ether(src=MAC) / Dot1AD(vlan=20) / Dot1Q(vlan=100) / IP(src="1.1.1.1", dst="2.2.2.2")
         / UDP(sport=1000, dport=44444) / b"req:1;")
    p = only_packet(run([(1, bytes(f) + b"\x00" * 10)]))  # Ethernet trailer padding ignored
    assert (p.src, p.dport, p.payload) == ("1.1.1.1", 44444, b"req:1;")


def test_linux_cooked_sll_and_sll2() -> None:
    inner = IP(src="10.1.1.1", dst="10.1.1.2") / UDP(sport=5060, dport=5060) / SIP
    sll = CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6,
                      src=bytes.fromhex("383f10aabbcc") + b"\x00\x00") / inner
    sll2 = CookedLinuxV2(proto=0x0800, lladdrtype=1, lladdrlen=6, pkttype=0,
                         src=bytes.fromhex("383f10ddeeff") + b"\x00\x00") / inner
    p1 = only_packet(run([(113, bytes(sll))]))
    p2 = only_packet(run([(276, bytes(sll2))]))
    assert p1.eth_src == bytes.fromhex("383f10aabbcc") and p1.payload == SIP
    assert p2.eth_src == bytes.fromhex("383f10ddeeff") and p2.payload == SIP


def test_raw_ipv6_with_extension_headers() -> None:
    f = (IPv6(src="2001:db8:0:0::1", dst="2001:db8::0:2") / IPv6ExtHdrHopByHop()
         / IPv6ExtHdrDestOpt() / UDP(sport=5060, dport=5060) / SIP)
    p = only_packet(run([(101, bytes(f))]))
    assert (p.src, p.dst) == ("2001:db8::1", "2001:db8::2") and p.payload == SIP
    assert p.eth_src is None


def test_tcp_fields() -> None:
    f = (Ether() / IP(src="10.0.0.1", dst="10.0.0.2")
         / TCP(sport=40000, dport=5060, seq=123456, flags="PA") / SIP)
    syn = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=5060, flags="S")
    out = run([(1, bytes(syn)), (1, bytes(f))])
    pk = [r for r in out if type(r) is Packet]
    assert pk[0].payload == b"" and pk[0].tcp_flags == 0x02
    assert pk[1].tcp_seq == 123456 and pk[1].tcp_flags == 0x18 and pk[1].payload == SIP
    assert pk[1].proto == 6


def test_gtpu_decapsulation_with_extension_header() -> None:
    inner = IP(src="10.45.0.7", dst="198.51.100.20") / UDP(sport=5061, dport=5060) / SIP
    plain = (Ether(src=MAC) / IP(src="172.16.0.2", dst="172.16.1.1") / UDP(sport=2152, dport=2152)
             / GTP_U_Header(teid=0xCAFE) / inner)
    ext = (Ether() / IP(src="172.16.0.2", dst="172.16.1.1") / UDP(sport=2152, dport=2152)
           / GTP_U_Header(teid=0xBEEF, E=1, S=1, next_ex=0x85)
           / GTPPDUSessionContainer(type=1, QFI=5) / inner)
    for f, teid in ((plain, 0xCAFE), (ext, 0xBEEF)):
        p = only_packet(run([(1, bytes(f))]))
        assert (p.src, p.dst, p.sport, p.dport, p.teid) == ("10.45.0.7", "198.51.100.20", 5061,
                                                           5060, teid)
        assert p.payload == SIP


def test_gtp_echo_is_a_plain_packet() -> None:
    echo = Ether() / IP() / UDP(sport=2152, dport=2152) / GTP_U_Header(gtp_type=1, teid=0)
    p = only_packet(run([(1, bytes(echo))]))
    assert p.dport == 2152 and p.teid is None


def test_ipv4_fragments_out_of_order_and_duplicated() -> None:
    big = SIP + b"a=" + b"x" * 3000 + b"\r\n"
    frags = fragment(IP(src="10.0.0.1", dst="10.0.0.2", id=77) / UDP(sport=5060, dport=5060)
                     / big, fragsize=1000)
    assert len(frags) >= 3
    order = [frags[2], frags[0], frags[0], frags[1]] + frags[3:]
    dec = FrameDecoder("t")
    out = run([(1, bytes(Ether() / f)) for f in order], dec)
    p = only_packet(out)
    assert p.payload == big and p.frame == len(order)
    c = dec.counters()
    assert c["reassembled"] == 1 and c["frag_pending"] == 0


def test_ipv6_fragments() -> None:
    big = SIP + b"y" * 3000
    pkt = IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(id=5) / UDP(
        sport=5060, dport=5060) / big
    frags = fragment6(pkt, 1280)
    p = only_packet(run([(1, bytes(Ether() / f)) for f in frags]))
    assert p.payload == big and p.src == "2001:db8::1"


def test_fragment_table_is_bounded_and_evicts_idle() -> None:
    dec = FrameDecoder("t", max_fragments=3, fragment_timeout_s=5.0)
    frames = []
    for ident in range(10):  # ten first-halves that never complete
        f = fragment(IP(src="10.0.0.1", dst="10.0.0.2", id=ident) / UDP(sport=1, dport=2)
                     / (b"z" * 2000), fragsize=1000)[0]
        frames.append((1, bytes(Ether() / f)))
    out = run(frames, dec)
    assert not [r for r in out if type(r) is Packet]
    c = dec.counters()
    assert c["frag_pending"] == 3 and c["frag_evicted_full"] == 7
    dec.sweep(2000.0, out)
    assert dec.counters()["frag_pending"] == 0 and dec.counters()["frag_evicted_idle"] == 3


def rtp(seq: int, ts: int, ssrc: int = 0x1234, pt: int = 8) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + bytes(160)


def test_rtp_is_aggregated_per_flow_and_second() -> None:
    frames = []
    for k in range(120):  # 2.4 s of one stream, seq 50 lost
        if k == 50:
            continue
        f = (Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=10000, dport=20000)
             / rtp(65500 + k, 160 * k))
        frames.append((k, bytes(f)))
    dec = FrameDecoder("t")
    out: list[Any] = []
    for k, data in frames:
        dec.decode(1000.0 + k * 0.02, 1, data, k + 1, out)
    dec.flush(out)
    batches = [r for r in out if type(r) is RtpBatch]
    assert not [r for r in out if type(r) is Packet]
    assert [int(b.first_ts) for b in batches] == [1000, 1001, 1002]
    assert all(int(b.first_ts) == int(b.ts) for b in batches)
    assert sum(b.packets for b in batches) == 119 and sum(b.lost for b in batches) == 1
    assert sum(b.bytes for b in batches) == 119 * 172
    assert batches[0].seq_first == 65500 and batches[-1].seq_last == (65500 + 119) & 0xFFFF
    assert all(b.payload_type == 8 and b.ssrc == 0x1234 for b in batches)
    assert all(b.jitter_s < 1e-6 for b in batches)  # perfectly paced


def test_rtcp_and_service_ports_are_packets_not_media() -> None:
    rtcp = struct.pack("!BBHI", 0x80, 200, 6, 1) + bytes(20)
    ddns = b"\x86\x70\x14\x13\x01" + b"8MCDRM18047247"
    frames = [(1, bytes(Ether() / IP() / UDP(sport=10001, dport=20001) / rtcp)),
              (1, bytes(Ether() / IP() / UDP(sport=56000, dport=39800) / ddns))]
    out = run(frames)
    assert [type(r) for r in out] == [Packet, Packet]


def test_non_ip_is_counted_and_broken_headers_are_malformed() -> None:
    dec = FrameDecoder("t")
    good = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / b"x")
    frames = [(1, bytes(Ether() / ARP())), (1, good[:20]), (1, good[:14] + b"\x45" + good[15:30]),
              (1, good[:5]), (999, good), (101, b"\x70" + good[15:])]
    out = run(frames, dec)
    assert all(type(r) is Malformed for r in out) and len(out) == 4
    assert {r.position for r in out} == {"frame 2", "frame 3", "frame 4", "frame 6"}
    c = dec.counters()
    assert c["non_ip"] == 1 and c["unsupported_linktype"] == 1 and c["malformed"] == 4


def test_truncated_capture_keeps_what_is_there() -> None:
    f = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5060, dport=5060) / SIP)
    dec = FrameDecoder("t")
    p = only_packet(run([(1, f[:60])], dec))  # snaplen cut the payload
    assert p.payload == SIP[: 60 - 42] and dec.counters()["truncated"] == 1


def test_udp_payload_raw_layer_roundtrip() -> None:
    f = Ether() / IP(src="9.9.9.9", dst="8.8.8.8") / UDP(sport=53000, dport=53) / Raw(b"\x12\x34")
    p = only_packet(run([(1, bytes(f))]))
    assert p.payload == b"\x12\x34" and p.dport == 53


def test_ipv4_total_length_zero_from_segmentation_offload() -> None:
    f = bytearray(bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2")
                        / TCP(sport=5060, dport=40000, flags="PA") / SIP))
    f[16:18] = b"\x00\x00"  # what an outgoing TSO packet looks like in a local capture
    p = only_packet(run([(1, bytes(f))]))
    assert p.payload == SIP and p.proto == 6
