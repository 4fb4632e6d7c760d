"""A waybill's people never reach a report in clear."""

from __future__ import annotations

import orjson

from edge.courier.privacy import waybill_features, waybill_related
from edge.courier.records import Waybill
from edge.detection import Detection, Evidence, Subject
from edge.report.ids import IdFactory
from edge.report.pseudonym import Pseudonymiser
from edge.report.reporter import Reporter

WB = Waybill("SF1234567890123", declared="clothes", declared_value_cny=200,
             sender_verified=False, sender_id="330102199001011234",
             sender_phone="13800138000", receiver_phone="+8613900139000",
             origin="Yiwu", dest="Shenzhen")


def test_personal_fields_pseudonymised_and_phone_domain_shared() -> None:
    pseudo = Pseudonymiser(b"depot-privacy-key-0001")
    rep = Reporter(site="s", agent="a", pseudonymiser=pseudo, ids=IdFactory("t"), sinks=[])
    det = Detection(ts=1.7e9, kind="parcel.card_batch", severity="high", score=0.9,
                    subject=Subject("parcel", "L1-1"),
                    evidence=[Evidence("declared clothes", waybill_features(WB))],
                    route=["police"], related=waybill_related(WB))
    report = rep.build(det)
    blob = orjson.dumps(report)
    for clear in (b"330102199001011234", b"13800138000", b"13900139000"):
        assert clear not in blob
    assert b"SF1234567890123" in blob and b"Yiwu" in blob  # not personal
    related = {s["type"]: s for s in report["related"]}
    assert related["sender_phone"]["pseudonymised"] is True
    assert related["sender_phone"]["id"] == pseudo.pseudonym("msisdn", "13800138000")
