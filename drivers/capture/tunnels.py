"""Header parsing of the tunnels a mirror or a carrier wraps around traffic.

Sans-IO helpers for the per-frame decoder (``decode.py``): each takes a buffer, the
offset of its header and the end of the bytes it may read, and returns where the
carried packet starts plus a short text naming the layer (kept as ``Packet.tunnel``,
outermost first, so evidence says how the traffic reached the mirror), or a reason
string when the header is malformed. Nothing here raises on bad input.

- GRE (RFC 2784/2890: checksum, key and sequence options; version 0 only), carrying
  IPv4, IPv6, MPLS, transparent Ethernet bridging (0x6558) or ERSPAN;
- ERSPAN type I (GRE 0x88BE without sequence number, no header), II (0x88BE, 8 bytes),
  III (0x22EB, 12 bytes plus the 8-byte platform sub-header when the O flag is set);
- PPPoE session frames (RFC 2516) carrying PPP IPv4 (0x0021) or IPv6 (0x0057);
- MPLS label stacks (RFC 3032) carrying IPv4/IPv6 (told apart by the first nibble,
  as routers do) or a pseudowire Ethernet frame (RFC 4448, with or without the
  control word, whose first nibble is 0);
- VXLAN (RFC 7348, UDP 4789) and Geneve (RFC 8926, UDP 6081) carrying Ethernet or IP.
"""

from __future__ import annotations

ETH_PPPOE_DISC = 0x8863
ETH_PPPOE_SESS = 0x8864
ETH_MPLS = 0x8847
ETH_MPLS_MC = 0x8848
GRE_TEB = 0x6558
GRE_ERSPAN2 = 0x88BE  # also type I: told apart by the GRE sequence number
GRE_ERSPAN3 = 0x22EB
VXLAN_PORT = 4789
GENEVE_PORT = 6081
MAX_DEPTH = 8
"""Tunnel layers taken off one frame at most (GTP-U not counted); deeper is malformed."""
MAX_LABELS = 16

PPP_IPV4 = 0x0021
PPP_IPV6 = 0x0057


def layer_text(kind: str, src: str | None = None, dst: str | None = None, *,
               key: int | None = None, session: int | None = None,
               vni: int | None = None) -> str:
    """``kind(opts)@src>dst``: one tunnel layer as evidence shows it."""
    opts = []
    if key is not None:
        opts.append(f"key=0x{key:x}")
    if session is not None:
        opts.append(f"session={session}")
    if vni is not None:
        opts.append(f"vni={vni}")
    text = f"{kind}({','.join(opts)})" if opts else kind
    return f"{text}@{src}>{dst}" if src is not None else text


def gre_header(b: bytes, p: int, end: int) -> tuple[int, int, int | None, bool] | str:
    """(protocol type, payload offset, key or None, sequence present) of a GRE header."""
    if end - p < 4:
        return "short GRE header"
    flags = (b[p] << 8) | b[p + 1]
    if flags & 0x0007:
        return f"GRE version {flags & 7}"
    if flags & 0x4000:
        return "GRE source routing (RFC 1701) not supported"
    proto = (b[p + 2] << 8) | b[p + 3]
    q = p + 4
    if flags & 0x8000:  # checksum + reserved1
        q += 4
    key = None
    if flags & 0x2000:
        if q + 4 > end:
            return "short GRE header"
        key = int.from_bytes(b[q:q + 4], "big")
        q += 4
    has_seq = bool(flags & 0x1000)
    if has_seq:
        q += 4
    if q > end:
        return "short GRE header"
    return proto, q, key, has_seq


def erspan3_len(b: bytes, p: int, end: int) -> int:
    """Length of an ERSPAN type III header (12, or 20 with the platform sub-header)."""
    if end - p < 12:
        return -1
    return 20 if b[p + 11] & 1 else 12


def pppoe_session(b: bytes, p: int, end: int) -> tuple[int, int, str, int] | str:
    """(IP version or 0 for PPP control, IP offset, layer text, end of payload)."""
    if end - p < 8:
        return "short PPPoE header"
    if b[p] != 0x11 or b[p + 1] != 0:
        return "bad PPPoE session header"
    session = (b[p + 2] << 8) | b[p + 3]
    length = (b[p + 4] << 8) | b[p + 5]
    if length < 2:
        return "bad PPPoE length"
    stop = min(end, p + 6 + length)
    proto = (b[p + 6] << 8) | b[p + 7]
    text = layer_text("pppoe", session=session)
    if proto == PPP_IPV4:
        return 4, p + 8, text, stop
    if proto == PPP_IPV6:
        return 6, p + 8, text, stop
    return 0, p + 8, text, stop


def mpls_stack(b: bytes, p: int, end: int) -> tuple[int, int, str] | str:
    """(4 for IP beneath, 0 for pseudowire Ethernet; offset beneath; layer text)."""
    labels: list[int] = []
    while True:
        if p + 4 > end:
            return "short MPLS label stack"
        labels.append((b[p] << 12) | (b[p + 1] << 4) | (b[p + 2] >> 4))
        bottom = b[p + 2] & 1
        p += 4
        if bottom:
            break
        if len(labels) >= MAX_LABELS:
            return "MPLS label stack too deep"
    if p >= end:
        return "MPLS without payload"
    text = f"mpls({','.join(map(str, labels))})"
    nib = b[p] >> 4
    if nib == 4 or nib == 6:
        return 4, p, text
    if nib == 0:  # pseudowire control word
        return 0, p + 4, text
    return 0, p, text


def geneve_header(b: bytes) -> tuple[int, int, int] | None:
    """(protocol type, payload offset, VNI) of a Geneve header, or None if not one."""
    if len(b) < 8 or b[0] >> 6:
        return None
    hl = 8 + (b[0] & 0x3F) * 4
    if hl > len(b):
        return None
    return (b[2] << 8) | b[3], hl, int.from_bytes(b[4:7], "big")
