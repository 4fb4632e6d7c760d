"""Link, IP and transport header decoding on raw frames (the per-frame reference path).

Sans-IO: a frame's bytes, link type, event time and index in; ``Packet``,
``RtpBatch`` and ``Malformed`` records out (appended to a caller's list, so the hot
loop allocates no intermediate lists). Handles Ethernet, Linux cooked SLL and SLL2,
raw IP, BSD loopback, 802.1Q/802.1ad VLAN tags (any depth), IPv4, IPv6 (extension
headers skipped), UDP, TCP, GTP-U G-PDUs on UDP 2152 (decapsulated: the inner
addresses are reported, ``teid`` set) and IPv4/IPv6 fragments (reassembled in a
bounded table). Tunnels a mirror or a carrier adds (``tunnels.py``: GRE, ERSPAN
I/II/III, PPPoE sessions, MPLS stacks with IP or pseudowire Ethernet beneath, VXLAN,
Geneve, IPv4/IPv6 in IPv4/IPv6) are taken off to at most ``MAX_DEPTH`` layers; the
inner packet's addresses are the endpoints and ``Packet.tunnel`` says what carried it. RTP-looking UDP media is aggregated per flow (see ``rtp.py``).
Anything that cannot be decoded becomes a ``Malformed`` record with a reason;
nothing here raises on bad input.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from drivers.capture.fragments import Reassembler
from drivers.capture.rtp import RtpAggregator, looks_like_rtp
from drivers.capture.tunnels import (
    ETH_MPLS,
    ETH_MPLS_MC,
    ETH_PPPOE_DISC,
    ETH_PPPOE_SESS,
    GENEVE_PORT,
    GRE_ERSPAN2,
    GRE_ERSPAN3,
    GRE_TEB,
    MAX_DEPTH,
    VXLAN_PORT,
    erspan3_len,
    geneve_header,
    gre_header,
    layer_text,
    mpls_stack,
    pppoe_session,
)
from edge.records import Malformed, Packet

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
RAW_LINKTYPES = frozenset({LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6})
SUPPORTED_LINKTYPES = frozenset({LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_LOOP,
                                 LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2}) | RAW_LINKTYPES

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100, 0x9200})
IPV6_EXT = frozenset({0, 43, 60, 135, 139, 140})  # skipped; 44 fragment, 51 AH handled apart
GTPU_PORT = 2152
TUNNEL_DPORTS = frozenset({GTPU_PORT, VXLAN_PORT, GENEVE_PORT})

_u16 = struct.Struct("!H").unpack_from
_udp = struct.Struct("!HHH").unpack_from
_tcp = struct.Struct("!HHIIBB").unpack_from
_ntoa = socket.inet_ntoa
_ntop = socket.inet_ntop
_AF6 = socket.AF_INET6


def gtpu_payload(p: bytes) -> tuple[int, int, int] | None:
    """(teid, start, end) of the inner packet of a GTPv1-U G-PDU, or None if not one."""
    n = len(p)
    if n < 8:
        return None
    flags = p[0]
    if flags >> 5 != 1 or not flags & 0x10 or p[1] != 0xFF:
        return None
    end = min(n, 8 + ((p[2] << 8) | p[3]))
    teid = int.from_bytes(p[4:8], "big")
    off = 8
    if flags & 0x07:  # sequence number / N-PDU / extension header present
        if n < 12:
            return None
        off = 12
        nxt = p[11] if flags & 0x04 else 0
        while nxt:
            if off >= end:
                return None
            elen = p[off] * 4
            if elen == 0 or off + elen > end:
                return None
            nxt = p[off + elen - 1]
            off += elen
    if off >= end:
        return None
    return teid, off, end


class FrameDecoder:
    """Decodes frames of one source; keeps the fragment table and RTP flow state."""

    def __init__(self, source: str = "", *, max_fragments: int = 4096,
                 fragment_timeout_s: float = 30.0, max_rtp_flows: int = 200_000,
                 rtp_idle_s: float = 60.0) -> None:
        self.source = source
        self.frag = Reassembler(max_datagrams=max_fragments, timeout_s=fragment_timeout_s)
        self.rtp = RtpAggregator(source, max_flows=max_rtp_flows, idle_s=rtp_idle_s)
        self.frames = 0
        self.packets = 0
        self.non_ip = 0
        self.other_l4 = 0
        self.gtp = 0
        self.truncated = 0
        self.malformed = 0
        self.unsupported_linktype = 0
        self.tunnels: dict[str, int] = {}
        self._second = -1
        self._frag_sweep_at = 0.0

    # -- time
    def decode(self, ts: float, linktype: int, data: bytes, index: int, out: list[Any]) -> None:
        """Decode one frame; also closes RTP buckets once per event-time second."""
        if int(ts) > self._second:
            self.advance(ts, out)
        self.decode_frame(ts, linktype, data, index, out)

    def advance(self, ts: float, out: list[Any]) -> None:
        """Event time reached ``ts``: on entering a new second, sweep (closes RTP batches)."""
        sec = int(ts)
        if sec > self._second:
            if self._second >= 0:
                self.sweep(ts, out)
            self._second = sec

    def sweep(self, now: float, out: list[Any]) -> None:
        """Close RTP batches of past seconds, evict idle RTP flows and stale fragments."""
        self.rtp.sweep(now, out)
        if now >= self._frag_sweep_at:
            self.frag.sweep(now)
            self._frag_sweep_at = now + 1.0

    def flush(self, out: list[Any]) -> None:
        """End of input: emit every open RTP batch."""
        self.rtp.flush(out)

    # -- layers
    def _bad(self, ts: float, index: int, reason: str, out: list[Any]) -> None:
        self.malformed += 1
        out.append(Malformed(self.source, f"frame {index}", reason, ts))

    def decode_frame(self, ts: float, linktype: int, data: bytes, index: int,
                     out: list[Any]) -> None:
        """Decode one frame without the once-a-second sweep (the batch reader sweeps)."""
        self.frames += 1
        n = len(data)
        eth_src: bytes | None = None
        if linktype == LINKTYPE_ETHERNET:
            if n < 14:
                return self._bad(ts, index, "short ethernet header", out)
            et = (data[12] << 8) | data[13]
            off = 14
            eth_src = data[6:12]
        elif linktype == LINKTYPE_LINUX_SLL:
            if n < 16:
                return self._bad(ts, index, "short SLL header", out)
            if _u16(data, 4)[0] == 6:
                eth_src = data[6:12]
            et = (data[14] << 8) | data[15]
            off = 16
        elif linktype == LINKTYPE_LINUX_SLL2:
            if n < 20:
                return self._bad(ts, index, "short SLL2 header", out)
            if data[11] == 6:
                eth_src = data[12:18]
            et = (data[0] << 8) | data[1]
            off = 20
        elif linktype in RAW_LINKTYPES:
            if n < 1:
                return self._bad(ts, index, "empty frame", out)
            v = data[0] >> 4
            if v != 4 and v != 6:
                return self._bad(ts, index, f"IP version {v}", out)
            et = ETH_IPV4 if v == 4 else ETH_IPV6
            off = 0
        elif linktype == LINKTYPE_NULL or linktype == LINKTYPE_LOOP:
            if n < 4:
                return self._bad(ts, index, "short loopback header", out)
            fam = data[0] or data[3]  # host byte order (NULL) or network order (LOOP)
            et = ETH_IPV4 if fam == 2 else ETH_IPV6 if fam in (10, 24, 28, 30) else 0
            off = 4
        else:
            self.unsupported_linktype += 1
            return None
        if et == ETH_IPV4 or et == ETH_IPV6:
            return self._ip(ts, data, off, n, index, eth_src, None, None, out)
        return self._l3(ts, et, data, off, n, index, eth_src, None, None, out)

    def _ether(self, ts: float, data: bytes, off: int, n: int, index: int,
               teid: int | None, tun: str | None, out: list[Any]) -> None:
        """An Ethernet frame inside a tunnel (TEB, ERSPAN, pseudowire, VXLAN, Geneve)."""
        if off + 14 > n:
            return self._bad(ts, index, "short inner Ethernet header", out)
        return self._l3(ts, (data[off + 12] << 8) | data[off + 13], data, off + 14, n, index,
                        data[off + 6:off + 12], teid, tun, out)

    def _l3(self, ts: float, et: int, data: bytes, off: int, n: int, index: int,
            eth_src: bytes | None, teid: int | None, tun: str | None, out: list[Any]) -> None:
        """What follows an EtherType: VLAN tags, then IP, PPPoE or MPLS."""
        while et in VLAN_TPIDS:
            if off + 4 > n:
                return self._bad(ts, index, "short VLAN tag", out)
            et = (data[off + 2] << 8) | data[off + 3]
            off += 4
        if et == ETH_IPV4 or et == ETH_IPV6:
            return self._ip(ts, data, off, n, index, eth_src, teid, tun, out)
        if et == ETH_PPPOE_SESS:
            r = pppoe_session(data, off, n)
            if isinstance(r, str):
                return self._bad(ts, index, r, out)
            tun = self._enter(tun, r[2])
            if tun is None:
                return self._bad(ts, index, "encapsulation too deep", out)
            if r[0] == 0:  # PPP control (LCP, IPCP, ...): not IP
                self.non_ip += 1
                return None
            return self._ip(ts, data, r[1], r[3], index, eth_src, teid, tun, out)
        if et == ETH_MPLS or et == ETH_MPLS_MC:
            m = mpls_stack(data, off, n)
            if isinstance(m, str):
                return self._bad(ts, index, m, out)
            tun = self._enter(tun, m[2])
            if tun is None:
                return self._bad(ts, index, "encapsulation too deep", out)
            if m[0] == 4:
                return self._ip(ts, data, m[1], n, index, None, teid, tun, out)
            return self._ether(ts, data, m[1], n, index, teid, tun, out)
        if et == ETH_PPPOE_DISC:
            self.tunnels["pppoe_discovery"] = self.tunnels.get("pppoe_discovery", 0) + 1
        self.non_ip += 1
        return None

    def _enter(self, tun: str | None, layer: str) -> str | None:
        """The tunnel context one layer deeper, or None past ``MAX_DEPTH`` layers."""
        kind = layer.split("(", 1)[0].split("@", 1)[0]
        self.tunnels[kind] = self.tunnels.get(kind, 0) + 1
        if tun is None:
            return layer
        if tun.count(" / ") + 1 >= MAX_DEPTH:
            return None
        return f"{tun} / {layer}"

    def _gre(self, ts: float, src: str, dst: str, buf: bytes, start: int, end: int,
             index: int, teid: int | None, tun: str | None, out: list[Any]) -> None:
        g = gre_header(buf, start, end)
        if isinstance(g, str):
            return self._bad(ts, index, g, out)
        proto, p, key, has_seq = g
        if proto == GRE_ERSPAN2 or proto == GRE_ERSPAN3:
            if proto == GRE_ERSPAN3:
                hl = erspan3_len(buf, p, end)
                kind = "erspan3"
            else:
                hl = 8 if has_seq else 0  # type I has no header and no sequence number
                kind = "erspan2" if has_seq else "erspan1"
            if hl < 0 or p + hl > end:
                return self._bad(ts, index, f"short {kind.upper()} header", out)
            session = ((buf[p + 2] & 3) << 8) | buf[p + 3] if hl else None
            t = self._enter(tun, layer_text(kind, src, dst, session=session, key=key))
            if t is None:
                return self._bad(ts, index, "encapsulation too deep", out)
            return self._ether(ts, buf, p + hl, end, index, teid, t, out)
        t = self._enter(tun, layer_text("gre", src, dst, key=key))
        if t is None:
            return self._bad(ts, index, "encapsulation too deep", out)
        if proto == GRE_TEB:
            return self._ether(ts, buf, p, end, index, teid, t, out)
        return self._l3(ts, proto, buf, p, end, index, None, teid, t, out)

    def _udp_tunnel(self, ts: float, src: str, dst: str, sport: int, dport: int,
                    payload: bytes, index: int, eth_src: bytes | None, teid: int | None,
                    tun: str | None, out: list[Any]) -> bool:
        """Decapsulate GTP-U, VXLAN or Geneve carried in ``payload``; False if it is not."""
        if dport == VXLAN_PORT:
            if len(payload) < 8 + 14 or not payload[0] & 0x08:
                return False
            vni = int.from_bytes(payload[4:7], "big")
            t = self._enter(tun, layer_text("vxlan", src, dst, vni=vni))
            if t is None:
                self._bad(ts, index, "encapsulation too deep", out)
                return True
            self._ether(ts, payload, 8, len(payload), index, teid, t, out)
            return True
        if dport == GENEVE_PORT:
            gh = geneve_header(payload)
            if gh is None:
                return False
            proto, p, vni = gh
            t = self._enter(tun, layer_text("geneve", src, dst, vni=vni))
            if t is None:
                self._bad(ts, index, "encapsulation too deep", out)
                return True
            if proto == GRE_TEB:
                self._ether(ts, payload, p, len(payload), index, teid, t, out)
            else:
                self._l3(ts, proto, payload, p, len(payload), index, None, teid, t, out)
            return True
        if teid is not None:  # GTP-U inside GTP-U: not decapsulated twice
            return False
        g = gtpu_payload(payload)
        if g is None:
            return False
        self.gtp += 1
        self._ip(ts, payload[:g[2]], g[1], g[2], index, eth_src, g[0], tun, out)
        return True

    def _ip(self, ts: float, data: bytes, off: int, n: int, index: int,
            eth_src: bytes | None, teid: int | None, tun: str | None, out: list[Any]) -> None:
        if off >= n:
            return self._bad(ts, index, "missing IP header", out)
        v = data[off] >> 4
        if v == 4:
            if n - off < 20:
                return self._bad(ts, index, "short IPv4 header", out)
            ihl = (data[off] & 15) * 4
            total = (data[off + 2] << 8) | data[off + 3]
            if total == 0:  # segmentation offload: the capture holds the real length
                total = n - off
            if ihl < 20 or total < ihl or off + ihl > n:
                return self._bad(ts, index, "bad IPv4 header length", out)
            end = off + total
            if end > n:
                self.truncated += 1
                end = n
            proto = data[off + 9]
            src = _ntoa(data[off + 12:off + 16])
            dst = _ntoa(data[off + 16:off + 20])
            fo = (data[off + 6] << 8) | data[off + 7]
            if fo & 0x3FFF:  # MF set or non-zero offset: a fragment
                whole = self.frag.add((4, src, dst, proto, data[off + 4:off + 6]), ts,
                                      (fo & 0x1FFF) * 8, bool(fo & 0x2000),
                                      data[off + ihl:end])
                if whole is None:
                    return None
                return self._l4(ts, proto, src, dst, whole, 0, len(whole), index, eth_src,
                                teid, tun, out)
            return self._l4(ts, proto, src, dst, data, off + ihl, end, index, eth_src, teid,
                            tun, out)
        if v == 6:
            if n - off < 40:
                return self._bad(ts, index, "short IPv6 header", out)
            plen = (data[off + 4] << 8) | data[off + 5]
            nh = data[off + 6]
            src = _ntop(_AF6, data[off + 8:off + 24])
            dst = _ntop(_AF6, data[off + 24:off + 40])
            end = off + 40 + plen if plen else n  # 0: jumbogram, take what is there
            if end > n:
                self.truncated += 1
                end = n
            return self._ip6_chain(ts, nh, src, dst, data, off + 40, end, index, eth_src,
                                   teid, tun, out)
        return self._bad(ts, index, f"IP version {v}", out)

    def _ip6_chain(self, ts: float, nh: int, src: str, dst: str, buf: bytes, p: int,
                   end: int, index: int, eth_src: bytes | None, teid: int | None,
                   tun: str | None, out: list[Any]) -> None:
        while nh in IPV6_EXT or nh == 44 or nh == 51:
            if p + 8 > end:
                return self._bad(ts, index, "short IPv6 extension header", out)
            if nh == 44:
                fo = (buf[p + 2] << 8) | buf[p + 3]
                nxt = buf[p]
                whole = self.frag.add((6, src, dst, nxt, buf[p + 4:p + 8]), ts, fo & 0xFFF8,
                                      bool(fo & 1), buf[p + 8:end])
                if whole is None:
                    return None
                return self._ip6_chain(ts, nxt, src, dst, whole, 0, len(whole), index,
                                       eth_src, teid, tun, out)
            hlen = (buf[p + 1] + 2) * 4 if nh == 51 else (buf[p + 1] + 1) * 8
            nh = buf[p]
            p += hlen
        if p > end:
            return self._bad(ts, index, "IPv6 extension headers overrun", out)
        return self._l4(ts, nh, src, dst, buf, p, end, index, eth_src, teid, tun, out)

    def _l4(self, ts: float, proto: int, src: str, dst: str, buf: bytes, start: int, end: int,
            index: int, eth_src: bytes | None, teid: int | None, tun: str | None,
            out: list[Any]) -> None:
        if proto == 17:
            if end - start < 8:
                return self._bad(ts, index, "short UDP header", out)
            sport, dport, ulen = _udp(buf, start)
            pend = start + ulen
            if ulen < 8:
                return self._bad(ts, index, "bad UDP length", out)
            if pend > end:  # snaplen cut it (counted at the IP layer): keep what is there
                pend = end
            payload = buf[start + 8:pend]
            if (dport in TUNNEL_DPORTS or sport == GTPU_PORT) and self._udp_tunnel(
                    ts, src, dst, sport, dport, payload, index, eth_src, teid, tun, out):
                return None
            if looks_like_rtp(payload, sport, dport):
                self.rtp.add((src, dst, sport, dport,
                              int.from_bytes(payload[8:12], "big"), teid),
                             ts, payload, index, out)
                return None
            self.packets += 1
            out.append(Packet(ts, src, dst, sport, dport, 17, payload, index, self.source, 0, 0,
                              teid, eth_src, tun))
            return None
        if proto == 6:
            if end - start < 20:
                return self._bad(ts, index, "short TCP header", out)
            sport, dport, seq, _ack, doff, flags = _tcp(buf, start)
            hl = (doff >> 4) * 4
            if hl < 20 or start + hl > end:
                return self._bad(ts, index, "bad TCP header length", out)
            self.packets += 1
            out.append(Packet(ts, src, dst, sport, dport, 6, buf[start + hl:end], index,
                              self.source, seq, flags | ((doff & 1) << 8), teid, eth_src,
                              tun))
            return None
        if proto == 47:
            return self._gre(ts, src, dst, buf, start, end, index, teid, tun, out)
        if proto == 4 or proto == 41:  # IPv4 / IPv6 inside IP
            t = self._enter(tun, layer_text("ip6ip" if proto == 41 else "ipip", src, dst))
            if t is None:
                return self._bad(ts, index, "encapsulation too deep", out)
            return self._ip(ts, buf, start, end, index, None, teid, t, out)
        self.other_l4 += 1
        return None

    def counters(self) -> dict[str, int]:
        c = {"frames": self.frames, "packets": self.packets, "non_ip": self.non_ip,
             "other_l4": self.other_l4, "gtpu": self.gtp, "truncated": self.truncated,
             "malformed": self.malformed, "unsupported_linktype": self.unsupported_linktype}
        for k, v in self.tunnels.items():
            c[f"tunnel.{k}"] = v
        c.update(self.frag.counters())
        c.update(self.rtp.counters())
        return c
