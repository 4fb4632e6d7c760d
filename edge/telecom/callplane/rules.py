"""Explicit rules for what is certain, on the per-SIM feature vector.

In: a feature vector (FEATURES order). Out: a :class:`RuleHit` or None. Rules are
deliberately strict: each one describes behaviour no hard negative in domain.md shows
(a phone does not carry four SIMs that only ever dial out; a person does not place
forty calls a day to forty strangers around the clock with nothing coming back).
Everything softer is left to the model.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.telecom.callplane.features import INDEX

_I = INDEX


@dataclass(slots=True, frozen=True)
class RuleHit:
    name: str
    reason: str
    features: tuple[str, ...]


def _outbound_only(x: list[float]) -> bool:
    return x[_I["mt_24h"]] == 0 and x[_I["sms_24h"]] == 0 and x[_I["data_24h"]] == 0


SIM_BANK = RuleHit(
    "sim_bank_rotation",
    "one device carried 4+ SIMs in 24 h and this SIM only dials out, to distinct numbers",
    ("max_imsis_per_imei", "imeis_per_imsi", "mo_24h", "mt_24h", "sms_24h", "data_24h",
     "distinct_peer_ratio"),
)
ROUND_THE_CLOCK = RuleHit(
    "outbound_round_the_clock",
    "40+ outgoing calls in 24 h to distinct numbers, night included, nothing incoming, "
    "no SMS, no data, static cell",
    ("mo_24h", "night_share", "distinct_peer_ratio", "mt_24h", "sms_24h", "data_24h",
     "cells_24h", "active_hours"),
)


def certain(x: list[float]) -> RuleHit | None:
    """The first rule the SIM's features satisfy, or None."""
    if not _outbound_only(x):
        return None
    if (x[_I["max_imsis_per_imei"]] >= 4 and x[_I["mo_24h"]] >= 5
            and x[_I["distinct_peer_ratio"]] >= 0.9):
        return SIM_BANK
    if (x[_I["mo_24h"]] >= 40 and x[_I["distinct_peer_ratio"]] >= 0.9
            and x[_I["night_share"]] >= 0.1 and x[_I["cells_24h"]] <= 2
            and x[_I["active_hours"]] >= 12):
        return ROUND_THE_CLOCK
    return None
