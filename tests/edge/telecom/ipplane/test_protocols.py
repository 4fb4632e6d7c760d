"""SDP, RTP statistics, the GoIP SMS-server protocol, DHCP/DNS, dialogs, signatures."""

from __future__ import annotations

import struct

import pytest

from edge.errors import ConfigError
from edge.telecom.ipplane.dhcp_dns import dns_query_name, parse_dhcp
from edge.telecom.ipplane.dialogs import CallEvent, DialogTable, MediaEvent, RegisterEvent
from edge.telecom.ipplane.goip_sms import parse_goip_sms
from edge.telecom.ipplane.rtp import RtpFlow, rtp_header
from edge.telecom.ipplane.sdp import parse_sdp
from edge.telecom.ipplane.signatures import load_signatures
from edge.telecom.ipplane.sip import SipMessage, parse_message

GOIP_SDP = (b"v=0\r\no=user1 20000001 20000001 IN IP4 10.64.0.9\r\ns=DBL Session\r\n"
            b"c=IN IP4 10.64.0.9\r\nt=0 0\r\nm=audio 10000 RTP/AVP 8 0 18 4 101\r\n"
            b"a=rtpmap:8 PCMA/8000\r\n")


def test_sdp_media_and_connection() -> None:
    sdp = parse_sdp(GOIP_SDP)
    assert sdp is not None and sdp.session == "DBL Session"
    assert sdp.origin.startswith("user1 20000001")
    (m,) = sdp.media
    assert (m.media, m.port, m.proto, m.addr) == ("audio", 10000, "RTP/AVP", "10.64.0.9")
    assert m.formats == ("8", "0", "18", "4", "101")
    # media-level c= overrides the session one
    two = parse_sdp(b"v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 5000 RTP/AVP 0\r\n"
                    b"c=IN IP4 2.2.2.2\r\nm=video 0 RTP/AVP 96\r\n")
    assert two is not None and two.media[0].addr == "2.2.2.2"
    assert parse_sdp(b"hello") is None


def _rtp(seq: int, ts: int, pt: int = 8, ssrc: int = 7) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + b"\0" * 160


def test_rtp_loss_and_rfc3550_jitter() -> None:
    f = RtpFlow(0.0, 0.0)
    # perfectly paced stream: zero jitter; two packets lost
    for i in range(100):
        if i in (10, 11):
            continue
        pt, seq, ts, ssrc = rtp_header(_rtp(65500 + i, 160 * i))  # type: ignore[misc]
        f.add(0.02 * i, pt, seq, ts, ssrc, 172)
    assert f.packets == 98 and f.expected == 100 and f.lost == 2
    assert f.jitter_ms == pytest.approx(0.0, abs=1e-6)
    assert f.mean_gap_ms == pytest.approx(20.0 * 99 / 97, rel=1e-6)
    # alternate +-2 ms arrival offsets: |D| = 4 ms each, J converges towards 4 ms
    g = RtpFlow(0.0, 0.0)
    for i in range(400):
        off = 0.002 if i % 2 else -0.002
        g.add(0.02 * i + off, 8, i, 160 * i, 9, 172)
    assert g.jitter_ms == pytest.approx(4.0, rel=0.01)


def test_rtp_header_rejects_rtcp_and_non_v2() -> None:
    assert rtp_header(b"\x80\xc8" + b"\0" * 30) is None  # RTCP SR
    assert rtp_header(b"\x40\x08" + b"\0" * 30) is None
    assert rtp_header(b"\x80\x08") is None


def test_goip_sms_protocol_forms() -> None:
    ka = parse_goip_sms(b"req:10;id:goipid1;pass:password1;num:12345;signal:23;"
                        b"gsm_status:LOGIN;voip_status:LOGIN;imei:867;imsi:460;iccid:898;")
    assert ka is not None and ka.kind == "keepalive" and ka.fields["id"] == "goipid1"
    ack = parse_goip_sms(b"reg:10;status:0;")
    assert ack is not None and ack.kind == "keepalive_ack"
    rec = parse_goip_sms(b"RECEIVE:1270197307;id:goipid1;pass:password1;"
                         b"srcnum:+8613513415667;msg:just a test")
    assert rec is not None and rec.kind == "report" and rec.verb == "RECEIVE"
    for raw in (b"DELIVER:5;id:g1;password:p;sms_no:3;state:1;num:100;",
                b"STATE:7568;id:goip1;password:password1;gsm_remain_state:IDLE"):
        m = parse_goip_sms(raw)
        assert m is not None and m.kind == "report", raw
    assert parse_goip_sms(b"RECEIVE 1270197307 OK").kind == "report_ack"  # type: ignore[union-attr]
    for raw in (b"MSG 11 5 hello\n", b"USSD 111 password1 *150*5#", b"get_imei 5 pw",
                b"set_imei 6 867000000000001 pw", b"svr_reboot_dev 9 pw"):
        m = parse_goip_sms(raw)
        assert m is not None and m.kind == "command", raw
    for raw in (b"SEND 11 1 +8613800138000\n", b"OK 11 1\n", b"DONE 11 \n"):
        m = parse_goip_sms(raw)
        assert m is not None and m.kind == "reply", raw
    for raw in (b"request: hi", b"MSG hello", b"req:abc;", b"OK computer", b""):
        assert parse_goip_sms(raw) is None, raw


