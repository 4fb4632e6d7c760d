"""Watchlist hits on every input: call plane, IP plane (addresses, SIP, GoIP, DNS, TLS,
HTTP) and the depot's waybills; bad payloads never raise."""

from __future__ import annotations

import struct
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.courier.records import Parcel, Waybill
from edge.downlink.watchlist import WatchlistStore
from edge.records import BaseStationEvent, Packet
from edge.report.pseudonym import Pseudonymiser
from edge.watchlist import extract
from edge.watchlist.matcher import WatchlistMatcher

P = Pseudonymiser(b"site-key-for-watchlist-tests")
T = 1_767_225_600.0


def _matcher(tmp: Path) -> WatchlistMatcher:
    store = WatchlistStore(tmp, check_s=0.0)
    store.apply({"id": "w1", "version": 1, "type": "snapshot", "entries": [
        {"kind": "msisdn", "value": "8613800138000", "case": "C-1"},
        {"kind": "imsi", "value": P.pseudonym("imsi", "460001234567890")},
        {"kind": "iccid", "value": "89860012345678901234"},
        {"kind": "ip", "value": "203.0.113.0/24", "list": "c2"},
        {"kind": "domain", "value": "scam.example"},
        {"kind": "url", "value": "http://phish.example/login"},
        {"kind": "sender_id", "value": "330100199001011234"}]}, now=T)
    return WatchlistMatcher(store, P, realert_s=60)


def _pkt(payload: bytes, src: str = "10.0.0.5", dst: str = "10.0.0.9", sport: int = 5060,
         dport: int = 5060, proto: int = 17) -> Packet:
    return Packet(T, src, dst, sport, dport, proto, payload)


def _dns(name: str) -> bytes:
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + q + b"\0\x01\0\x01"


def _client_hello(sni: str) -> bytes:
    name = sni.encode()
    ext = struct.pack(">HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + \
        struct.pack(">H", len(ext)) + ext
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


def test_hits_on_every_plane(tmp_path: Path) -> None:
    m = _matcher(tmp_path)
    hits = []
    hits += m.feed(BaseStationEvent(T, "call_start", "460001234567890", dir="mo",
                                    peer="8613912345678"))
    hits += m.feed(_pkt(b"INVITE sip:100@pbx SIP/2.0\r\nFrom: <sip:+8613800138000@gw>;tag=1"
                        b"\r\nTo: <sip:100@pbx>\r\n\r\n"))
    hits += m.feed(_pkt(b"req:12;id:g1;pass:x;num:555;signal:20;imsi:460009999999999;"
                        b"iccid:89860012345678901234;imei:86000000000001;", sport=44444,
                        dport=44444))
    hits += m.feed(_pkt(_dns("www.scam.example"), sport=40000, dport=53))
    hits += m.feed(_pkt(_client_hello("api.scam.example"), sport=40001, dport=443, proto=6,
                        dst="198.51.100.1"))
    hits += m.feed(_pkt(b"GET /login HTTP/1.1\r\nHost: phish.example\r\n\r\n", sport=40002,
                        dport=80, proto=6, dst="198.51.100.2"))
    hits += m.feed(_pkt(b"", src="203.0.113.77", sport=1, dport=2))
    parcel = Parcel(T, "L1", 7, "SF1234567890123",
                    Waybill("SF1234567890123", sender_id="330100199001011234",
                            receiver_phone="+86 138 0013 8000"),
                    1.0, (10.0, 10.0, 10.0), None, (), None, (), (), None)
    hits += m.feed(parcel)
    got = {(h.evidence[0].features["plane"], h.evidence[0].features["kind"],
            str(h.evidence[0].features["field"])) for h in hits}
    assert got == {("call", "imsi", "imsi"), ("ip", "msisdn", "sip"),
                   ("ip", "iccid", "goip_keepalive"), ("ip", "domain", "dns"),
                   ("ip", "domain", "tls_sni"), ("ip", "url", "http"), ("ip", "ip", "src"),
                   ("depot", "msisdn", "receiver_phone"), ("depot", "sender_id", "sender_id")}
    for h in hits:
        assert h.kind == "watchlist.hit" and h.ts == T  # at the record that carried it
    # the same identifier again within realert_s: counted, not reported twice
    assert m.feed(_pkt(b"", src="203.0.113.77", sport=1, dport=2)) == []
    assert m.counters()["suppressed"] == 1


def test_empty_list_costs_one_lookup(tmp_path: Path) -> None:
    m = WatchlistMatcher(WatchlistStore(tmp_path), P)
    assert m.feed(_pkt(b"INVITE sip:x SIP/2.0\r\n")) == () and m.counters()["checked"] == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_extractors_never_raise(data: bytes) -> None:
    for prefix in (b"", b"INVITE ", b"req:", b"\x16\x03\x01", b"GET / HTTP/1.1\r\n"):
        p = prefix + data
        extract.sip_numbers(p)
        extract.goip_ids(p)
        extract.dns_qname(p)
        extract.tls_sni(p)
        extract.http_url(p)
