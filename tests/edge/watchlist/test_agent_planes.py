"""Watchlist hits through the whole agent (assemble, sources, decoders, matcher,
response, reporter) on the IP plane (a real pcap file) and at the depot (a recorded
lane whose waybill export names a listed sender phone)."""

from __future__ import annotations

import struct
from pathlib import Path

from edge.assembly import assemble
from edge.config import parse_config
from edge.downlink.watchlist import WatchlistStore
from edge.pipeline import merge_by_time
from edge.report.pseudonym import Pseudonymiser
from edge.report.sinks import MemorySink
from tests.edge.courier.test_domain_replay import make_recording

KEY = "watchlist-agent-test-key-01"
P = Pseudonymiser(KEY.encode())


def _udp_frame(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    udp = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     bytes(int(x) for x in src.split(".")),
                     bytes(int(x) for x in dst.split(".")))
    return b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + b"\x08\x00" + ip + udp


def _pcap(path: Path, frames: list[tuple[float, bytes]]) -> None:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for ts, f in frames:
        out.append(struct.pack("<IIII", int(ts), int(ts % 1 * 1e6), len(f), len(f)) + f)
    path.write_bytes(b"".join(out))


def _agent(tmp: Path, entries: list[dict], inputs: dict[str, list[Path]]) -> list[dict]:
    WatchlistStore(tmp / "d").apply({"id": "w1", "version": 1, "type": "snapshot",
                                     "entries": entries}, now=1.6e9)
    cfg = parse_config(f'[agent]\nid = "a"\ndata_dir = "{tmp}/d"\n[privacy]\nkey = "{KEY}"\n'
                       f'[depot]\nparcels_out = "{tmp}/parcels.jsonl"\n')
    sink = MemorySink()
    agent = assemble(cfg, mode="replay", sinks=[sink], inputs=inputs)
    agent.pipeline.run(merge_by_time(agent.sources))
    agent.close()
    return sink.reports


def test_a_listed_sip_caller_and_address_in_a_capture(tmp_path: Path) -> None:
    t0 = 1.767225600e9
    invite = (b"INVITE sip:100@pbx SIP/2.0\r\nFrom: <sip:+8613800138000@gw>;tag=1\r\n"
              b"To: <sip:100@pbx>\r\nCall-ID: x1\r\nCSeq: 1 INVITE\r\n\r\n")
    _pcap(tmp_path / "c.pcap", [
        (t0, _udp_frame("10.0.0.5", "10.0.0.9", 5060, 5060, invite)),
        (t0 + 1, _udp_frame("203.0.113.77", "10.0.0.9", 40000, 9999, b"x" * 20)),
        (t0 + 2, _udp_frame("10.0.0.6", "10.0.0.9", 40001, 9999, b"y" * 20))])
    reports = _agent(tmp_path, [
        {"kind": "msisdn", "value": P.pseudonym("phone", "8613800138000"), "case": "C-1"},
        {"kind": "ip", "value": "203.0.113.0/24", "list": "c2"}],
        {"pcap": [tmp_path / "c.pcap"]})
    hits = [r for r in reports if r["kind"] == "watchlist.hit"]
    got = {(h["evidence"][0]["features"]["plane"], h["evidence"][0]["features"]["field"])
           for h in hits}
    assert got == {("ip", "sip"), ("ip", "src")}
    assert all(h["subject"]["pseudonymised"] for h in hits)
    # the default rules: block the address (dry-run), report the number
    actions = [r["evidence"][0]["features"] for r in reports if r["kind"] == "response.action"]
    assert [(a["action"], a["outcome"]) for a in actions] == [("block_ip", "dry_run")]


def test_a_listed_waybill_phone_at_the_depot_asks_for_a_divert(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    make_recording(folder, n=3)  # every waybill's sender phone is 13800000000
    reports = _agent(tmp_path, [{"kind": "waybill_phone", "value": "13800000000",
                                 "case": "C-9", "list": "fraud-senders"}],
                     {"depot": [folder]})
    hits = [r for r in reports if r["kind"] == "watchlist.hit"]
    assert hits and {h["evidence"][0]["features"]["plane"] for h in hits} == {"depot"}
    assert hits[0]["evidence"][0]["features"]["field"] == "sender_phone"
    assert hits[0]["route"] == ["police"]
    assert b"13800000000" not in repr(reports).encode()
    actions = [r["evidence"][0]["features"] for r in reports if r["kind"] == "response.action"]
    assert actions and {a["action"] for a in actions} == {"divert"}
