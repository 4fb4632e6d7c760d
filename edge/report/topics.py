"""The MQTT topic layout, in one place (documented in the README).

All topics sit under ``<prefix>/<site>/<agent>/`` (prefix default ``afe/v1``):

==========================  ========  =====  ===========================================
topic                       dir       QoS    payload
==========================  ========  =====  ===========================================
``report/<kind>``           up        1      one report (afe.report/1 JSON); MQTT 5
                                             user property ``id`` = report id
``status``                  up        1, R   presence: birth ``{"state": "online", ...}``;
                                             will / clean exit ``{"state": "offline"}``
``heartbeat``               up        0      link and process health every heartbeat_s
``down/config``             down      1      runtime config update (Ed25519-signed)
``down/watchlist``          down      1      watchlist replacement (Ed25519-signed)
``down/command``            down      1      a command: ping, heartbeat, ... (signed)
``up/ack``                  up        1      the answer to every downlink message,
                                             with its correlation id
==========================  ========  =====  ===========================================

R = retained. Reports are at-least-once: the subscriber drops duplicates by ``id``.
"""

from __future__ import annotations

DOWNLINK_KINDS = ("config", "watchlist", "command")


def agent_root(prefix: str, site: str, agent: str) -> str:
    return f"{prefix}/{site}/{agent}"


def report_topic(prefix: str, site: str, agent: str, kind: str) -> str:
    """Reports: ``<prefix>/<site>/<agent>/report/<kind>``, QoS 1."""
    return f"{prefix}/{site}/{agent}/report/{kind}"


def report_filter(prefix: str, site: str = "+", agent: str = "+") -> str:
    """Subscription filter for every report (of one site / agent if given)."""
    return f"{prefix}/{site}/{agent}/report/#"


def status_topic(prefix: str, site: str, agent: str) -> str:
    """Retained presence (birth / will): ``<prefix>/<site>/<agent>/status``."""
    return f"{prefix}/{site}/{agent}/status"


def heartbeat_topic(prefix: str, site: str, agent: str) -> str:
    """Periodic health: ``<prefix>/<site>/<agent>/heartbeat``, QoS 0, not retained."""
    return f"{prefix}/{site}/{agent}/heartbeat"


def downlink_topic(prefix: str, site: str, agent: str, what: str) -> str:
    """Commands, config and watchlists to one agent: ``<prefix>/<site>/<agent>/down/<what>``."""
    return f"{prefix}/{site}/{agent}/down/{what}"


def downlink_filter(prefix: str, site: str, agent: str) -> str:
    """What the agent subscribes to: ``<prefix>/<site>/<agent>/down/+``, QoS 1."""
    return f"{prefix}/{site}/{agent}/down/+"


def response_topic(prefix: str, site: str, agent: str) -> str:
    """Acknowledgements of downlink messages: ``<prefix>/<site>/<agent>/up/ack``."""
    return f"{prefix}/{site}/{agent}/up/ack"
