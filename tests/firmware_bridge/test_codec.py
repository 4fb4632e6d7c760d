"""The frame codec: resync through garbage and bit flips, fuzzing, authentication."""

from __future__ import annotations

import struct

from bridge_strategies import any_message
from cobs import cobs
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import messages as M
from firmware_bridge.codec import (
    HEADER,
    HEADER_LEN,
    SEEDS,
    Codec,
    Decoded,
    DecodeError,
    LinkKey,
)
from firmware_bridge.schema import crc32c

NOW = 1_767_225_600.0
SECRET = bytes(range(32))


def _pair() -> tuple[Codec, Codec]:
    return Codec(LinkKey(SECRET, 0)), Codec(LinkKey(SECRET, 1))


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    pts = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in pts + [len(data)]:
        out.append(data[prev:p])
        prev = p
    return out


frame_case = st.tuples(
    any_message,
    st.binary(max_size=40),                                  # garbage before the frame
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 7)), max_size=3),  # flips
    st.booleans())                                           # flip at all


@given(st.lists(frame_case, min_size=1, max_size=12), st.lists(st.integers(0, 10_000),
                                                               max_size=8), st.booleans())
@settings(max_examples=300, deadline=None)
def test_garbage_and_bit_flips_cost_exactly_the_corrupted_frames(
        cases: list, cuts: list[int], signed: bool) -> None:
    tx, rx = _pair() if signed else (Codec(), Codec())
    stream = bytearray()
    want = []
    for i, (msg, garbage, flips, flip) in enumerate(cases):
        stream += garbage
        original = tx.encode(msg, seq=i, now=NOW + i)
        wire = bytearray(original)
        if flip:
            for pos, bit in flips:
                wire[pos % len(wire)] ^= 1 << bit
        if wire == original:  # no flips, or flips that cancelled out
            want.append((i, msg))
        stream += wire
    got = []
    for chunk in _chunks(bytes(stream), cuts):
        for r in rx.feed(chunk, NOW + len(cases)):
            if isinstance(r, Decoded):
                got.append((r.seq, r.msg))
    assert got == want


@given(st.binary(max_size=600), st.booleans())
@settings(max_examples=400, deadline=None)
def test_fuzzing_the_decoder_never_raises(data: bytes, signed: bool) -> None:
    rx = _pair()[1] if signed else Codec()
    for r in rx.feed(data, NOW):
        assert isinstance(r, (Decoded, DecodeError))
    rx.feed(data + b"\x00", NOW)


@given(st.sampled_from(sorted(M.BY_TYPE)), st.binary(max_size=120), st.integers(0, 7))
@settings(max_examples=400, deadline=None)
def test_frames_with_valid_crc_and_random_payload_are_counted_not_raised(
        type_id: int, payload: bytes, flags: int) -> None:
    """Past COBS and the CRC, so the payload decoder itself is fuzzed."""
    body = HEADER.pack(1, type_id, flags & 0x06, 1, len(payload)) + payload
    body += struct.pack("<I", crc32c(body, SEEDS[type_id]))
    rx = Codec()
    out = rx.feed(b"\x00" + cobs.encode(body) + b"\x00")
    assert len(out) == 1
    if isinstance(out[0], DecodeError):
        assert out[0].reason == "payload"
        assert rx.counters()["errors.payload"] == 1
    else:
        assert M.encode_payload(out[0].msg) == payload


def test_a_frame_with_another_schema_is_rejected_by_its_crc() -> None:
    """MAVLink's CRC_EXTRA: the same bytes under a different definition do not pass."""
    msg = M.Ack(seq=5, type=0x12)
    wire = Codec().encode_raw(M.Ack.TYPE, M.encode_payload(msg), 1,  # type: ignore[attr-defined]
                              schema=M.BY_TYPE[M.Ack.TYPE].schema_id ^ 1)  # type: ignore[attr-defined]
    rx = Codec()
    assert [r.reason for r in rx.feed(wire)] == ["crc"]  # type: ignore[union-attr]


def test_replayed_reordered_stale_future_forged_and_unsigned_frames_are_counted() -> None:
    tx, rx = _pair()
    a = tx.encode(M.Heartbeat(1, 0, 0), 1, now=NOW)
    b = tx.encode(M.Heartbeat(2, 0, 0), 2, now=NOW)
    assert isinstance(rx.feed(b, NOW)[0], Decoded)
    r = rx.feed(a, NOW)[0]  # reordered: older than the last accepted
    assert isinstance(r, DecodeError) and r.reason == "replayed"
    r = rx.feed(b, NOW)[0]  # the same frame again
    assert isinstance(r, DecodeError) and r.reason == "replayed"
    tx2, rx2 = _pair()
    r = rx2.feed(_pair()[0].encode(M.Heartbeat(3, 0, 0), 3, now=NOW - 600), NOW)[0]
    assert isinstance(r, DecodeError) and r.reason == "stale"
    r = rx2.feed(_pair()[0].encode(M.Heartbeat(3, 0, 0), 4, now=NOW + 600), NOW)[0]
    assert isinstance(r, DecodeError) and r.reason == "future"
    # forged: payload changed and the CRC made good again, the MAC cannot be
    good = cobs.decode(tx2.encode(M.Heartbeat(4, 0, 0), 5, now=NOW)[1:-1])
    bad = bytearray(good[:-4])
    bad[HEADER_LEN] ^= 0xFF
    bad += struct.pack("<I", crc32c(bytes(bad), SEEDS[M.Heartbeat.TYPE]))  # type: ignore[attr-defined]
    r = rx2.feed(b"\x00" + cobs.encode(bytes(bad)) + b"\x00", NOW)[0]
    assert isinstance(r, DecodeError) and r.reason == "forged"
    # another key: forged too
    other = Codec(LinkKey(b"x" * 32, 0))
    assert rx2.feed(other.encode(M.Heartbeat(5, 0, 0), 6, now=NOW), NOW)[0].reason == "forged"  # type: ignore[union-attr]
    # unsigned when the link requires authentication
    assert rx2.feed(Codec().encode(M.Heartbeat(6, 0, 0), 7), NOW)[0].reason == "unsigned"  # type: ignore[union-attr]
    # its own frames sent back
    assert rx2.feed(rx2.encode(M.Heartbeat(7, 0, 0), 8, now=NOW), NOW)[0].reason == "reflected"  # type: ignore[union-attr]
    c = rx2.counters()
    assert c["errors.stale"] == 1 and c["errors.future"] == 1 and c["errors.forged"] == 2
    assert c["errors.unsigned"] == 1 and c["errors.reflected"] == 1 and c["errors.auth"] == 6
    assert rx.counters()["errors.replayed"] >= 2
    # and the link still works
    assert isinstance(rx2.feed(tx2.encode(M.Heartbeat(8, 0, 0), 9, now=NOW), NOW)[0], Decoded)


def test_a_frame_without_delimiter_for_too_long_is_dropped_and_counted() -> None:
    rx = Codec()
    assert [r.reason for r in rx.feed(b"\x01" * 3000)] == ["too_long"]  # type: ignore[union-attr]
    ok = Codec().encode(M.Heartbeat(1, 0, 0), 1)
    out = rx.feed(b"\x01" * 10 + ok)
    assert isinstance(out[-1], Decoded)
