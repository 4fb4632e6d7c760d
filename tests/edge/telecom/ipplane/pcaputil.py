"""Test helper: pcap file -> ``Packet`` records, decoded with scapy (independent of the
fast decoder, so the detector's tests do not depend on it)."""

from __future__ import annotations

from pathlib import Path

from edge.records import Packet


def packets_from_pcap(path: Path) -> list[Packet]:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.utils import rdpcap

    out: list[Packet] = []
    for i, pkt in enumerate(rdpcap(str(path)), 1):
        ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
        if ip is None:
            continue
        l4 = ip.getlayer(UDP) or ip.getlayer(TCP)
        if l4 is None:
            continue
        eth = pkt.getlayer(Ether)
        is_tcp = isinstance(l4, TCP)
        out.append(Packet(
            ts=float(pkt.time), src=ip.src, dst=ip.dst, sport=int(l4.sport),
            dport=int(l4.dport), proto=6 if is_tcp else 17, payload=bytes(l4.payload),
            frame=i, source=path.name, tcp_seq=int(l4.seq) if is_tcp else 0,
            tcp_flags=int(l4.flags) if is_tcp else 0,
            eth_src=bytes.fromhex(eth.src.replace(":", "")) if eth is not None else None))
    return out
