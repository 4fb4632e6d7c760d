"""SIP parsing: start lines, compact headers, Content-Length framing, TCP reassembly."""

from __future__ import annotations

from edge.telecom.ipplane.sip import (
    SipError,
    SipMessage,
    SipStream,
    looks_like_sip,
    parse_message,
    uri_aor,
    uri_user,
)

BODY = b"v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n" \
       b"m=audio 4000 RTP/AVP 0\r\n"
INVITE = (b"INVITE sip:+8613800138000@gw.example SIP/2.0\r\n"
          b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc\r\n"
          b"From: \"A\" <sip:alice@example.com>;tag=1928\r\n"
          b"To: <sip:+8613800138000@gw.example>\r\n"
          b"Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\n"
          b"Content-Type: application/sdp\r\n"
          b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
COMPACT = (b"REGISTER sip:reg.example SIP/2.0\r\n"
           b"v: SIP/2.0/UDP 10.0.0.2:5070;branch=z9hG4bK1\r\n"
           b"f: <sip:bob@reg.example>;tag=77\r\nt: <sip:bob@reg.example>\r\n"
           b"i: reg-1@10.0.0.2\r\nCSeq: 2 REGISTER\r\nm: <sip:bob@10.0.0.2:5070>\r\n"
           b"k: path\r\ns: hello\r\ne: gzip\r\nc: text/plain\r\nl: 0\r\n\r\n")
OK = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.2:5070;branch=z9hG4bK1\r\n"
      b"From: <sip:bob@reg.example>;tag=77\r\nTo: <sip:bob@reg.example>;tag=88\r\n"
      b"Call-ID: reg-1@10.0.0.2\r\nCSeq: 2 REGISTER\r\nContent-Length: 0\r\n\r\n")


def test_request_with_sdp_body() -> None:
    msg, used = parse_message(INVITE)
    assert isinstance(msg, SipMessage) and used == len(INVITE)
    assert msg.is_request and msg.method == "INVITE"
    assert msg.call_id == "a84b4c76e66710" and msg.cseq == (314159, "INVITE")
    assert msg.body == BODY
    assert uri_user(msg.uri) == "+8613800138000"
    assert uri_user(msg.headers["from"]) == "alice"


def test_compact_forms_are_expanded() -> None:
    msg, _ = parse_message(COMPACT)
    assert isinstance(msg, SipMessage)
    h = msg.headers
    for name in ("via", "from", "to", "call-id", "contact", "supported", "subject",
                 "content-encoding", "content-type", "content-length"):
        assert name in h, name
    assert uri_aor(h["to"]) == "bob@reg.example"
    assert h["content-type"] == "text/plain"


def test_response_takes_method_from_cseq() -> None:
    msg, _ = parse_message(OK)
    assert isinstance(msg, SipMessage)
    assert not msg.is_request and msg.status == 200 and msg.method == "REGISTER"


def test_udp_short_body_is_an_error_not_a_crash() -> None:
    msg, used = parse_message(INVITE[:-10])
    assert isinstance(msg, SipError) and used == len(INVITE) - 10


def test_bad_start_lines() -> None:
    for raw in (b"SIP/2.0 2x0 OK\r\n\r\n", b"INVITE\r\n\r\n", b"FOO sip:x SIP/2.0\r\n\r\n",
                b"INVITE sip:x HTTP/1.1\r\n\r\n"):
        msg, _ = parse_message(raw)
        assert isinstance(msg, SipError), raw


def test_precheck() -> None:
    assert looks_like_sip(INVITE) and looks_like_sip(OK)
    assert not looks_like_sip(b"\x80\x08\x00\x01") and not looks_like_sip(b"GET / HTTP/1.1")


def test_tcp_stream_several_messages_per_segment_and_split_messages() -> None:
    data = INVITE + OK + COMPACT
    st = SipStream()
    # one segment carrying three messages
    got = st.feed(1000, data)
    assert [m.method for m in got] == ["INVITE", "REGISTER", "REGISTER"]
    # the same bytes byte-split across many segments
    st = SipStream()
    seq = 5000
    got = []
    for i in range(0, len(data), 37):
        got += st.feed(seq + i, data[i:i + 37])
    assert [m.method for m in got] == ["INVITE", "REGISTER", "REGISTER"]
    assert got[0].body == BODY


def test_tcp_retransmission_and_gap() -> None:
    st = SipStream()
    half = len(INVITE) // 2
    assert st.feed(100, INVITE[:half]) == []
    assert st.feed(100, INVITE[:half]) == []  # retransmitted: trimmed
    got = st.feed(100 + half - 10, INVITE[half - 10:])  # overlapping retransmission
    assert len(got) == 1 and got[0].body == BODY
    # a lost segment: the partial message is dropped, the next message still parses
    seq = 100 + len(INVITE)
    assert st.feed(seq, OK[:20]) == []
    got = st.feed(seq + len(OK) + 500, COMPACT)
    assert st.gaps == 1 and [m.method for m in got] == ["REGISTER"]


def test_tcp_sequence_wraparound() -> None:
    st = SipStream()
    start = 0xFFFFFFFF - 20
    got = st.feed(start, OK[:40]) + st.feed((start + 40) & 0xFFFFFFFF, OK[40:])
    assert len(got) == 1 and got[0].status == 200
