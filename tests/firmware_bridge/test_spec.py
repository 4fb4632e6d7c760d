"""PROTOCOL.md is current, and its test vectors decode (and encode) as written."""

from __future__ import annotations

import re
from pathlib import Path

from firmware_bridge import messages as M
from firmware_bridge import spec
from firmware_bridge.codec import Codec, Decoded, LinkKey

DOC = Path(spec.__file__).with_name("PROTOCOL.md")


def test_the_generated_part_of_the_protocol_document_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    a, b = text.index(spec.BEGIN), text.index(spec.END) + len(spec.END)
    assert text[a:b] == spec.generated(), \
        "run: python -m firmware_bridge.spec --update firmware_bridge/PROTOCOL.md"


def test_the_documents_test_vectors_decode_to_their_messages() -> None:
    text = DOC.read_text(encoding="utf-8")
    wires = [bytes.fromhex(m.replace(" ", ""))
             for m in re.findall(r"^wire +([0-9a-f ]+)$", text, re.M)]
    vecs = spec.vectors()
    assert len(wires) == len(vecs) >= 5
    for wire, (title, msg, signed, seq, _) in zip(wires, vecs, strict=True):
        rx = Codec(LinkKey(spec.VECTOR_SECRET, 1)) if signed else Codec()
        (got,) = rx.feed(wire, spec.VECTOR_NOW)
        assert isinstance(got, Decoded), (title, got)
        assert got.msg == msg and got.seq == seq and (got.link_id == 0) == signed
        mt = M.BY_CLASS[type(msg)]
        # the payload bytes in the document parse with the construct reference too
        assert mt.ref_decode(mt.encode(msg)) == msg
        tx = Codec(LinkKey(spec.VECTOR_SECRET, 0)) if signed else Codec()
        assert tx.encode(msg, seq, got.flags & 0x06, spec.VECTOR_NOW) == wire
