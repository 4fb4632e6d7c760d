"""Building link/IP/transport frames as bytes and writing pcap files, without scapy.

Everything is ``struct`` on bytes so the simulator can produce a million frames in
seconds. Frames are Ethernet II (optionally one 802.1Q tag), IPv4 (header checksum
filled in, UDP checksum 0 as IPv4 allows) or IPv6 (UDP/TCP checksum filled in, as
IPv6 requires), with optional GTP-U encapsulation of the whole IP packet.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import BinaryIO

ETH_IPV4 = b"\x08\x00"
ETH_IPV6 = b"\x86\xdd"
GTPU_PORT = 2152

_hdr = struct.Struct("<IIII")
_ip4 = struct.Struct("!BBHHHBBH4s4s")
_udp = struct.Struct("!HHHH")
_tcp = struct.Struct("!HHIIBBHHH")


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def is_v6(addr: str) -> bool:
    return ":" in addr


def ipv4(src: str, dst: str, proto: int, payload: bytes, *, ident: int = 0,
         flags_frag: int = 0x4000, ttl: int = 64) -> bytes:
    """An IPv4 packet (20-byte header, checksum set) around ``payload``."""
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    h = _ip4.pack(0x45, 0, 20 + len(payload), ident & 0xFFFF, flags_frag, ttl, proto, 0, s, d)
    return h[:10] + checksum(h).to_bytes(2, "big") + h[12:] + payload


def ipv6(src: str, dst: str, nh: int, payload: bytes, *, hop: int = 64) -> bytes:
    return (struct.pack("!IHBB", 0x60000000, len(payload), nh, hop)
            + socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
            + payload)


def _pseudo6(src: str, dst: str, proto: int, length: int) -> bytes:
    return (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
            + struct.pack("!IxxxB", length, proto))


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes, *, ident: int = 0,
        df: bool = True) -> bytes:
    """A whole IP packet carrying UDP (IPv4 or IPv6 after the address form)."""
    seg = _udp.pack(sport, dport, 8 + len(payload), 0) + payload
    if is_v6(src):
        c = checksum(_pseudo6(src, dst, 17, len(seg)) + seg) or 0xFFFF
        return ipv6(src, dst, 17, seg[:6] + c.to_bytes(2, "big") + seg[8:])
    return ipv4(src, dst, 17, seg, ident=ident, flags_frag=0x4000 if df else 0)


def tcp(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int,
        payload: bytes = b"", *, window: int = 65535) -> bytes:
    """A whole IP packet carrying one TCP segment (20-byte header, checksum set)."""
    h = _tcp.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, window, 0, 0)
    seg = h + payload
    if is_v6(src):
        c = checksum(_pseudo6(src, dst, 6, len(seg)) + seg)
        return ipv6(src, dst, 6, seg[:16] + c.to_bytes(2, "big") + seg[18:])
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!xBH", 6, len(seg))
    c = checksum(pseudo + seg)
    return ipv4(src, dst, 6, seg[:16] + c.to_bytes(2, "big") + seg[18:])


def fragment_ipv4(packet: bytes, mtu: int = 1500) -> list[bytes]:
    """Split an IPv4 packet (20-byte header) into fragments that fit ``mtu``."""
    if len(packet) <= mtu:
        return [packet]
    hdr, body = packet[:20], packet[20:]
    step = (mtu - 20) // 8 * 8
    ident = int.from_bytes(hdr[4:6], "big")
    src, dst = socket.inet_ntoa(hdr[12:16]), socket.inet_ntoa(hdr[16:20])
    out = []
    for off in range(0, len(body), step):
        piece = body[off:off + step]
        more = off + step < len(body)
        out.append(ipv4(src, dst, hdr[9], piece, ident=ident,
                        flags_frag=(0x2000 if more else 0) | (off // 8), ttl=hdr[8]))
    return out


def gtpu(teid: int, inner: bytes, *, seq: int | None = None) -> bytes:
    """A GTPv1-U G-PDU carrying ``inner`` (an IP packet); with a sequence number if given."""
    if seq is None:
        return struct.pack("!BBHI", 0x30, 0xFF, len(inner), teid) + inner
    return struct.pack("!BBHIHBB", 0x32, 0xFF, len(inner) + 4, teid, seq & 0xFFFF, 0, 0) + inner


def ethernet(src_mac: bytes, dst_mac: bytes, packet: bytes, vlan: int | None = None) -> bytes:
    et = ETH_IPV6 if packet[0] >> 4 == 6 else ETH_IPV4
    if vlan is None:
        return dst_mac + src_mac + et + packet
    return dst_mac + src_mac + b"\x81\x00" + (vlan & 0xFFF).to_bytes(2, "big") + et + packet


@dataclass(slots=True)
class Tunnel:
    """Where an endpoint's packets are carried in GTP-U (eNodeB <-> SGW on S1-U)."""

    teid_up: int
    teid_down: int
    enb: str
    sgw: str
    enb_mac: bytes
    sgw_mac: bytes
    with_seq: bool = False


class PcapWriter:
    """Writes a classic pcap (microsecond times, LINKTYPE_ETHERNET) with plain struct."""

    def __init__(self, fh: BinaryIO, *, linktype: int = 1, snaplen: int = 65535) -> None:
        self.fh = fh
        self.count = 0
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype))

    def write_many(self, frames: list[tuple[float, bytes]]) -> None:
        parts = []
        pack = _hdr.pack
        for ts, frame in frames:
            sec = int(ts)
            usec = int(round((ts - sec) * 1e6))
            if usec >= 1_000_000:
                sec, usec = sec + 1, usec - 1_000_000
            parts.append(pack(sec, usec, len(frame), len(frame)))
            parts.append(frame)
        self.fh.write(b"".join(parts))
        self.count += len(frames)
