"""The MQTT topic layout, in one place (documented in the README)."""

from __future__ import annotations


def report_topic(prefix: str, site: str, agent: str, kind: str) -> str:
    """Reports: ``<prefix>/<site>/<agent>/report/<kind>``, QoS 1."""
    return f"{prefix}/{site}/{agent}/report/{kind}"


def status_topic(prefix: str, site: str, agent: str) -> str:
    """Retained presence (birth / will): ``<prefix>/<site>/<agent>/status``."""
    return f"{prefix}/{site}/{agent}/status"


def downlink_topic(prefix: str, site: str, agent: str, what: str) -> str:
    """Commands, config and watchlists to one agent: ``<prefix>/<site>/<agent>/down/<what>``."""
    return f"{prefix}/{site}/{agent}/down/{what}"


def response_topic(prefix: str, site: str, agent: str) -> str:
    return f"{prefix}/{site}/{agent}/up/ack"
