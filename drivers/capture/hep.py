"""HEP (Homer Encapsulation Protocol) v2 and v3: SIP and RTCP forwarded by SIP probes.

Carriers that already run SIP probes (Kamailio/OpenSIPS ``siptrace``, heplify,
captagent, HOMER) forward every SIP message and RTCP report as one HEP datagram
over UDP, with the original addresses, ports and capture time. :class:`HepDecoder`
turns one datagram into the :class:`Packet` the IP-plane stages read (sans-IO:
bytes, the sender's address and an index in; a ``Packet``, a ``Malformed`` or None
out), and :class:`HepListener` is the live source bound to ``[inputs.hep] listen``.

- v3 (``HEP3``): typed chunks (vendor 0): 1 address family, 2 IP protocol,
  3/4 IPv4 and 5/6 IPv6 addresses, 7/8 ports, 9/10 time (s, us), 11 payload type
  (1 SIP, 5 RTCP), 12 capture-agent id, 14 auth key, 15 payload; unknown and vendor
  chunks are skipped; a gzip-compressed payload (16) is refused (counted).
- v2 (and v1, which has no time): a fixed header (version, length, family,
  protocol, ports, addresses in network order) followed in v2 by time and capture
  id in the sender's host order (little-endian, as every probe in use writes it;
  the C struct padded to 12 bytes). The length byte is ignored (senders disagree).

Attribution: the packet's addresses are the original ones; ``Packet.tunnel`` says
``hep3(agent=<id>)@<probe address>``. A HEP message is one whole SIP message, so
it is handed on as a datagram (``proto`` 17) even when the probe saw it on TCP (the
original protocol is kept in ``tunnel``). Nothing here raises on bad input.
"""

from __future__ import annotations

import logging
import socket
import struct
import time
from collections.abc import Iterator

from drivers.transport.udp_rx import UdpReceiver
from edge.records import Malformed, Packet
from edge.timeguard import MAX_EPOCH

log = logging.getLogger(__name__)

HEP_SIP = 1
HEP_RTCP = 5
_v3_chunk = struct.Struct("!HHH").unpack_from
_ntop = socket.inet_ntop
_AF6 = socket.AF_INET6
_PROTO = {6: "tcp", 17: "udp", 132: "sctp"}


