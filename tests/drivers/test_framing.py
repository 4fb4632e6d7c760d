"""Sans-IO framers: any chunking gives the same frames; damage costs one frame and
is counted; memory stays bounded."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.framing import (
    CRCS,
    FrameError,
    LengthCrcFramer,
    LineFramer,
    StxEtxFramer,
    crc16_ccitt,
    crc16_modbus,
)


def chunked(framer: Any, data: bytes, cuts: list[int]) -> list[Any]:
    out: list[Any] = []
    pos = 0
    for c in sorted(set(cuts)):
        out += framer.feed(data[pos:c])
        pos = c
    return out + framer.feed(data[pos:])


payloads = st.lists(st.binary(min_size=0, max_size=60), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(payloads, st.lists(st.integers(0, 1000), max_size=30))
def test_length_crc_any_chunking(msgs: list[bytes], cuts: list[int]) -> None:
    tx = LengthCrcFramer()
    data = b"".join(tx.encode(m) for m in msgs)
    assert chunked(LengthCrcFramer(), data, [c % (len(data) + 1) for c in cuts]) == msgs


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=40).filter(lambda b: 2 not in b and 3 not in b),
                min_size=1, max_size=12),
       st.lists(st.integers(0, 600), max_size=30), st.booleans())
def test_stx_etx_any_chunking(msgs: list[bytes], cuts: list[int], bcc: bool) -> None:
    data = b"".join(StxEtxFramer(bcc=bcc).encode(m) for m in msgs)
    got = chunked(StxEtxFramer(bcc=bcc), data, [c % (len(data) + 1) for c in cuts])
    assert got == msgs


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=40).filter(
    lambda b: b"\r" not in b and b"\n" not in b), min_size=1, max_size=12),
    st.lists(st.integers(0, 600), max_size=30))
def test_lines_any_chunking(msgs: list[bytes], cuts: list[int]) -> None:
    data = b"".join(m + b"\r\n" for m in msgs)
    assert chunked(LineFramer(), data, [c % (len(data) + 1) for c in cuts]) == msgs


def test_line_terminators_and_limits() -> None:
    f = LineFramer((b"\r\n", b"\r", b"\n"), max_len=8)
    assert f.feed(b"a\rb\nc\r") == [b"a", b"b", b"c"]
    assert f.feed(b"\nd\r\n") == [b"d"]  # the split CR LF made no empty line
    out = f.feed(b"0123456789abcdef")  # runaway: counted once, memory bounded
    assert [type(x) for x in out] == [FrameError] and out[0].reason == "too_long"
    assert f.pending() <= 1
    assert f.feed(b"ghij\r\nok\r\n") == [b"ok"]  # resynchronised at the terminator
    assert f.counters() == {"frames": 5, "errors.too_long": 1}
    with pytest.raises(ValueError):
        f.encode(b"a\rb")
    assert LineFramer(b"\x03").feed(b"x\x03y\x03") == [b"x", b"y"]
    assert LineFramer(skip_empty=False).feed(b"\r\n") == [b""]


def test_stx_etx_junk_nesting_and_bcc() -> None:
    f = StxEtxFramer(bcc=True)
    good = f.encode(b"W 12.5kg")
    bad = bytearray(good)
    bad[-1] ^= 0xFF
    out = f.feed(b"noise" + good + bytes(bad) + b"\x02half" + good)
    assert [x if isinstance(x, bytes) else x.reason for x in out] == \
        ["junk", b"W 12.5kg", "bcc", "stx_in_frame", b"W 12.5kg"]


def test_length_crc_resyncs_after_corruption() -> None:
    tx = LengthCrcFramer(crc="crc16-modbus", byteorder="little")
    frames = [tx.encode(bytes([i]) * 20) for i in range(5)]
    broken = bytearray(frames[2])
    broken[10] ^= 0x01  # one flipped bit in a payload
    rx = LengthCrcFramer(crc="crc16-modbus", byteorder="little")
    out = rx.feed(b"\x00\xaa" + frames[0] + frames[1] + bytes(broken) + frames[3] + frames[4])
    good = [x for x in out if isinstance(x, bytes)]
    assert good == [bytes([i]) * 20 for i in (0, 1, 3, 4)]
    assert rx.counters()["errors.crc"] == 1 and rx.counters()["frames"] == 4


def test_length_crc_bad_length_and_bounds() -> None:
    rx = LengthCrcFramer(max_len=16)
    out = rx.feed(b"\xaa\x55\xff\xff" + LengthCrcFramer().encode(b"ok"))
    assert [x if isinstance(x, bytes) else x.reason for x in out][-1] == b"ok"
    assert rx.counters()["errors.bad_length"] == 1
    with pytest.raises(ValueError):
        LengthCrcFramer(max_len=4).encode(b"too long")
    with pytest.raises(ValueError):
        LengthCrcFramer(crc="md5")
    one = LengthCrcFramer(length_bytes=1)
    assert one.max_len == 255


def test_crc_check_values() -> None:
    # the catalogue's check values for the ASCII string "123456789"
    assert crc16_ccitt(b"123456789") == 0x29B1
    assert crc16_modbus(b"123456789") == 0x4B37
    assert CRCS["crc16-xmodem"][0](b"123456789") == 0x31C3
    assert CRCS["crc32"][0](b"123456789") == 0xCBF43926
