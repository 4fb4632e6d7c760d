"""Packet capture: pcap/pcapng files and live interfaces, yielding raw frames."""
