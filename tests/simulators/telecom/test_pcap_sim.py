"""The pcap simulator: seeded, labelled, and the personas behave as described."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from drivers.capture.fastpcap import FastPcapSource
from edge.cli.sim import main as sim_main
from edge.records import Packet, RtpBatch
from simulators.telecom.pcap import (
    FRAUD_SERVER,
    SIMBANK_SERVER,
    PcapSimConfig,
    simulate_pcap,
)

CFG = PcapSimConfig(seed=5, duration_s=180, softphones=6, ipphones=2, pbx_trunks=1,
                    goip_plain=2, goip_masked=2, simbank_clients=1, lines=4, gtp_share=0.5)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], list[Any]]:
    d = tmp_path_factory.mktemp("sim")
    res = simulate_pcap(CFG, d / "a.pcap", d / "a.truth.json")
    truth = json.loads((d / "a.truth.json").read_text())
    assert truth == json.loads(json.dumps(res.truth))
    return d / "a.pcap", truth, list(FastPcapSource(d / "a.pcap"))


def by_label(truth: dict[str, Any], label: str) -> list[dict[str, Any]]:
    return [e for e in truth["endpoints"] if e["label"] == label]


def sip_of(recs: list[Any]) -> list[tuple[Packet, Any]]:
    from edge.telecom.ipplane.sip import SipMessage, SipStream, parse_message

    out = []
    streams: dict[tuple[Any, ...], SipStream] = defaultdict(SipStream)
    for p in recs:
        if type(p) is not Packet:
            continue
        if p.proto == 6:
            for m in streams[(p.src, p.dst, p.sport, p.dport)].feed(p.tcp_seq, p.payload):
                out.append((p, m))
        else:
            m, _ = parse_message(p.payload)
            if isinstance(m, SipMessage):
                out.append((p, m))
    return out


def test_seeded_and_capped(tmp_path: Path) -> None:
    small = PcapSimConfig(seed=9, duration_s=30, softphones=2, ipphones=1, pbx_trunks=1,
                          goip_plain=1, goip_masked=1, simbank_clients=0, lines=2)
    simulate_pcap(small, tmp_path / "1.pcap")
    simulate_pcap(small, tmp_path / "2.pcap")
    assert (tmp_path / "1.pcap").read_bytes() == (tmp_path / "2.pcap").read_bytes()
    other = PcapSimConfig(**{**small.__dict__, "seed": 10})
    simulate_pcap(other, tmp_path / "3.pcap")
    assert (tmp_path / "1.pcap").read_bytes() != (tmp_path / "3.pcap").read_bytes()
    capped = PcapSimConfig(**{**small.__dict__, "max_packets": 1234})
    res = simulate_pcap(capped, tmp_path / "4.pcap", tmp_path / "4.truth.json")
    assert res.packets == 1234 and res.truth["truncated"] is True
    assert FastPcapSource(tmp_path / "4.pcap").records_read == 0  # lazily read
    src = FastPcapSource(tmp_path / "4.pcap")
    list(src)
    assert src.records_read == 1234


def test_truth_file(sim: tuple[Path, dict[str, Any], list[Any]]) -> None:
    _, truth, recs = sim
    assert truth["seed"] == 5 and truth["params"]["lines"] == 4
    pos = {e["ip"] for e in truth["endpoints"] if e["positive"]}
    assert {e["label"] for e in truth["endpoints"] if e["positive"]} == {
        "goip_plain", "goip_masked", "simbank_client"}
    assert len(pos) == 5
    seen = {p.src for p in recs if type(p) is Packet}
    assert pos <= seen  # labelled addresses are what the decoder reports (inner for GTP-U)
    gtp = {e["ip"] for e in truth["endpoints"] if e["gtp"]}
    assert gtp and all(p.teid is not None for p in recs
                       if type(p) is Packet and p.src in gtp)


def test_plain_goip_fingerprints(sim: tuple[Path, dict[str, Any], list[Any]]) -> None:
    _, truth, recs = sim
    plain = {e["ip"] for e in by_label(truth, "goip_plain")}
    msgs = [(p, m) for p, m in sip_of(recs) if p.src in plain]
    assert msgs and all(m.headers.get("user-agent") == "dble" for _, m in msgs
                        if m.is_request and m.method != "ACK")
    answers = [m.body for _, m in msgs if m.body]
    assert answers and all(b"s=DBL Session" in b and b"o=userX 20000001 20000001" in b
                           and re.search(rb"m=audio \d+ RTP/S?AVP 8 0 18 4 101", b)
                           for b in answers)
    payloads = [p.payload for p in recs if type(p) is Packet and p.src in plain]
    keep = [x for x in payloads if x.startswith(b"req:")]
    assert keep and all(re.match(rb"req:\d+;id:[^;]+;pass:[^;]*;num:[^;]*;signal:\d+;"
                                 rb"gsm_status:LOGIN;voip_status:[^;]+;.*imei:\d+;imsi:\d+;"
                                 rb"iccid:\d+;", x) for x in keep)
    replies = [p.payload for p in recs if type(p) is Packet and p.sport == 44444]
    assert replies and all(re.fullmatch(rb"reg:\d+;status:200;", r) for r in replies)
    ddns = [p for p in recs if type(p) is Packet and p.dport == 39800]
    assert ddns and all(p.sport == 56000 and p.payload[:4] == b"\x86\x70\x14\x13" for p in ddns)
    assert any(p.dport == 1920 and p.proto == 6 for p in recs if type(p) is Packet)
    wired = [e["ip"] for e in by_label(truth, "goip_plain") if not e["gtp"]]
    for ip in wired:
        macs = {p.eth_src[:3] for p in recs if type(p) is Packet and p.src == ip}
        assert macs == {bytes.fromhex("383f10")}


def test_masked_goip_behaviour_without_fingerprints(
        sim: tuple[Path, dict[str, Any], list[Any]]) -> None:
    _, truth, recs = sim
    masked = {e["ip"] for e in by_label(truth, "goip_masked") + by_label(truth, "simbank_client")}
    sip = sip_of(recs)
    for ip in masked:
        mine = [(p, m) for p, m in sip if ip in (p.src, p.dst)]
        assert not any(m.headers.get("user-agent") == "dble" or b"DBL Session" in m.body
                       for _, m in mine)
        regs = [(p, m) for p, m in mine if m.is_request and m.method == "REGISTER"]
        by_port: dict[int, list[float]] = defaultdict(list)
        for p, _ in regs:
            by_port[p.sport].append(p.ts)
        assert len(by_port) == CFG.lines  # several lines from one address
        for ts in by_port.values():
            # one registration (with its challenge retry, if challenged) every 30-180 s:
            # regular, but each box its own interval, with jitter, not a 60.0 s clock
            gaps = [b - a for a, b in zip(ts, ts[1:], strict=False) if b - a > 1.0]
            assert gaps and all(20.0 < g < 200.0 for g in gaps)
            assert len({round(g, 3) for g in gaps}) > 1 or len(gaps) == 1
        crlf = sorted(p.ts for p in recs if type(p) is Packet and p.src == ip
                      and p.payload == b"\r\n\r\n")
        assert len(crlf) >= CFG.lines * 2  # keepalives every 15-60 s, jittered
        invites = [p for p, m in mine if m.is_request and m.method == "INVITE"]
        inbound = [p for p in invites if p.src == FRAUD_SERVER and p.dst == ip]
        assert len(inbound) >= 0.7 * len(invites) and len(invites) >= 10
        callees = {m.uri.split("@")[0] for p, m in mine if m.is_request and m.method == "INVITE"}
        assert len(callees) == len(invites)  # every call to a different number
        media = [b for b in recs if type(b) is RtpBatch and ip in (b.src, b.dst)]
        assert media
    sb = by_label(truth, "simbank_client")[0]["ip"]
    bank = [p for p in recs if type(p) is Packet and p.src == sb and p.dst == SIMBANK_SERVER]
    assert bank and all(p.payload[:4] == b"\x78\x56\x21\x43" for p in bank)


def test_benign_personas_have_no_goip_signals(
        sim: tuple[Path, dict[str, Any], list[Any]]) -> None:
    _, truth, recs = sim
    benign = {e["ip"] for e in truth["endpoints"]
              if e["label"] in ("softphone", "ipphone", "pbx_trunk")}
    assert any(":" in ip for ip in benign)  # the IPv6 softphone
    for p in recs:
        if type(p) is Packet and p.src in benign:
            assert b"dble" not in p.payload and not p.payload.startswith(b"req:")
            assert p.dport not in (44444, 39800, 1920)


def test_cli_writes_pcap_and_truth(tmp_path: Path) -> None:
    out = tmp_path / "c.pcap"
    rc = sim_main(["pcap", "--seed", "2", "--duration", "20", "--softphones", "1",
                   "--ipphones", "1", "--pbx-trunks", "0", "--goip-plain", "1",
                   "--goip-masked", "0", "--simbank-clients", "0", "--lines", "2",
                   "--out", str(out)])
    assert rc == 0 and out.stat().st_size > 1000
    truth = json.loads((tmp_path / "c.truth.json").read_text())
    assert truth["seed"] == 2 and truth["counts"]["packets"] > 100