class HepDecoder:
    """Decodes HEP datagrams of one listener; counts what it takes and leaves."""

    def __init__(self, source: str, *, auth_key: str | None = None) -> None:
        self.source = source
        self.auth_key = auth_key.encode() if auth_key else None
        self.c: dict[str, int] = {"datagrams": 0, "hep_v2": 0, "hep_v3": 0, "sip": 0,
                                  "rtcp": 0, "other_types": 0, "malformed": 0,
                                  "auth_refused": 0, "compressed_refused": 0,
                                  "no_time": 0}

    def _bad(self, index: int, reason: str, ts: float | None = None) -> Malformed:
        self.c["malformed"] += 1
        return Malformed(self.source, f"datagram {index}", reason, ts)

    def decode(self, data: bytes, peer: str, index: int) -> Packet | Malformed | None:
        self.c["datagrams"] += 1
        if data[:4] == b"HEP3":
            self.c["hep_v3"] += 1
            return self._v3(data, peer, index)
        if data[:1] in (b"\x01", b"\x02"):
            self.c["hep_v2"] += 1
            return self._v2(data, peer, index)
        return self._bad(index, "not a HEP datagram")

    def _v3(self, data: bytes, peer: str, index: int) -> Packet | Malformed | None:
        if len(data) < 6:
            return self._bad(index, "short HEP3 header")
        total = (data[4] << 8) | data[5]
        if total < 6 or total > len(data):
            return self._bad(index, f"HEP3 length {total} but {len(data)} bytes")
        p = 6
        fam = proto = ptype = 0
        src = dst = None
        sport = dport = 0
        sec = usec = None
        agent = None
        key = None
        payload = None
        compressed = False
        while p + 6 <= total:
            vendor, ctype, clen = _v3_chunk(data, p)
            if clen < 6 or p + clen > total:
                return self._bad(index, f"HEP3 chunk {ctype} length {clen}")
            body = data[p + 6:p + clen]
            p += clen
            if vendor != 0:
                continue
            n = len(body)
            if ctype == 1 and n == 1:
                fam = body[0]
            elif ctype == 2 and n == 1:
                proto = body[0]
            elif ctype == 3 and n == 4:
                src = socket.inet_ntoa(body)
            elif ctype == 4 and n == 4:
                dst = socket.inet_ntoa(body)
            elif ctype == 5 and n == 16:
                src = _ntop(_AF6, body)
            elif ctype == 6 and n == 16:
                dst = _ntop(_AF6, body)
            elif ctype == 7 and n == 2:
                sport = (body[0] << 8) | body[1]
            elif ctype == 8 and n == 2:
                dport = (body[0] << 8) | body[1]
            elif ctype == 9 and n == 4:
                sec = int.from_bytes(body, "big")
            elif ctype == 10 and n == 4:
                usec = int.from_bytes(body, "big")
            elif ctype == 11 and n == 1:
                ptype = body[0]
            elif ctype == 12 and n in (2, 4):
                agent = int.from_bytes(body, "big")
            elif ctype == 14:
                key = body
            elif ctype == 15:
                payload = body
            elif ctype == 16:
                compressed = True
        if self.auth_key is not None and key != self.auth_key:
            self.c["auth_refused"] += 1
            return self._bad(index, "HEP3 auth key missing or wrong")
        if payload is None:
            if compressed:
                self.c["compressed_refused"] += 1
                return self._bad(index, "HEP3 compressed payload not supported")
            return self._bad(index, "HEP3 without payload")
        if src is None or dst is None:
            return self._bad(index, "HEP3 without addresses")
        if (fam == 2) != (":" not in src):
            return self._bad(index, f"HEP3 address family {fam} does not match addresses")
        ts = self._time(sec, usec)
        return self._packet(ts, src, dst, sport, dport, proto, ptype, payload,
                            f"hep3(agent={agent})@{peer}" if agent is not None
                            else f"hep3@{peer}", index)

    def _v2(self, data: bytes, peer: str, index: int) -> Packet | Malformed | None:
        if len(data) < 8:
            return self._bad(index, "short HEP2 header")
        ver, fam, proto = data[0], data[2], data[3]
        sport, dport = struct.unpack_from("!HH", data, 4)
        alen = 4 if fam == 2 else 16 if fam == 10 else 0
        if not alen:
            return self._bad(index, f"HEP2 address family {fam}")
        # the length byte is not trusted: senders disagree on it (sngrep writes the low
        # byte of the datagram length); the family fixes the header's size
        hl = 8 + 2 * alen
        if len(data) < hl:
            return self._bad(index, "short HEP2 address header")
        af = socket.AF_INET if alen == 4 else _AF6
        src = _ntop(af, data[8:8 + alen])
        dst = _ntop(af, data[8 + alen:hl])
        p = hl
        sec = usec = None
        agent = None
        if ver == 2:
            if len(data) < p + 12:
                return self._bad(index, "short HEP2 time header")
            sec, usec, agent = struct.unpack_from("<IIH", data, p)
            p += 12  # 10 bytes of time header, padded to 12 by the C struct
        ts = self._time(sec, usec)
        # HEPv2 gives no payload type: SIP is recognised by its start line
        ptype = HEP_SIP if data[p:p + 3].isalpha() or data[p:p + 3] == b"SIP" else HEP_RTCP
        return self._packet(ts, src, dst, sport, dport, proto, ptype, data[p:],
                            f"hep{ver}(agent={agent})@{peer}" if agent is not None
                            else f"hep{ver}@{peer}", index)

    def _time(self, sec: int | None, usec: int | None) -> float:
        if sec is None:
            self.c["no_time"] += 1
            return time.time()
        return sec + (usec or 0) / 1e6

    def _packet(self, ts: float, src: str, dst: str, sport: int, dport: int, proto: int,
                ptype: int, payload: bytes, via: str, index: int) -> Packet | Malformed | None:
        if not 0.0 <= ts < MAX_EPOCH:
            return self._bad(index, f"HEP time {ts:.6g} is impossible")
        if ptype == HEP_SIP:
            self.c["sip"] += 1
        elif ptype == HEP_RTCP:
            if payload[:1] == b"{":  # heplify's RTCP-as-JSON: not the wire bytes
                self.c["other_types"] += 1
                return None
            self.c["rtcp"] += 1
        else:
            self.c["other_types"] += 1
            return None
        if proto != 17:
            via = f"{via}/{_PROTO.get(proto, proto)}"
        return Packet(ts, src, dst, sport, dport, 17, payload, index, self.source,
                      tunnel=via)

    def counters(self) -> dict[str, int]:
        return dict(self.c)


class HepListener:
    """The live HEP source: one UDP socket, datagrams decoded as they arrive."""

    def __init__(self, host: str, port: int, *, timeout_s: float = 0.5, rcvbuf: int = 0,
                 auth_key: str | None = None) -> None:
        self.name = f"hep:udp:{port}"
        self.decoder = HepDecoder(self.name, auth_key=auth_key)
        # the shared live-UDP socket: IPv6, receive buffer, kernel drops counted
        self._rx = UdpReceiver(self.name, host, port, rcvbuf=rcvbuf, timeout_s=timeout_s)
        self._stopped = False

    @property
    def address(self) -> tuple[str, int]:
        return self._rx.address

    def __iter__(self) -> Iterator[Packet | Malformed]:
        n = 0
        while not self._stopped:
            try:
                got = self._rx.recv()
            except OSError:
                break
            if got is None:
                continue
            data, addr = got
            n += 1
            rec = self.decoder.decode(data, addr[0], n)
            if rec is not None:
                yield rec

    def close(self) -> None:
        self._stopped = True
        self._rx.close()

    def counters(self) -> dict[str, int | float]:
        return {**self.decoder.counters(), "kernel_drops": self._rx.kernel_drops}
