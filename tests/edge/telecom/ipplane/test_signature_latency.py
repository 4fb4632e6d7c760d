"""Signature reports leave at the packet that completes the evidence, not a minute later."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edge.config import Config
from edge.telecom.ipplane.build import build_stages

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pcaputil import packets_from_pcap  # noqa: E402


@pytest.mark.parametrize("name", ["goip/startup.pcap", "goip/ddns.pcap"])
def test_first_signature_report_is_immediate(captures_dir: Path, name: str) -> None:
    (det,) = build_stages(Config())
    first = None
    for pkt in packets_from_pcap(captures_dir / name):
        out = [d for d in det.feed(pkt) if d.kind == "goip.endpoint"]
        if out:
            first = (out[0], pkt.ts)
            break
    assert first is not None, "no report from feed(): it waited for an evaluation tick"
    d, pkt_ts = first
    assert d.ts == pkt_ts and d.model is None  # signatures alone, at that packet
    # the next evaluation does not repeat it without new evidence
    later = [x for x in det.tick(pkt_ts + 61) if x.subject == d.subject]
    assert all(len(x.evidence) > len(d.evidence) for x in later)
