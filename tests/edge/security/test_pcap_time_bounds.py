"""pcap/pcapng readers bound packet times (issue 9): a pcapng with 1 s resolution and a
far-future stamp crashed replay; with microseconds it gave reports dated year 586524."""

from __future__ import annotations

import struct
from pathlib import Path

import orjson
import pytest

from drivers.capture.fastpcap import FastPcapSource
from drivers.capture.pcapfile import PcapFileSource
from drivers.capture.pcapio import open_records
from edge.cli.agent import main
from edge.records import Malformed
from edge.report.schema import validation_errors


def _block(btype: int, body: bytes) -> bytes:
    n = 12 + len(body) + (-len(body)) % 4
    return struct.pack("<II", btype, n) + body + b"\0" * ((-len(body)) % 4) + \
        struct.pack("<I", n)


def _pcapng_from(real: Path, tsresol: int, poison_ticks: list[int], every: int) -> bytes:
    """The frames of a real capture as pcapng with resolution 10**-tsresol, with a
    frame stamped ``poison`` (in ticks) after every ``every`` real frames."""
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    with open(real, "rb") as fh:
        blocks = list(open_records(fh, str(real)))
    lt = int(blocks[0].linktype[0])
    opt = struct.pack("<HHB", 9, 1, tsresol) + b"\0" * 3 + struct.pack("<HH", 0, 0)
    idb = _block(1, struct.pack("<HHI", lt, 0, 65535) + opt)
    out = [shb, idb]
    k = 0
    for blk in blocks:
        for o, c, t in zip(blk.off.tolist(), blk.caplen.tolist(), blk.ts.tolist(),
                           strict=True):
            frames = [(int(round(t * 10**tsresol)), blk.data[o:o + c])]
            if k % every == every - 1:
                frames.append((poison_ticks[(k // every) % len(poison_ticks)],
                               blk.data[o:o + c]))
            for ticks, data in frames:
                out.append(_block(6, struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF,
                                                 len(data), len(data)) + data))
            k += 1
    return b"".join(out)


@pytest.mark.parametrize("tsresol, poison", [
    (0, [2**64 - 1, 2**63 + 12345]),                 # 1 s resolution: 1.8e19 s
    (6, [18_500_000_000_000_000_000 % 2**64]),       # microseconds: year 586524
])
def test_far_future_pcapng_replays_with_counted_rejects(
        tsresol: int, poison: list[int], captures_dir: Path, tmp_path: Path) -> None:
    real = captures_dir / "sip" / "sipnab__sip-rtp-g711.pcap"
    f = tmp_path / "future.pcapng"
    f.write_bytes(_pcapng_from(real, tsresol, poison, every=50))
    n_poison = 852 // 50
    fast = list(FastPcapSource(f))
    bad = [r for r in fast if type(r) is Malformed]
    assert len(bad) == n_poison and all("impossible" in r.reason for r in bad)
    scapy = [r for r in PcapFileSource(f) if type(r) is Malformed]
    assert len(scapy) == n_poison
    out = tmp_path / "reports.jsonl"
    assert main(["replay", "--pcap", str(f), "--out", str(out), "--quiet"]) == 0
    reports = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert reports
    for r in reports:
        assert validation_errors(r) == []
        assert r["ts"].startswith("2016-"), r["ts"]  # the capture's own year
    status = reports[-1]["evidence"][0]["features"]
    assert status["malformed"] == n_poison
