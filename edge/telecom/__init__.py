"""Telecom side: call-plane (base-station events) and IP-plane (packets) detection."""
