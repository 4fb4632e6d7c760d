"""Our decoding agrees with Wireshark's on simulator captures.

Per frame: the 5-tuple (inner addresses for GTP-U) and TEID of every Packet we emit;
per flow: the packet count of the RTP we aggregate; per stream: tshark's
``-z rtp,streams`` (address, port, SSRC, packets); per SIP message: method, Call-ID
and User-Agent, parsed by the IP-plane SIP parser from our Packets (UDP datagrams
and reassembled TCP streams) against tshark's sip.* fields.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from drivers.capture.fastpcap import FastPcapSource
from edge.records import Packet, RtpBatch
from simulators.telecom.pcap import PcapSimConfig, simulate_pcap

FIELDS = ["frame.number", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "udp.srcport",
          "udp.dstport", "tcp.srcport", "tcp.dstport", "gtp.teid", "sip.Method",
          "sip.Call-ID", "sip.User-Agent", "sip.Status-Code"]


def tshark() -> str:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.fail("tshark is not installed (Debian package tshark); the test command "
                    "installs it")
    return exe


def tshark_fields(pcap: Path) -> dict[int, dict[str, list[str]]]:
    cmd = [tshark(), "-r", str(pcap), "-T", "fields", "-E", "separator=/t",
           "-E", "aggregator=|", "-E", "occurrence=a"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300).stdout
    rows: dict[int, dict[str, list[str]]] = {}
    for line in out.splitlines():
        cols = line.split("\t")
        cols += [""] * (len(FIELDS) - len(cols))
        row = {f: (c.split("|") if c else []) for f, c in zip(FIELDS, cols, strict=True)}
        rows[int(cols[0])] = row
    return rows


def inner_tuple(row: dict[str, list[str]]) -> tuple[Any, ...] | None:
    """(src, dst, sport, dport, proto, teid) as tshark sees the innermost packet."""
    src = (row["ipv6.src"] or row["ip.src"] or [None])[-1]
    dst = (row["ipv6.dst"] or row["ip.dst"] or [None])[-1]
    teid = int(row["gtp.teid"][0], 16) if row["gtp.teid"] else None
    if row["tcp.srcport"]:
        return (src, dst, int(row["tcp.srcport"][-1]), int(row["tcp.dstport"][-1]), 6, teid)
    if row["udp.srcport"]:
        ports = row["udp.srcport"], row["udp.dstport"]
        if teid is not None and len(ports[0]) < 2:  # GTP-U inner without UDP: not ours
            return None
        return (src, dst, int(ports[0][-1]), int(ports[1][-1]), 17, teid)
    return None


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tshark")
    cfg = PcapSimConfig(seed=11, duration_s=60, softphones=14, ipphones=3, pbx_trunks=1,
                        goip_plain=1, goip_masked=1, simbank_clients=1, lines=3,
                        gtp_share=0.4, tcp_share=0.6)
    simulate_pcap(cfg, d / "sim.pcap", d / "sim.truth.json")
    return d / "sim.pcap"


@pytest.fixture(scope="module")
def ours(capture: Path) -> list[Any]:
    return list(FastPcapSource(capture))


def test_packets_match_tshark_five_tuples(capture: Path, ours: list[Any]) -> None:
    rows = tshark_fields(capture)
    packets = [r for r in ours if type(r) is Packet]
    assert len(packets) > 300
    seen_frames = set()
    for p in packets:
        seen_frames.add(p.frame)
        want = inner_tuple(rows[p.frame])
        assert want == (p.src, p.dst, p.sport, p.dport, p.proto, p.teid), p.frame
    # every other frame tshark gives ports for is RTP we aggregated: counts per flow agree
    theirs: Counter[tuple[Any, ...]] = Counter()
    for num, row in rows.items():
        t = inner_tuple(row)
        if t is not None and num not in seen_frames:
            theirs[t[:4]] += 1
    mine: Counter[tuple[Any, ...]] = Counter()
    for b in ours:
        if type(b) is RtpBatch:
            mine[(b.src, b.dst, b.sport, b.dport)] += b.packets
    assert sum(mine.values()) > 5000
    assert mine == theirs
    assert any(p.teid is not None for p in packets)  # GTP-U was exercised
    assert any(p.proto == 6 and p.payload for p in packets)  # and SIP over TCP


def test_rtp_streams_match_tshark(capture: Path, ours: list[Any]) -> None:
    out = subprocess.run([tshark(), "-r", str(capture), "-q", "-z", "rtp,streams"],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    theirs = {}
    pat = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+(\S+)\s+(\d+)\s+(\S+)\s+(\d+)\s+(0x[0-9A-Fa-f]+)"
                     r"\s+.*?\s(\d+)\s+-?\d+\s+\(")
    for line in out.splitlines():
        m = pat.match(line)
        if m:
            theirs[(m[1], int(m[2]), m[3], int(m[4]), int(m[5], 16))] = int(m[6])
    mine: Counter[tuple[Any, ...]] = Counter()
    for b in ours:
        if type(b) is RtpBatch:
            mine[(b.src, b.sport, b.dst, b.dport, b.ssrc)] += b.packets
    assert len(theirs) >= 10
    assert dict(mine) == theirs


def test_sip_fields_match_tshark(capture: Path, ours: list[Any]) -> None:
    from edge.telecom.ipplane.sip import SipMessage, SipStream, looks_like_sip, parse_message

    rows = tshark_fields(capture)
    streams: dict[tuple[Any, ...], SipStream] = defaultdict(SipStream)
    mine: dict[int, list[SipMessage]] = defaultdict(list)
    for p in ours:
        if type(p) is not Packet:
            continue
        if p.proto == 6:
            for m in streams[(p.src, p.dst, p.sport, p.dport)].feed(p.tcp_seq, p.payload):
                mine[p.frame].append(m)
        elif looks_like_sip(p.payload):
            m, _ = parse_message(p.payload)
            if isinstance(m, SipMessage):
                mine[p.frame].append(m)
    theirs = {n: r for n, r in rows.items() if r["sip.Call-ID"]}
    assert len(theirs) > 150
    assert set(mine) == set(theirs)
    methods: Counter[str] = Counter()
    for n, row in theirs.items():
        msgs = mine[n]
        assert sorted(m.call_id for m in msgs) == sorted(row["sip.Call-ID"]), n
        assert [m.method for m in msgs if m.is_request] == row["sip.Method"], n
        uas = [m.headers["user-agent"] for m in msgs if "user-agent" in m.headers]
        assert uas == row["sip.User-Agent"], n
        methods.update(row["sip.Method"])
    assert {"INVITE", "ACK", "REGISTER", "BYE", "OPTIONS"} <= set(methods)
    # the capture exercised the hard cases: two messages in one TCP segment, compact
    # header forms, and UDP SIP reassembled from IP fragments
    assert any(len(r["sip.Call-ID"]) > 1 for r in theirs.values())
    pkts = {p.frame: p for p in ours if type(p) is Packet}
    assert any(b"\r\ni: " in pkts[n].payload for n in theirs)
    assert any(pkts[n].proto == 17 and len(pkts[n].payload) > 1500 for n in theirs)
