"""A HEP v2/v3 encoder: what a SIP probe (siptrace, heplify, captagent) sends.

``hep3(...)`` and ``hep2(...)`` build one datagram around one SIP message or RTCP
report with its original addresses, ports and capture time; ``HepSender`` sends
them over UDP. Used by tests and the demo to play a capture to the agent as a
carrier's probe would, without a mirror port.
"""

from __future__ import annotations

import socket
import struct

SIP = 1
RTCP = 5


def _chunk(ctype: int, body: bytes) -> bytes:
    return struct.pack("!HHH", 0, ctype, 6 + len(body)) + body


def hep3(ts: float, src: str, dst: str, sport: int, dport: int, payload: bytes, *,
         proto: int = 17, ptype: int = SIP, agent: int = 2001,
         auth_key: str | None = None) -> bytes:
    """One HEP3 datagram (RFC-style chunk list, network byte order)."""
    v6 = ":" in src
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    sec = int(ts)
    usec = int(round((ts - sec) * 1e6))
    if usec >= 1_000_000:
        sec, usec = sec + 1, usec - 1_000_000
    body = (_chunk(1, bytes([10 if v6 else 2])) + _chunk(2, bytes([proto]))
            + _chunk(5 if v6 else 3, socket.inet_pton(fam, src))
            + _chunk(6 if v6 else 4, socket.inet_pton(fam, dst))
            + _chunk(7, struct.pack("!H", sport)) + _chunk(8, struct.pack("!H", dport))
            + _chunk(9, struct.pack("!I", sec)) + _chunk(10, struct.pack("!I", usec))
            + _chunk(11, bytes([ptype])) + _chunk(12, struct.pack("!I", agent)))
    if auth_key:
        body += _chunk(14, auth_key.encode())
    body += _chunk(15, payload)
    return b"HEP3" + struct.pack("!H", 6 + len(body)) + body


def hep2(ts: float, src: str, dst: str, sport: int, dport: int, payload: bytes, *,
         proto: int = 17, agent: int = 2001) -> bytes:
    """One HEPv2 datagram: fixed header in network order, time header little-endian
    (the C struct ``hep_timehdr`` as probes write it on x86, padded to 12 bytes)."""
    v6 = ":" in src
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    alen = 16 if v6 else 4
    sec = int(ts)
    usec = int(round((ts - sec) * 1e6))
    if usec >= 1_000_000:
        sec, usec = sec + 1, usec - 1_000_000
    return (struct.pack("!BBBBHH", 2, 8 + 2 * alen, 10 if v6 else 2, proto, sport, dport)
            + socket.inet_pton(fam, src) + socket.inet_pton(fam, dst)
            + struct.pack("<IIHxx", sec, usec, agent & 0xFFFF) + payload)


class HepSender:
    """Sends HEP datagrams to a collector over UDP."""

    def __init__(self, host: str, port: int) -> None:
        self.addr = (host, port)
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                   socket.SOCK_DGRAM)
        self.sent = 0

    def send(self, datagram: bytes) -> None:
        self._sock.sendto(datagram, self.addr)
        self.sent += 1

    def close(self) -> None:
        self._sock.close()
