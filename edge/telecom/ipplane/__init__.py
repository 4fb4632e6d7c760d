"""IP-plane GoIP / SIM-box detection on packets: SIP, SDP, RTP, DHCP/DNS, signatures,
per-endpoint state and the behaviour model."""
