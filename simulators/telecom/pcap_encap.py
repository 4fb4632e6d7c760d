"""Wrapping simulated Ethernet frames in the tunnels a mirror or a carrier adds.

``Encapsulator(kind).wrap(frame)`` takes an Ethernet II frame (optionally 802.1Q
tagged) as the simulator builds it and returns the frame as the agent would see it
on a mirror port: inside ERSPAN, GRE, MPLS, PPPoE, VXLAN, Geneve, IP-in-IP or a QinQ
tag stack. Only ``struct`` on bytes; length and checksum fields are filled in, so
Wireshark reads the result without complaint. Kinds (``KINDS``):

- ``gre``: IP in GRE (no options); ``gre_opts``: with checksum, key and sequence;
  ``gre_teb``: Ethernet in GRE (transparent Ethernet bridging, key set);
- ``erspan1``/``erspan2``/``erspan3``: remote-mirror sessions (type III with the
  platform sub-header on every other session);
- ``pppoe``: PPPoE session frames; ``qinq``: an 802.1ad tag over an 802.1Q tag;
- ``mpls``: a two-label stack over IP; ``mpls_pw``: Ethernet pseudowire with a
  control word;
- ``vxlan``, ``geneve``: Ethernet over UDP overlays (Geneve with one option);
- ``ipip``: IPv4 or IPv6 inside IPv4; ``ip6tnl``: IPv4 or IPv6 inside IPv6;
- ``nested``: MPLS inside ERSPAN II (GTP-U traffic then reads GTP-U in MPLS in ERSPAN).
"""

from __future__ import annotations

import struct

from simulators.telecom.pcap_frames import checksum, ipv4, ipv6, udp

KINDS = ("gre", "gre_opts", "gre_teb", "erspan1", "erspan2", "erspan3", "pppoe", "qinq",
         "mpls", "mpls_pw", "vxlan", "geneve", "ipip", "ip6tnl", "nested")
TUN_SRC, TUN_DST = "192.0.2.1", "192.0.2.2"
TUN6_SRC, TUN6_DST = "2001:db8:ffff::1", "2001:db8:ffff::2"
OUTER_SRC_MAC = bytes.fromhex("001b21cc0001")
OUTER_DST_MAC = bytes.fromhex("001b21cc0002")


def _split(frame: bytes) -> tuple[bytes, bytes, bytes]:
    """(MAC addresses, VLAN tags, EtherType + payload) of an Ethernet frame."""
    off = 12
    while frame[off:off + 2] in (b"\x81\x00", b"\x88\xa8"):
        off += 4
    return frame[:12], frame[12:off], frame[off:]


