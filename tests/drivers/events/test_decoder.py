"""The sans-IO event line decoder: good lines, garbage, missing and mistyped fields."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from drivers.events.decoder import EventDecoder
from edge.records import BaseStationEvent, Malformed

IMSI = "460001234567890"
IMEI = "35123456789012"


def line(**kw: object) -> bytes:
    base: dict[str, object] = {"ts": 1767225600.5, "type": "call_start", "imsi": IMSI}
    base.update(kw)
    return orjson.dumps({k: v for k, v in base.items() if v is not ...})


def test_full_event_decodes() -> None:
    d = EventDecoder("t")
    ev = d.decode_line(line(imei=IMEI, msisdn="8613800000000", cell="46000-1-2", dir="mo",
                            peer="8613900000000", call_id="c1"), 1)
    assert isinstance(ev, BaseStationEvent)
    assert (ev.ts, ev.type, ev.imsi, ev.imei, ev.dir, ev.peer, ev.call_id) == (
        1767225600.5, "call_start", IMSI, IMEI, "mo", "8613900000000", "c1")
    end = d.decode_line(line(type="call_end", duration_s=12, cause="normal", call_id="c1"), 2)
    assert isinstance(end, BaseStationEvent) and end.duration_s == 12.0
    assert isinstance(end.duration_s, float)
    att = d.decode_line(line(type="attach", auth_ms=35, imei="3512345678901234"), 3)
    assert isinstance(att, BaseStationEvent) and att.auth_ms == 35.0
    data = d.decode_line(line(type="data", bytes=1000), 4)
    assert isinstance(data, BaseStationEvent) and data.bytes == 1000
    assert d.counters()["decoded"] == 4 and d.malformed == 0


@pytest.mark.parametrize("raw,reason", [
    (b"not json at all", "not JSON"),
    (b"[1, 2, 3]", "not a JSON object"),
    (b'"a string"', "not a JSON object"),
    (b'{"type": "sms", "imsi": "460001234567890"}', "missing ts"),
    (b'{"ts": 1, "imsi": "460001234567890"}', "missing type"),
    (b'{"ts": 1, "type": "sms"}', "missing imsi"),
    (b'{"ts": "x", "type": "sms", "imsi": "460001234567890"}', "ts is not"),
    (b'{"ts": -5, "type": "sms", "imsi": "460001234567890"}', "ts is not"),
    (b'{"ts": 1, "type": "sms", "imsi": "12345"}', "imsi is not 15 digits"),
    (b'{"ts": 1, "type": "sms", "imsi": 460001234567890}', "imsi is not 15 digits"),
    (b'{"ts": 1, "type": 7, "imsi": "460001234567890"}', "type is not a string"),
    (b'{"ts": 1, "type": "sms", "imsi": "460001234567890", "imei": "12"}', "imei is not"),
    (b'{"ts": 1, "type": "sms", "imsi": "460001234567890", "peer": 5}', "peer is not"),
    (b'{"ts": 1, "type": "sms", "imsi": "460001234567890", "dir": "up"}', "dir is not"),
    (b'{"ts": 1, "type": "call_end", "imsi": "460001234567890", "duration_s": -1}',
     "duration_s"),
    (b'{"ts": 1, "type": "call_end", "imsi": "460001234567890", "duration_s": true}',
     "duration_s"),
    (b'{"ts": 1, "type": "attach", "imsi": "460001234567890", "auth_ms": "9"}', "auth_ms"),
    (b'{"ts": 1, "type": "data", "imsi": "460001234567890", "bytes": 1.5}', "bytes"),
    (b'{"ts": 1, "type": "data", "imsi": "460001234567890"', "not JSON"),
    (b"\xff\xfe garbage \x00", "not JSON"),
])
def test_bad_lines_are_counted_with_position(raw: bytes, reason: str) -> None:
    d = EventDecoder("feed.jsonl")
    rec = d.decode_line(raw, 42)
    assert isinstance(rec, Malformed), rec
    assert reason in rec.reason and rec.position == "line 42" and rec.source == "feed.jsonl"
    assert d.malformed == 1 and d.decoded == 0


def test_unknown_type_and_fields_are_counted_and_ignored() -> None:
    d = EventDecoder()
    assert d.decode_line(line(type="paging"), 1) is None
    ev = d.decode_line(line(vendor_x=1, imei=IMEI), 2)
    assert isinstance(ev, BaseStationEvent)
    assert d.decode_line(b"   \n", 3) is None
    assert d.counters() == {"decoded": 1, "malformed": 0, "unknown_type": 1,
                            "unknown_fields": 1, "blank": 1}


@settings(max_examples=300, deadline=None)
@given(hs.binary(max_size=200))
def test_never_raises_on_garbage(raw: bytes) -> None:
    rec = EventDecoder().decode_line(raw, 1)
    assert rec is None or isinstance(rec, BaseStationEvent | Malformed)


@settings(max_examples=200, deadline=None)
@given(hs.dictionaries(hs.sampled_from(["ts", "type", "imsi", "imei", "dir", "peer",
                                        "duration_s", "auth_ms", "bytes", "cell"]),
                       hs.one_of(hs.none(), hs.booleans(), hs.integers(), hs.floats(),
                                 hs.text(max_size=20)), max_size=10))
def test_never_raises_on_odd_objects(obj: dict) -> None:
    rec = EventDecoder().decode_line(json.dumps(obj).encode(), 1)
    assert rec is None or isinstance(rec, BaseStationEvent | Malformed)
