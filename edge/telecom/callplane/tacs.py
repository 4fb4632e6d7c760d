"""Type Allocation Codes (first 8 IMEI digits) of cellular *modules* (GSM/LTE modules
used in SIM-boxes, GoIP gateways and IoT devices).

A weak signal on its own: IoT data modules carry the same TACs, and GoIP lets the
operator rewrite the IMEI to a phone's. The list stands in for the GSMA TAC database
an operator would load; the event simulator draws module IMEIs from it.
"""

from __future__ import annotations

MODULE_TACS: frozenset[str] = frozenset({
    "86220004", "86348703", "86241103", "86725503", "86069604", "86191005",
    "35866605", "35524108", "86143304", "86768404", "86278305", "86481504",
    "35451207", "86532706", "35907309", "86815402",
})


def is_module_tac(imei: str | None) -> bool:
    """True when the IMEI's TAC is a known module TAC."""
    return imei is not None and imei[:8] in MODULE_TACS
