"""Packet capture: pcap/pcapng files and live interfaces, decoded to IP-plane records.

- ``pcapio``    walks pcap/pcapng files in large blocks (record offsets, times, link types)
- ``decode``    per-frame L2-L4 decoding: Ethernet/SLL/SLL2/raw/loopback, VLAN, IPv4/IPv6,
                UDP/TCP, GTP-U decapsulation, fragment reassembly
- ``tunnels``   GRE, ERSPAN I/II/III, PPPoE, MPLS, VXLAN, Geneve, IP-in-IP headers
- ``fragments`` the bounded IP fragment table
- ``rtp``       RTP classification and per-flow-second aggregation (``RtpBatch``)
- ``batch``     numpy classification of RTP media over many frames (the fast path)
- ``fastpcap``  the offline source (``FastPcapSource``) used by ``edge-agent replay``
- ``live``      the live source (scapy PF_PACKET socket) used by ``edge-agent run``
- ``stage``     a pipeline stage decoding ``Frame`` records from other sources
- ``pcapfile``  the scapy-based raw frame reader (reference, yields ``Frame``)
"""
