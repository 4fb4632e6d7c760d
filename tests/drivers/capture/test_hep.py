"""HEP v2/v3 decoding: round trips with the simulator's encoder, bad input counted."""

from __future__ import annotations

import threading
import time

from drivers.capture.hep import HepDecoder, HepListener
from edge.records import Malformed, Packet
from simulators.telecom.hep import RTCP, HepSender, hep2, hep3

INVITE = (b"INVITE sip:100@198.51.100.20 SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.1.1:5060;"
          b"branch=z9hG4bK1\r\nFrom: <sip:800@198.51.100.20>;tag=a\r\nTo: <sip:100@"
          b"198.51.100.20>\r\nCall-ID: c1@10.1.1.1\r\nCSeq: 1 INVITE\r\nContent-Length: 0"
          b"\r\n\r\n")


def test_v3_round_trip_keeps_addresses_time_and_agent() -> None:
    d = HepDecoder("hep:t")
    p = d.decode(hep3(1_700_000_000.123456, "10.1.1.1", "198.51.100.20", 5062, 5060,
                      INVITE, agent=42), "192.0.2.9", 1)
    assert isinstance(p, Packet)
    assert (p.ts, p.src, p.dst, p.sport, p.dport, p.proto, p.payload) == (
        1_700_000_000.123456, "10.1.1.1", "198.51.100.20", 5062, 5060, 17, INVITE)
    assert p.tunnel == "hep3(agent=42)@192.0.2.9"
    p6 = d.decode(hep3(5.5, "2001:db8::1", "2001:db8::2", 1, 2, INVITE, proto=6), "h", 2)
    assert isinstance(p6, Packet) and p6.src == "2001:db8::1" and p6.tunnel.endswith("/tcp")
    assert d.counters()["sip"] == 2 and d.counters()["hep_v3"] == 2


def test_v2_round_trip() -> None:
    d = HepDecoder("hep:t")
    for src, dst in (("10.1.1.1", "10.2.2.2"), ("2001:db8::1", "2001:db8::2")):
        p = d.decode(hep2(1_600_000_000.5, src, dst, 5060, 5070, INVITE, agent=7), "h", 1)
        assert isinstance(p, Packet)
        assert (p.ts, p.src, p.dst, p.payload, p.tunnel) == (1_600_000_000.5, src, dst,
                                                              INVITE, "hep2(agent=7)@h")


def test_rtcp_passes_and_json_rtcp_and_other_types_are_counted() -> None:
    d = HepDecoder("hep:t")
    sr = bytes([0x80, 200, 0, 6]) + bytes(24)
    assert isinstance(d.decode(hep3(1.0, "10.0.0.1", "10.0.0.2", 7001, 9001, sr,
                                    ptype=RTCP), "h", 1), Packet)
    assert d.decode(hep3(1.0, "10.0.0.1", "10.0.0.2", 1, 2, b'{"type":200}', ptype=RTCP),
                    "h", 2) is None
    assert d.decode(hep3(1.0, "10.0.0.1", "10.0.0.2", 1, 2, b"x", ptype=100), "h", 3) is None
    c = d.counters()
    assert c["rtcp"] == 1 and c["other_types"] == 2


def test_auth_key_is_enforced() -> None:
    d = HepDecoder("hep:t", auth_key="s3cret")
    ok = d.decode(hep3(1.0, "10.0.0.1", "10.0.0.2", 1, 2, INVITE, auth_key="s3cret"), "h", 1)
    bad = d.decode(hep3(1.0, "10.0.0.1", "10.0.0.2", 1, 2, INVITE, auth_key="guess"), "h", 2)
    none = d.decode(hep3(1.0, "10.0.0.1", "10.0.0.2", 1, 2, INVITE), "h", 3)
    assert isinstance(ok, Packet) and isinstance(bad, Malformed) and isinstance(none, Malformed)
    assert d.counters()["auth_refused"] == 2


def test_every_truncation_and_corruption_is_counted_never_raised() -> None:
    d = HepDecoder("hep:t")
    for whole in (hep3(1.0, "10.0.0.1", "10.0.0.2", 1, 2, INVITE),
                  hep2(1.0, "10.0.0.1", "10.0.0.2", 1, 2, INVITE)):
        for n in range(len(whole)):
            r = d.decode(whole[:n], "h", n)
            assert r is None or isinstance(r, Malformed | Packet)
        for i in range(0, len(whole), 3):  # flip bytes one at a time
            bad = bytearray(whole)
            bad[i] ^= 0xFF
            d.decode(bytes(bad), "h", i)
    assert isinstance(d.decode(b"HEP3\x00\x05", "h", 0), Malformed)
    assert isinstance(d.decode(b"\x09junk", "h", 0), Malformed)
    bad_time = hep3(4.2e9, "10.0.0.1", "10.0.0.2", 1, 2, INVITE)
    assert isinstance(d.decode(bad_time, "h", 0), Malformed)
    assert d.counters()["malformed"] > 50


def test_listener_receives_datagrams_on_loopback() -> None:
    lst = HepListener("127.0.0.1", 0, timeout_s=0.05)
    port = lst.address[1]
    recs: list[object] = []
    t = threading.Thread(target=lambda: recs.extend(lst), daemon=True)
    t.start()
    tx = HepSender("127.0.0.1", port)
    for i in range(20):
        tx.send(hep3(1000.0 + i, "10.0.0.1", "10.0.0.2", 5060, 5060, INVITE))
    tx.send(b"garbage")
    deadline = time.monotonic() + 5
    while len(recs) < 21 and time.monotonic() < deadline:
        time.sleep(0.02)
    lst.close()
    t.join(2)
    tx.close()
    assert [r.ts for r in recs if isinstance(r, Packet)] == [1000.0 + i for i in range(20)]
    assert sum(isinstance(r, Malformed) for r in recs) == 1
    assert not t.is_alive()
