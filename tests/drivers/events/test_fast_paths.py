"""The decoder's fast path and bulk entry points agree with the detailed path, and the
block-reading file source yields the same records as decoding line by line."""

from __future__ import annotations

from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as hs

from drivers.events.decoder import EventDecoder
from drivers.events.sources import JsonlEventFile

_VALUES = hs.one_of(
    hs.none(), hs.booleans(), hs.integers(-5, 2**40), hs.floats(allow_nan=False),
    hs.sampled_from([float("inf"), -1.0, 0.0, 12.5]),
    hs.sampled_from(["460001234567890", "35123456789012", "3512345678901234", "mo", "mt",
                     "call_start", "attach", "paging", "", "12a", "46000-1-2"]),
    hs.lists(hs.integers(-9, 9), max_size=2))
_KEYS = hs.sampled_from(["ts", "type", "imsi", "imei", "msisdn", "cell", "dir", "peer",
                         "call_id", "cause", "target_cell", "duration_s", "auth_ms",
                         "bytes", "vendor_x"])


@hs.composite
def event_objects(draw: hs.DrawFn) -> dict[str, object]:
    obj: dict[str, object] = {"ts": 1767225600.5, "type": "call_start",
                              "imsi": "460001234567890"}
    obj.update(draw(hs.dictionaries(_KEYS, _VALUES, max_size=6)))
    for k in draw(hs.lists(hs.sampled_from(["ts", "type", "imsi"]), max_size=1)):
        obj.pop(k, None)
    return obj


@settings(max_examples=400, deadline=None)
@given(event_objects())
def test_fast_path_equals_detailed_path(obj: dict[str, object]) -> None:
    raw = orjson.dumps(obj)
    fast, slow = EventDecoder("s"), EventDecoder("s")
    assert fast.decode_line(raw, 7) == slow._decode_checked(raw, 7)
    assert fast.counters() == slow.counters()


def test_block_equals_lines(tmp_path: Path) -> None:
    lines = [orjson.dumps({"ts": 1767225600.0 + i, "type": t, "imsi": "460001234567890",
                           "dir": "mo"}) for i, t in
             enumerate(["call_start", "sms", "paging", "attach"])]
    lines[1:1] = [b"", b"  ", b"{not json", b"[1]", b'{"ts": 1, "type": "sms"}']
    data = b"\n".join(lines)  # no final newline: the last line still counts
    one, bulk = EventDecoder("s"), EventDecoder("s")
    expect = [r for n, ln in enumerate(lines, 3) if (r := one.decode_line(ln, n)) is not None]
    assert bulk.decode_block(data, 3) == expect
    assert bulk.counters() == one.counters()
    # The file source reads in blocks smaller than a line here: same records, positions.
    p = tmp_path / "ev.jsonl"
    p.write_bytes(data)
    import drivers.events.sources as sources

    old = sources.BLOCK_BYTES
    sources.BLOCK_BYTES = 7
    try:
        src = JsonlEventFile(p)
        got = list(src)
    finally:
        sources.BLOCK_BYTES = old
    again = EventDecoder(src.name)
    want = [r for n, ln in enumerate(lines, 1) if (r := again.decode_line(ln, n)) is not None]
    assert got == want
    c = src.counters()  # the decoder's counters, plus the file's own (rotations, ...)
    assert {k: c[k] for k in again.counters()} == again.counters()
    assert src.bytes_read == len(data)


_GOOD = orjson.dumps({"ts": 1767225600.5, "type": "sms", "imsi": "460001234567890",
                      "imei": "35123456789012", "dir": "mo", "peer": "8613800000000"})
_LINES = hs.sampled_from([
    _GOOD, _GOOD, _GOOD, b"", b"  ", b"\r", _GOOD + b"\r",
    _GOOD + b"," + _GOOD,  # two objects on one line
    _GOOD[:-2], b'"}',  # a string cut by a newline: the two halves are not one event
    _GOOD.replace(b"sms", b"paging"), _GOOD.replace(b"460001234567890", b"46000123456789a"),
    _GOOD.replace(b"35123456789012", "3512345678901\u0663".encode()),
    _GOOD.replace(b'"mo"', b'"up"'), b"[", b"]", _GOOD + b"]", b"[" + _GOOD,
    _GOOD[:-1] + b',"cause":"' + b"x" * 120 + b'"}',  # longer than max_line below
])


@settings(max_examples=300, deadline=None)
@given(hs.lists(_LINES, max_size=40), hs.booleans(), hs.sampled_from([3, 256]))
def test_block_fast_path_equals_lines(lines: list[bytes], final_newline: bool,
                                      chunk: int) -> None:
    """Whole-block and chunked decoding give what line-by-line decoding gives, whatever
    odd lines the block holds (lines that could merge or split array elements)."""
    import drivers.events.decoder as decoder

    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    one, bulk = EventDecoder("s", max_line=200), EventDecoder("s", max_line=200)
    split = data.split(b"\n")
    if split[-1] == b"":
        split.pop()
    expect = [r for n, ln in enumerate(split, 1) if (r := one.decode_line(ln, n)) is not None]
    old, decoder.CHUNK_LINES = decoder.CHUNK_LINES, chunk
    try:
        assert bulk.decode_block(data, 1) == expect
    finally:
        decoder.CHUNK_LINES = old
    assert bulk.counters() == one.counters()


def test_decoded_counter_moves_with_the_records_taken() -> None:
    d = EventDecoder("s")
    it = d.iter_block(b"\n".join([_GOOD] * 10) + b"\n")
    next(it)
    next(it)
    assert d.counters()["decoded"] == 2
    assert len(list(it)) == 8
    assert d.counters()["decoded"] == 10