def _dhcp(op: int, chaddr: bytes, yiaddr: bytes, opts: bytes) -> bytes:
    p = bytearray(240)
    p[0], p[1], p[2] = op, 1, 6
    p[16:20] = yiaddr
    p[28:34] = chaddr
    p[236:240] = b"\x63\x82\x53\x63"
    return bytes(p) + opts + b"\xff"


def test_dhcp_and_dns() -> None:
    mac = bytes.fromhex("383f1005d79d")
    d = parse_dhcp(_dhcp(1, mac, b"\0\0\0\0", b"\x35\x01\x01\x3c\x03dbl"))
    assert d is not None and d.vendor_class == b"dbl" and d.msg_type == 1 and d.chaddr == mac
    assert parse_dhcp(b"\x01" * 100) is None
    assert parse_dhcp(_dhcp(1, mac, b"\0\0\0\0", b"\x3c\x09dbl")) is None  # option overruns
    q = b"\x67\xc6\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x05gontp\x03com\x00\x00\x01\x00\x01"
    assert dns_query_name(q) == "www.gontp.com"
    assert dns_query_name(q[:2] + b"\x81\x80" + q[4:]) is None  # a response


def _msg(raw: bytes) -> SipMessage:
    m, _ = parse_message(raw)
    assert isinstance(m, SipMessage)
    return m


def test_dialog_lifecycle_and_media() -> None:
    body = GOIP_SDP
    inv = (b"INVITE sip:13800138000@10.64.0.9 SIP/2.0\r\nFrom: <sip:x@1.2.3.4>;tag=a\r\n"
           b"To: <sip:13800138000@10.64.0.9>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n"
           b"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    ok = (b"SIP/2.0 200 OK\r\nFrom: <sip:x@1.2.3.4>;tag=a\r\nTo: <sip:1@h>;tag=b\r\n"
          b"Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    bye = (b"BYE sip:x@1.2.3.4 SIP/2.0\r\nFrom: <sip:1@h>;tag=b\r\nTo: <sip:x@1.2.3.4>;tag=a\r\n"
           b"Call-ID: c1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
    t = DialogTable(max_dialogs=10)
    ev = t.on_message(_msg(inv), "1.2.3.4", "10.64.0.9", 100.0)
    assert isinstance(ev[0], CallEvent) and ev[0].kind == "start"
    assert ev[0].dialog.to_user == "13800138000"
    assert any(isinstance(e, MediaEvent) and e.port == 10000 for e in ev)
    assert t.on_message(_msg(inv), "1.2.3.4", "10.64.0.9", 100.5) == []  # retransmission
    ev = t.on_message(_msg(ok), "10.64.0.9", "1.2.3.4", 105.0)
    assert [e.kind for e in ev if isinstance(e, CallEvent)] == ["answer"]
    ev = t.on_message(_msg(bye), "10.64.0.9", "1.2.3.4", 165.0)
    assert ev[0].kind == "end" and ev[0].dialog.duration == pytest.approx(60.0)  # type: ignore[union-attr]
    assert t.expire(300.0) == [] and not t.dialogs


def test_dialog_table_is_bounded_and_counts() -> None:
    t = DialogTable(max_dialogs=3)
    for i in range(10):
        raw = (b"INVITE sip:%d@h SIP/2.0\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:%d@h>\r\n"
               b"Call-ID: k%d\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n" % (i, i, i))
        t.on_message(_msg(raw), "1.1.1.1", "2.2.2.2", float(i))
    assert len(t.dialogs) == 3 and t.evicted_full == 7
    ev = t.expire(10_000.0)
    assert len(ev) == 3 and t.evicted_timeout == 3 and not t.dialogs


def test_register_retransmission_is_one_event() -> None:
    raw = (b"REGISTER sip:r SIP/2.0\r\nFrom: <sip:u1@r>;tag=1\r\nTo: <sip:u1@r>\r\n"
           b"Call-ID: r1\r\nCSeq: 5 REGISTER\r\nExpires: 120\r\nContent-Length: 0\r\n\r\n")
    t = DialogTable()
    e1 = t.on_message(_msg(raw), "10.0.0.1", "10.0.0.2", 1.0)
    e2 = t.on_message(_msg(raw), "10.0.0.1", "10.0.0.2", 1.5)
    assert isinstance(e1[0], RegisterEvent) and e1[0].aor == "u1@r" and e1[0].expires == 120
    assert e2 == []


def test_signature_file_is_versioned_data(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = load_signatures()
    assert s.version and s.report_weight > 0
    ids = set(s.by_id)
    for needed in ("sip_ua_dble", "sip_ua_hybertone", "sdp_dbl_session", "sdp_goip_origin",
                   "sdp_goip_media", "sip_x_acrypt", "goip_sms_protocol", "simbank_magic",
                   "goip_ddns", "dbl_mac_oui", "dhcp_vendor_dbl", "dns_gontp",
                   "goip_admin_port"):
        assert needed in ids
    bad = tmp_path / "s.toml"
    bad.write_text('version = "1"\n[[signature]]\nid = "x"\nkind = "nope"\n')
    with pytest.raises(ConfigError, match="unknown kind"):
        load_signatures(bad)
    bad.write_text('[[signature]]\nid = "x"\nkind = "mac_oui"\npattern = "zz"\n')
    with pytest.raises(ConfigError, match="version"):
        load_signatures(bad)
