"""Identifiers carried in packet payloads, for watchlist matching (sans-IO, total).

Each function takes an L4 payload and returns what it names, or nothing; none raises
on any input (they are fuzzed). They look only as far as they must: the first bytes
decide whether a payload is SIP, a GoIP SMS-protocol keepalive, a DNS query, a TLS
ClientHello or an HTTP request.
"""

from __future__ import annotations

import re

_SIP_START = (b"INVITE ", b"REGISTER ", b"MESSAGE ", b"OPTIONS ", b"BYE ", b"ACK ",
              b"CANCEL ", b"SUBSCRIBE ", b"NOTIFY ", b"PUBLISH ", b"INFO ", b"PRACK ",
              b"UPDATE ", b"REFER ", b"SIP/2.0 ")
_SIP_HDR = re.compile(rb"^(?:From|f|To|t|Contact|m|P-Asserted-Identity)[ \t]*:[^\r\n]*?"
                      rb"(?:sips?|tel):\+?([0-9][0-9\-.]{4,31})", re.I | re.M)
_GOIP = re.compile(rb"(?:^|;)(imsi|iccid|imei|num):([0-9A-Fa-f]{5,32})(?=;|$)")
_HTTP = re.compile(rb"^(?:GET|POST|HEAD|PUT) (/[^ \r\n]{0,512}) HTTP/1\.[01]\r\n"
                   rb"(?:[^\r\n]*\r\n){0,30}?Host:[ \t]*([A-Za-z0-9.\-:]{1,255})\r\n", re.I)


def sip_numbers(payload: bytes) -> list[str]:
    """Phone numbers in the From/To/Contact/P-Asserted-Identity of a SIP message."""
    if not payload.startswith(_SIP_START):
        return []
    head = payload[:4096].split(b"\r\n\r\n", 1)[0]
    return [m.group(1).replace(b"-", b"").replace(b".", b"").decode("ascii")
            for m in _SIP_HDR.finditer(head)]


def goip_ids(payload: bytes) -> list[tuple[str, str]]:
    """(kind, value) of a GoIP SMS-protocol keepalive's imsi, iccid, imei and num."""
    if not payload.startswith(b"req:"):
        return []
    out = []
    for m in _GOIP.finditer(payload[:1024]):
        kind = m.group(1).decode()
        out.append(("msisdn" if kind == "num" else kind, m.group(2).decode()))
    return out


def dns_qname(payload: bytes) -> str | None:
    """The first question's name of a DNS query (None for anything else)."""
    if len(payload) < 17 or payload[2] & 0x80 or int.from_bytes(payload[4:6], "big") < 1:
        return None
    labels: list[str] = []
    i = 12
    while i < len(payload) and len(labels) < 64:
        n = payload[i]
        if n == 0:
            break
        if n & 0xC0 or i + 1 + n > len(payload):
            return None
        try:
            labels.append(payload[i + 1:i + 1 + n].decode("ascii").lower())
        except UnicodeDecodeError:
            return None
        i += 1 + n
    return ".".join(labels) if labels else None


def tls_sni(payload: bytes) -> str | None:
    """The server_name of a TLS ClientHello in one segment (None otherwise)."""
    p = payload
    if len(p) < 43 or p[0] != 0x16 or p[1] != 0x03 or p[5] != 0x01:
        return None
    i = 43  # record 5 + handshake 4 + version 2 + random 32
    try:
        i += 1 + p[i]                                   # session id
        i += 2 + int.from_bytes(p[i:i + 2], "big")      # cipher suites
        i += 1 + p[i]                                   # compression methods
        end = i + 2 + int.from_bytes(p[i:i + 2], "big")
        i += 2
        while i + 4 <= min(end, len(p)):
            etype = int.from_bytes(p[i:i + 2], "big")
            elen = int.from_bytes(p[i + 2:i + 4], "big")
            if etype == 0 and i + 9 <= len(p):
                nlen = int.from_bytes(p[i + 7:i + 9], "big")
                name = p[i + 9:i + 9 + nlen]
                return name.decode("ascii").lower() if name else None
            i += 4 + elen
    except (IndexError, UnicodeDecodeError):
        return None
    return None


def http_url(payload: bytes) -> str | None:
    """``http://host/path`` of a clear-text HTTP request."""
    m = _HTTP.match(payload[:2048])
    if m is None:
        return None
    try:
        return f"http://{m.group(2).decode('ascii').lower()}{m.group(1).decode('ascii')}"
    except UnicodeDecodeError:
        return None
