"""Our decoding agrees with Wireshark's on simulator captures and on real ones.

Per frame: the 5-tuple (inner addresses for GTP-U and every tunnel) and TEID of every
Packet we emit;
per flow: the packet count of the RTP we aggregate; per stream: tshark's
``-z rtp,streams`` (address, port, SSRC, packets); per SIP message: method, Call-ID
and User-Agent, parsed by the IP-plane SIP parser from our Packets (UDP datagrams,
reassembled TCP streams, SIP over WebSocket) against tshark's sip.* fields. The same
checks run on the simulator's capture wrapped in each encapsulation
(``simulators/telecom/pcap_encap.KINDS``) and on every real capture in
``../shared/captures/sip/``.
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
from simulators.telecom.pcap_encap import KINDS

FIELDS = ["frame.number", "frame.protocols", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "udp.srcport",
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
    layers = [x for x in (row["frame.protocols"] or [""])[0].split(":") if x in ("ip", "ipv6")]
    fam = "ipv6" if layers and layers[-1] == "ipv6" else "ip"
    src = (row[f"{fam}.src"] or [None])[-1]
    dst = (row[f"{fam}.dst"] or [None])[-1]
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
    cfg = PcapSimConfig(seed=12, duration_s=60, softphones=14, ipphones=3, pbx_trunks=1,
                        goip_plain=1, goip_masked=1, simbank_clients=1, lines=3,
                        gtp_share=0.4, tcp_share=0.6)
    simulate_pcap(cfg, d / "sim.pcap", d / "sim.truth.json")
    return d / "sim.pcap"


@pytest.fixture(scope="module")
def ours(capture: Path) -> list[Any]:
    return list(FastPcapSource(capture))


def check_five_tuples(capture: Path, ours: list[Any]) -> tuple[list[Packet], int]:
    """Every Packet's 5-tuple is tshark's innermost one; RTP counts per flow agree.
    Returns our Packets and the RTP packets aggregated."""
    rows = tshark_fields(capture)
    packets = [r for r in ours if type(r) is Packet]
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
    assert mine == theirs
    return packets, sum(mine.values())


def test_packets_match_tshark_five_tuples(capture: Path, ours: list[Any]) -> None:
    packets, rtp = check_five_tuples(capture, ours)
    assert len(packets) > 300
    assert rtp > 5000
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


def check_sip(capture: Path, ours: list[Any]) -> tuple[dict[int, dict[str, list[str]]],
                                                       Counter[str]]:
    """Per frame, the SIP messages we parse are tshark's (Call-ID, method, User-Agent).
    Returns tshark's rows with a Call-ID and the methods seen."""
    from edge.telecom.ipplane.sip import SipMessage, SipStream, looks_like_sip, parse_message
    from edge.telecom.ipplane.websocket import open_stream

    rows = tshark_fields(capture)
    streams: dict[tuple[Any, ...], SipStream | None] = {}
    mine: dict[int, list[SipMessage]] = defaultdict(list)
    for p in ours:
        if type(p) is not Packet:
            continue
        if p.proto == 6:
            key = (p.src, p.dst, p.sport, p.dport)
            if key not in streams and p.payload:
                streams[key] = open_stream(p.payload)
            st = streams.get(key)
            if st is None:
                continue
            for m in st.feed(p.tcp_seq, p.payload):
                mine[p.frame].append(m)
        elif looks_like_sip(p.payload):
            m, _ = parse_message(p.payload)
            if isinstance(m, SipMessage):
                mine[p.frame].append(m)
    theirs = {n: r for n, r in rows.items() if r["sip.Call-ID"]}
    assert set(mine) == set(theirs)
    methods: Counter[str] = Counter()
    for n, row in theirs.items():
        msgs = mine[n]
        assert sorted(m.call_id for m in msgs) == sorted(row["sip.Call-ID"]), n
        assert [m.method for m in msgs if m.is_request] == row["sip.Method"], n
        uas = [m.headers["user-agent"] for m in msgs if "user-agent" in m.headers]
        assert uas == row["sip.User-Agent"], n
        methods.update(row["sip.Method"])
    return theirs, methods


def test_sip_fields_match_tshark(capture: Path, ours: list[Any]) -> None:
    theirs, methods = check_sip(capture, ours)
    assert len(theirs) > 150
    assert {"INVITE", "ACK", "REGISTER", "BYE", "OPTIONS"} <= set(methods)
    # the capture exercised the hard cases: two messages in one TCP segment, compact
    # header forms, and UDP SIP reassembled from IP fragments
    assert any(len(r["sip.Call-ID"]) > 1 for r in theirs.values())
    pkts = {p.frame: p for p in ours if type(p) is Packet}
    assert any(b"\r\ni: " in pkts[n].payload for n in theirs)
    assert any(pkts[n].proto == 17 and len(pkts[n].payload) > 1500 for n in theirs)


@pytest.mark.parametrize("kind", KINDS)
def test_every_encapsulation_matches_tshark(tmp_path: Path, kind: str) -> None:
    cfg = PcapSimConfig(seed=13, duration_s=25, softphones=3, ipphones=1, pbx_trunks=1,
                        goip_plain=1, goip_masked=1, simbank_clients=0, lines=2,
                        gtp_share=0.5, tcp_share=0.5, ipv6_softphones=1, encap=kind)
    simulate_pcap(cfg, tmp_path / "sim.pcap")
    src = FastPcapSource(tmp_path / "sim.pcap")
    ours = list(src)
    packets, rtp = check_five_tuples(tmp_path / "sim.pcap", ours)
    theirs, methods = check_sip(tmp_path / "sim.pcap", ours)
    assert len(theirs) > 20 and "INVITE" in methods and rtp > 100
    c = src.counters()
    assert c["malformed"] == 0
    if kind != "qinq":  # a tag stack is no tunnel; every other kind names its layers
        assert all(p.tunnel for p in packets), kind
        assert sum(v for k, v in c.items() if k.startswith("tunnel.")) >= len(packets)
    if kind == "nested":
        assert any(p.teid is not None and p.tunnel.startswith("erspan2")
                   and "mpls(" in p.tunnel for p in packets if p.tunnel)


REAL = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "../shared/captures/sip"
                               ).glob("*.pcap*"))


@pytest.mark.parametrize("name", REAL)
def test_real_sip_captures_match_tshark(captures_dir: Path, name: str) -> None:
    src = FastPcapSource(captures_dir / "sip" / name)
    ours = list(src)
    check_five_tuples(captures_dir / "sip" / name, ours)
    theirs, methods = check_sip(captures_dir / "sip" / name, ours)
    assert len(theirs) >= 5 and "INVITE" in methods
    assert src.counters()["malformed"] == 0
    # the IP plane reads every one of those messages and raises nothing on these calls
    from edge.eval.ipplane import run_packets
    from edge.telecom.ipplane.detector import IpPlaneDetector, load_default_model

    det = IpPlaneDetector(model=load_default_model())
    assert run_packets(det, [r for r in ours if type(r) in (Packet, RtpBatch)]) == []
    c = det.counters()
    assert c["sip_messages"] == sum(len(r["sip.Call-ID"]) for r in theirs.values())
    assert c["internal_errors"] == 0


def test_the_real_captures_are_there() -> None:
    assert len(REAL) >= 7, REAL  # an empty glob would silently run no test above