class Encapsulator:
    """Wraps frames in one tunnel kind; keeps sequence numbers per tunnel."""

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown encapsulation {kind!r}; one of {', '.join(KINDS)}")
        self.kind = kind
        self.seq = 0

    @property
    def per_packet(self) -> bool:
        """True when a header depends on the payload bytes (a GRE checksum), so frames
        cannot share a header prefix."""
        return self.kind == "gre_opts"

    def _outer(self, proto: int, payload: bytes) -> bytes:
        return OUTER_DST_MAC + OUTER_SRC_MAC + b"\x08\x00" + ipv4(TUN_SRC, TUN_DST, proto,
                                                                   payload, ttl=63)

    def _gre(self, proto: int, body: bytes, *, key: int | None = None, seq: bool = False,
             csum: bool = False) -> bytes:
        flags = (0x8000 if csum else 0) | (0x2000 if key is not None else 0) \
            | (0x1000 if seq else 0)
        opts = b""
        if key is not None:
            opts += struct.pack("!I", key)
        if seq:
            self.seq += 1
            opts += struct.pack("!I", self.seq & 0xFFFFFFFF)
        if csum:
            head = struct.pack("!HH", flags, proto)
            c = checksum(head + b"\x00\x00\x00\x00" + opts + body)
            return head + struct.pack("!HH", c, 0) + opts + body
        return struct.pack("!HH", flags, proto) + opts + body

    def wrap(self, frame: bytes) -> bytes:
        k = self.kind
        macs, tags, rest = _split(frame)
        et, pkt = rest[:2], rest[2:]
        v6 = et == b"\x86\xdd"
        if k == "gre":
            return self._outer(47, self._gre(0x86DD if v6 else 0x0800, pkt))
        if k == "gre_opts":
            return self._outer(47, self._gre(0x86DD if v6 else 0x0800, pkt, key=7, seq=True,
                                             csum=True))
        if k == "gre_teb":
            return self._outer(47, self._gre(0x6558, frame, key=0x2A))
        if k == "erspan1":
            return self._outer(47, self._gre(0x88BE, frame))
        if k == "erspan2":
            return self._outer(47, self._gre(0x88BE, self._erspan2(frame, 17), seq=True))
        if k == "erspan3":
            return self._outer(47, self._gre(0x22EB, self._erspan3(frame), seq=True))
        if k == "pppoe":
            ppp = (b"\x00\x57" if v6 else b"\x00\x21") + pkt
            return macs + b"\x88\x64" + struct.pack("!BBHH", 0x11, 0, 0x1D2, len(ppp)) + ppp
        if k == "qinq":
            inner = tags or b"\x81\x00\x00\x64"
            return macs + b"\x88\xa8\x00\x0a" + inner + rest
        if k == "mpls":
            return macs + b"\x88\x47" + self._labels(16004, 24001) + pkt
        if k == "mpls_pw":
            return (OUTER_DST_MAC + OUTER_SRC_MAC + b"\x88\x47" + self._labels(16005, 299)
                    + b"\x00\x00\x00\x00" + frame)
        if k == "vxlan":
            vx = struct.pack("!BxxxI", 0x08, 5001 << 8) + frame
            return OUTER_DST_MAC + OUTER_SRC_MAC + b"\x08\x00" + udp(TUN_SRC, TUN_DST, 49152,
                                                                      4789, vx)
        if k == "geneve":
            opt = struct.pack("!HBB", 0x0105, 0x01, 1) + b"\x00\x00\x00\x01"  # one 4-byte option
            gv = struct.pack("!BBHI", len(opt) // 4, 0, 0x6558, 7002 << 8) + opt + frame
            return OUTER_DST_MAC + OUTER_SRC_MAC + b"\x08\x00" + udp(TUN_SRC, TUN_DST, 49153,
                                                                      6081, gv)
        if k == "ipip":
            return self._outer(41 if v6 else 4, pkt)
        if k == "ip6tnl":
            return (OUTER_DST_MAC + OUTER_SRC_MAC + b"\x86\xdd"
                    + ipv6(TUN6_SRC, TUN6_DST, 41 if v6 else 4, pkt))
        # nested: the frame's IP packet on an MPLS link, mirrored through ERSPAN II
        mpls = macs + b"\x88\x47" + self._labels(16006) + pkt
        return self._outer(47, self._gre(0x88BE, self._erspan2(mpls, 33), seq=True))

    @staticmethod
    def _labels(*labels: int) -> bytes:
        out = b""
        for i, lab in enumerate(labels):
            bottom = 1 if i == len(labels) - 1 else 0
            out += struct.pack("!I", (lab << 12) | (bottom << 8) | 64)
        return out

    @staticmethod
    def _erspan2(frame: bytes, session: int) -> bytes:
        return struct.pack("!HHI", 0x1000, session & 0x3FF, 0) + frame

    def _erspan3(self, frame: bytes) -> bytes:
        platform = self.seq % 2 == 0
        hdr = struct.pack("!HHIHH", 0x2000, 0x2A, self.seq * 1000 & 0xFFFFFFFF, 0,
                          1 if platform else 0)
        if platform:
            hdr += struct.pack("!II", 3 << 26, 0)  # platform id 3 sub-header
        return hdr + frame
