"""Hypothesis strategies for bridge messages (shared by the bridge tests)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from firmware_bridge import messages as M
from firmware_bridge.schema import MAX_STR, NIBBLE_CHARS, base_kind

_INT = {"u8": 0xFF, "u16": 0xFFFF, "u32": 0xFFFFFFFF, "u64": (1 << 64) - 1,
        "varint": (1 << 63) - 1}

wire_str = st.one_of(
    st.text(alphabet=NIBBLE_CHARS, min_size=1, max_size=2 * MAX_STR),
    st.text(max_size=30).filter(lambda s: len(s.encode()) <= MAX_STR))


def _field(kind: str) -> st.SearchStrategy[Any]:
    k = base_kind(kind)
    if k in _INT:
        s: st.SearchStrategy[Any] = st.integers(0, _INT[k])
    elif k == "f64":
        s = st.floats(allow_nan=False)
    elif k == "str":
        s = wire_str
    elif k == "bytes":
        s = st.binary(max_size=300)
    elif k.startswith("raw"):
        n = int(k[3:])
        s = st.binary(min_size=n, max_size=n)
    else:
        raise AssertionError(kind)
    return st.none() | s if kind.endswith("?") else s


def message_of(mt: M.MessageType) -> st.SearchStrategy[Any]:
    fields = {n: _field(k) for n, k in mt.fields if k != "bitmap"}
    return st.builds(mt.cls, **fields)


any_message = st.sampled_from(sorted(M.BY_TYPE)).flatmap(lambda t: message_of(M.BY_TYPE[t]))
