"""Personal data of a waybill on its way into a report (field-formats 2f).

``sender_id``, ``sender_phone`` and ``receiver_phone`` are personal: the reporter
(edge/report/reporter.py) replaces subjects of those types, and evidence features
*named* by those types, with keyed pseudonyms (phones share the ``phone`` domain, so a
sender phone matches the same number seen as an MSISDN at a base station). Decision
stages should put a waybill's people into a report only through these helpers, so
nothing personal can reach a report in clear under another name.
"""

from __future__ import annotations

from edge.courier.records import Waybill
from edge.detection import Scalar, Subject

PERSONAL_FIELDS = ("sender_id", "sender_phone", "receiver_phone")


def waybill_related(wb: Waybill) -> list[Subject]:
    """The waybill and its people as report subjects (the people pseudonymised)."""
    out = [Subject("waybill", wb.waybill)]
    for name in PERSONAL_FIELDS:
        value = getattr(wb, name)
        if value:
            out.append(Subject(name, value))
    return out


def waybill_features(wb: Waybill) -> dict[str, Scalar]:
    """Evidence features of a waybill; personal ones under their own type's name."""
    feats: dict[str, Scalar] = {"waybill": wb.waybill, "declared": wb.declared,
                                "declared_value_cny": wb.declared_value_cny,
                                "sender_verified": wb.sender_verified,
                                "origin": wb.origin, "dest": wb.dest}
    for name in PERSONAL_FIELDS:
        value = getattr(wb, name)
        if value:
            feats[name] = value
    return feats
