"""Message definitions: the fast codec agrees with construct, round trips, rejects."""

from __future__ import annotations

import dataclasses

import pytest
from bridge_strategies import any_message
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import messages as M
from firmware_bridge.schema import crc32c, pack_str, unpack_str


def test_crc32c_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"6789", crc32c(b"12345")) == 0xE3069283


@given(any_message)
@settings(max_examples=400, deadline=None)
def test_every_message_round_trips_and_matches_construct(msg: object) -> None:
    mt = M.BY_CLASS[type(msg)]
    wire = mt.encode(msg)
    assert wire == mt.ref_encode(msg)
    assert mt.decode(wire) == msg == mt.ref_decode(wire)


@given(st.sampled_from(sorted(M.BY_TYPE)), st.binary(max_size=80))
@settings(max_examples=600, deadline=None)
def test_fast_and_construct_accept_and_reject_alike(type_id: int, payload: bytes) -> None:
    mt = M.BY_TYPE[type_id]
    try:
        ref = mt.ref_decode(payload)
    except M.PayloadError:
        ref = None
    try:
        got = mt.decode(payload)
    except M.PayloadError:
        got = None
    # NaN != NaN: compare the re-encoded bytes
    if ref is None or got is None:
        assert ref is got is None
    else:
        assert mt.encode(got) == mt.encode(ref) == payload


@given(any_message, st.data())
@settings(max_examples=200, deadline=None)
def test_truncated_or_extended_payloads_are_refused(msg: object, data: st.DataObject) -> None:
    mt = M.BY_CLASS[type(msg)]
    wire = mt.encode(msg)
    with pytest.raises(M.PayloadError):
        mt.decode(wire + data.draw(st.binary(min_size=1, max_size=4)))
    if wire:
        cut = data.draw(st.integers(0, len(wire) - 1))
        try:
            short = mt.decode(wire[:cut])
        except M.PayloadError:
            return
        # a prefix that parses must be a different message (a shorter string field)
        assert short != msg


def test_packed_strings() -> None:
    assert pack_str("460001234567890")[0] == 0x80 | 8
    assert pack_str("46000-5815-9487") == (0x88, bytes.fromhex("46000d5815d9487f"))
    assert pack_str("mo") == (2, b"mo")
    for s in ("", "+8613800138000", "*#06#", "x" * 127, "é"):
        assert unpack_str(*pack_str(s)) == s
    with pytest.raises(ValueError):
        pack_str("x" * 128)
    with pytest.raises(ValueError):
        unpack_str(0x81, b"\xe1")  # reserved nibble


def test_dataclass_fields_match_the_wire_fields() -> None:
    for mt in M.BY_TYPE.values():
        assert [f.name for f in dataclasses.fields(mt.cls)] == \
            [n for n, k in mt.fields if k != "bitmap"]
        assert mt.cls.TYPE == mt.type_id  # type: ignore[attr-defined]


def test_subscriber_event_is_compact() -> None:
    ev = M.SubscriberEvent(1767225600.25, M.EVENT_TYPE_NUM["call_start"], "460001234567890",
                           imei="356938035643809", cell="46000-5815-9487",
                           dir=M.DIR_NUM["mo"], peer="8613800138000", call_id="c-12345")
    # the same event as a JSON line takes ~190 bytes
    assert len(M.encode_payload(ev)) <= 56


def test_unencodable_values_are_payload_errors() -> None:
    with pytest.raises(M.PayloadError):
        M.encode_payload(M.Ack(seq=70000, type=1))
    with pytest.raises(M.PayloadError):
        M.encode_payload(M.DeviceInfo(0, 0, 0, "x" * 200, "", ""))
    with pytest.raises(M.PayloadError):
        M.encode_payload("not a message")
