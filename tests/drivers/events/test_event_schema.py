"""The published JSON Schema of event lines agrees with the decoder."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest

from drivers.events.decoder import EventDecoder
from edge.records import BaseStationEvent, Malformed

SCHEMA = json.loads((Path(__file__).resolve().parents[3] / "drivers" / "events" /
                     "event.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def test_schema_is_valid_and_its_examples_decode() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    dec = EventDecoder()
    for ex in SCHEMA["examples"]:
        assert VALIDATOR.is_valid(ex)
        assert isinstance(dec.decode_line(json.dumps(ex).encode(), 1), BaseStationEvent)


def test_simulated_feed_validates() -> None:
    from simulators.telecom.events import EventSimConfig, write_events

    buf = io.BytesIO()
    write_events(EventSimConfig(seed=3, subscribers=60, hours=2.0), buf, None)
    lines = buf.getvalue().splitlines()
    assert len(lines) > 100
    for ln in lines:
        VALIDATOR.validate(json.loads(ln))


@pytest.mark.parametrize("obj", [
    {"type": "attach", "imsi": "460001234567890"},
    {"ts": -1, "type": "attach", "imsi": "460001234567890"},
    {"ts": 1.0, "type": "attach", "imsi": "46000123456789"},
    {"ts": 1.0, "type": "attach", "imsi": "460001234567890", "imei": "12ab"},
    {"ts": 1.0, "type": "sms", "imsi": "460001234567890", "dir": "up"},
    {"ts": 1.0, "type": "call_end", "imsi": "460001234567890", "duration_s": -3},
    {"ts": 1.0, "type": "data", "imsi": "460001234567890", "bytes": 1.5},
    {"ts": 1.0, "type": "call_start", "imsi": "460001234567890", "peer": 8613800138000},
])
def test_what_the_schema_refuses_the_decoder_rejects(obj: dict) -> None:
    assert not VALIDATOR.is_valid(obj)
    assert isinstance(EventDecoder().decode_line(json.dumps(obj).encode(), 1), Malformed)
