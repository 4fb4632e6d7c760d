"""SIP, SDP and GoIP-side protocol messages as bytes, for the pcap simulator.

Plain string formatting, no scapy: a dialog object remembers the headers a response
must echo. ``compact`` switches to RFC 3261 compact header names (v, f, t, i, m, l,
c). The GoIP SDP reproduces the fingerprints listed in domain.md.
"""

from __future__ import annotations

from dataclasses import dataclass

COMPACT = {"Via": "v", "From": "f", "To": "t", "Call-ID": "i", "Contact": "m",
           "Content-Length": "l", "Content-Type": "c"}

REASONS = {100: "Trying", 180: "Ringing", 200: "OK", 401: "Unauthorized",
           480: "Temporarily Unavailable", 486: "Busy Here", 487: "Request Terminated"}


def render(start: str, headers: list[tuple[str, str]], body: bytes = b"", *,
           compact: bool = False) -> bytes:
    """A SIP message: start line, headers (Content-Length added), blank line, body."""
    lines = [start]
    for name, value in headers:
        lines.append(f"{COMPACT.get(name, name) if compact else name}: {value}")
    lines.append(f"{'l' if compact else 'Content-Length'}: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass(slots=True)
class Party:
    """One side of a SIP exchange: address, port, transport and how it writes SIP."""

    ip: str
    port: int
    user: str
    transport: str = "UDP"
    user_agent: str | None = None
    compact: bool = False
    server: bool = False  # a server writes "Server:" instead of "User-Agent:"
    extra: tuple[tuple[str, str], ...] = ()

    def host(self) -> str:
        return f"[{self.ip}]" if ":" in self.ip else self.ip

    def uri(self, user: str | None = None) -> str:
        return f"sip:{user or self.user}@{self.host()}:{self.port}"

    def ua_header(self) -> list[tuple[str, str]]:
        if not self.user_agent:
            return []
        return [("Server" if self.server else "User-Agent", self.user_agent)]


@dataclass(slots=True)
class Request:
    """What a request carried that its responses must copy."""

    method: str
    via: str
    from_: str
    to: str
    call_id: str
    cseq: str
    data: bytes


def request(method: str, ruri: str, src: Party, to_uri: str, *, call_id: str, cseq: int,
            branch: str, from_tag: str, to_tag: str | None = None,
            body: bytes = b"", content_type: str = "application/sdp",
            extra: tuple[tuple[str, str], ...] = (), expires: int | None = None) -> Request:
    via = f"SIP/2.0/{src.transport} {src.host()}:{src.port};branch=z9hG4bK{branch};rport"
    frm = f"<{src.uri()}>;tag={from_tag}"
    to = f"<{to_uri}>" + (f";tag={to_tag}" if to_tag else "")
    cs = f"{cseq} {method}"
    hdrs = [("Via", via), ("Max-Forwards", "70"), ("From", frm), ("To", to),
            ("Call-ID", call_id), ("CSeq", cs), ("Contact", f"<{src.uri()}>")]
    hdrs += src.ua_header()
    if expires is not None:
        hdrs.append(("Expires", str(expires)))
    hdrs += list(src.extra) + list(extra)
    if body:
        hdrs.append(("Content-Type", content_type))
    data = render(f"{method} {ruri} SIP/2.0", hdrs, body, compact=src.compact)
    return Request(method, via, frm, to, call_id, cs, data)


def response(req: Request, code: int, src: Party, *, to_tag: str | None = None,
             body: bytes = b"", extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A response from ``src`` to ``req`` (echoing Via, From, To, Call-ID, CSeq)."""
    to = req.to if (to_tag is None or ";tag=" in req.to) else f"{req.to};tag={to_tag}"
    hdrs = [("Via", req.via), ("From", req.from_), ("To", to), ("Call-ID", req.call_id),
            ("CSeq", req.cseq)]
    if code < 300 and req.method in ("INVITE", "REGISTER", "OPTIONS"):
        hdrs.append(("Contact", f"<{src.uri()}>"))
    hdrs += src.ua_header() + list(extra)
    if body:
        hdrs.append(("Content-Type", "application/sdp"))
    return render(f"SIP/2.0 {code} {REASONS.get(code, 'Unknown')}", hdrs, body,
                  compact=src.compact)


def sdp(style: str, ip: str, port: int, sess: int, *, savp: bool = False,
        name: str = "-", ice: int = 0) -> bytes:
    """An SDP offer/answer. ``style`` "goip" gives the DBL fingerprints, else ordinary."""
    fam = "IP6" if ":" in ip else "IP4"
    proto = "RTP/SAVP" if savp else "RTP/AVP"
    if style == "goip":
        lines = ["v=0", f"o=userX 20000001 20000001 IN {fam} {ip}", "s=DBL Session",
                 f"c=IN {fam} {ip}", "t=0 0", f"m=audio {port} {proto} 8 0 18 4 101",
                 "a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000", "a=rtpmap:18 G729/8000",
                 "a=rtpmap:4 G723/8000", "a=rtpmap:101 telephone-event/8000",
                 "a=fmtp:101 0-15", "a=ptime:20", "a=sendrecv"]
    else:
        lines = ["v=0", f"o=- {sess} {sess} IN {fam} {ip}", f"s={name}", f"c=IN {fam} {ip}",
                 "t=0 0", f"m=audio {port} {proto} 8 0 101", "a=rtpmap:8 PCMA/8000",
                 "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000",
                 "a=fmtp:101 0-16", "a=ptime:20", "a=sendrecv"]
        if ice:  # ICE candidates make offers big enough to be IP-fragmented
            lines.append(f"a=ice-ufrag:{sess % 99991:x}")
            lines.append(f"a=ice-pwd:{sess:032x}")
            for i in range(ice):
                lines.append(f"a=candidate:{i + 1} 1 UDP {2130706431 - i * 256} "
                             f"10.{i}.{sess % 250}.{i + 2} {port + 2 * i} typ host")
                lines.append(f"a=candidate:{i + 1} 2 UDP {2130706430 - i * 256} "
                             f"10.{i}.{sess % 250}.{i + 2} {port + 2 * i + 1} typ host")
    return ("\r\n".join(lines) + "\r\n").encode()


def goip_keepalive(req: int, line_id: str, password: str, num: str, signal: int,
                   imei: str, imsi: str, iccid: str) -> bytes:
    """The GoIP SMS-server protocol keepalive (UDP, usually to port 44444)."""
    return (f"req:{req};id:{line_id};pass:{password};num:{num};signal:{signal};"
            f"gsm_status:LOGIN;voip_status:LOGIN;voip_state:IDLE;imei:{imei};imsi:{imsi};"
            f"iccid:{iccid};pro:CHINA MOBILE;idle:{signal * 3};disable_status:0;"
            f"SMS_LOGIN:N;SMB_LOGIN:;SMB_STATUS:;").encode()


def goip_keepalive_reply(req: int) -> bytes:
    return f"reg:{req};status:200;".encode()


def dns_query(ident: int, name: str) -> bytes:
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    return ident.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + q + \
        b"\x00\x01\x00\x01"


def dhcp_discover(xid: int, mac: bytes, vendor_class: str) -> bytes:
    """A DHCPDISCOVER carrying option 60 (vendor class), as a GoIP sends at boot."""
    body = bytes([1, 1, 6, 0]) + xid.to_bytes(4, "big") + bytes(20) + mac + bytes(10) + \
        bytes(192) + b"\x63\x82\x53\x63"
    opts = b"\x35\x01\x01" + b"\x3d\x07\x01" + mac + \
        bytes([60, len(vendor_class)]) + vendor_class.encode() + b"\x37\x04\x01\x03\x06\x0f\xff"
    return body + opts
