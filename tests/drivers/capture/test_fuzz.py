"""Random and mutated frames and files never raise out of the decoders."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.contrib.gtp import GTP_U_Header
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import CookedLinux, Dot1Q, Ether

from drivers.capture.batch import find_rtp, rtp_groups
from drivers.capture.decode import FrameDecoder
from drivers.capture.fastpcap import FastPcapSource
from edge.errors import InputError
from edge.records import Malformed, Packet, RtpBatch

LINKTYPES = [0, 1, 12, 101, 108, 113, 228, 229, 276, 147]
RTP = struct.pack("!BBHII", 0x80, 8, 1, 160, 7) + bytes(160)
SEEDS = [
    bytes(Ether() / IP(src="1.2.3.4", dst="5.6.7.8") / UDP(sport=5060, dport=5060) / b"INVITE x"),
    bytes(Ether() / Dot1Q(vlan=5) / IP() / TCP(sport=1, dport=5060, flags="PA") / b"SIP/2.0 200"),
    bytes(Ether() / IP() / UDP(sport=2152, dport=2152) / GTP_U_Header(teid=9)
          / IP(src="10.0.0.1") / UDP(sport=4000, dport=4002) / RTP),
    bytes(Ether() / IP() / UDP(sport=20000, dport=30000) / RTP),
    bytes(Ether() / IPv6() / IPv6ExtHdrHopByHop() / UDP(sport=5060, dport=5060) / b"REGISTER"),
    bytes(Ether() / IPv6() / IPv6ExtHdrFragment(m=1, id=3) / UDP() / (b"q" * 64)),
    bytes(CookedLinux(lladdrlen=6) / IP() / UDP(sport=44444, dport=1) / b"reg:1;status:200;"),
    *[bytes(Ether() / f) for f in fragment(IP(id=4) / UDP() / (b"w" * 3000), fragsize=1000)],
]
SEED_LT = [1, 1, 1, 1, 1, 1, 113] + [1] * (len(SEEDS) - 7)
OK_TYPES = (Packet, RtpBatch, Malformed)


def decode_all(frames: list[tuple[int, bytes]], ts_step: float = 0.01) -> list[Any]:
    dec = FrameDecoder("fuzz", max_fragments=8, max_rtp_flows=8)
    out: list[Any] = []
    for i, (lt, data) in enumerate(frames):
        dec.decode(100.0 + i * ts_step, lt, data, i + 1, out)
    dec.flush(out)
    assert all(type(r) in OK_TYPES for r in out)
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(LINKTYPES), st.binary(max_size=200)), max_size=20))
def test_random_frames_never_raise(frames: list[tuple[int, bytes]]) -> None:
    decode_all(frames)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[int, bytes]:
    i = draw(st.integers(0, len(SEEDS) - 1))
    data = bytearray(SEEDS[i])
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "set"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            data = data[:pos]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            data[pos] = draw(st.sampled_from([0, 0xFF, 0x45, 0x60, 0x81, 0x86]))
    return SEED_LT[i], bytes(data)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated(), min_size=1, max_size=12))
def test_mutated_frames_never_raise(frames: list[tuple[int, bytes]]) -> None:
    decode_all(frames)


@settings(max_examples=300, deadline=None)
@given(st.lists(mutated(), min_size=1, max_size=40))
def test_numpy_classifier_never_raises_and_agrees(frames: list[tuple[int, bytes]]) -> None:
    """find_rtp over mutated frames: no exception, and only frames the per-frame path
    would call RTP are selected."""
    buf = b"".join(d for _, d in frames)
    off = np.cumsum([0] + [len(d) for _, d in frames[:-1]]).astype(np.int64)
    cap = np.array([len(d) for _, d in frames], dtype=np.int64)
    raw = np.frombuffer(buf, dtype=np.uint8) if buf else np.zeros(1, dtype=np.uint8)
    f = find_rtp(raw, off, cap, 1)
    assert f is not None
    for i in f.sel.tolist():
        dec = FrameDecoder("one")
        out: list[Any] = []
        dec.decode_frame(1.0, 1, frames[i][1], 1, out)
        assert not out and dec.rtp.packets == 1  # went to the RTP aggregator
    if len(f.sel):
        rtp_groups(f, np.arange(len(f.sel), dtype=np.float64))


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=600), st.sampled_from([b"\xd4\xc3\xb2\xa1", b"\x0a\x0d\x0d\x0a"]))
def test_random_files_never_raise(tmp_path_factory: Any, body: bytes, magic: bytes) -> None:
    p: Path = tmp_path_factory.mktemp("fz") / "f.pcap"
    p.write_bytes(magic + body)
    try:
        recs = list(FastPcapSource(p, dense_min=2))
    except InputError:
        return  # a file header too short to be a capture at all
    assert all(type(r) in OK_TYPES for r in recs)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2000), st.integers(0, 255))
def test_corrupted_real_file_never_raises(tmp_path_factory: Any, pos: int, byte: int) -> None:
    recs_data = b"".join(struct.pack("<IIII", 100 + i, 0, len(d), len(d)) + d
                         for i, d in enumerate(SEEDS * 3))
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    data = bytearray(head + recs_data)
    data[24 + pos % len(recs_data)] = byte
    p: Path = tmp_path_factory.mktemp("fz") / "c.pcap"
    p.write_bytes(bytes(data))
    recs = list(FastPcapSource(p, dense_min=2))
    assert all(type(r) in OK_TYPES for r in recs)
