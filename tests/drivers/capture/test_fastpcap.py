"""The block reader and the numpy RTP path give the records the per-frame path gives."""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from drivers.capture.fastpcap import FastPcapSource
from drivers.capture.pcapfile import PcapFileSource
from drivers.capture.stage import FrameDecoderStage
from edge.errors import InputError
from edge.records import Frame, Malformed, Packet, RtpBatch
from simulators.telecom.pcap import PcapSimConfig, simulate_pcap


@pytest.fixture(scope="module")
def sim_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fast")
    simulate_pcap(PcapSimConfig(seed=21, duration_s=40, softphones=8, ipphones=3, pbx_trunks=1,
                                goip_plain=1, goip_masked=1, simbank_clients=1, lines=4),
                  d / "sim.pcap")
    return d / "sim.pcap"


def flows(recs: list[Any]) -> dict[tuple[Any, ...], list[Any]]:
    agg: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0, 0, 0.0, 0, None, None])
    for b in recs:
        if type(b) is RtpBatch:
            a = agg[(b.src, b.dst, b.sport, b.dport, b.ssrc, b.teid)]
            a[0] += b.packets
            a[1] += b.bytes
            a[2] += b.lost
            a[3] += b.jitter_s * max(b.packets - 1, 0)
            a[4] = max(a[4], b.frame)
            a[5] = b.seq_first if a[5] is None else a[5]
            a[6] = b.seq_last
    return dict(agg)


def test_numpy_path_equals_per_frame_path(sim_pcap: Path) -> None:
    check_numpy_equals_per_frame(sim_pcap, 10_000)


@pytest.mark.parametrize("kind", ["erspan1", "erspan2", "erspan3", "gre", "gre_opts",
                                  "gre_teb", "mpls", "mpls_pw", "nested", "vxlan"])
def test_numpy_path_under_tunnels(tmp_path: Path, kind: str) -> None:
    simulate_pcap(PcapSimConfig(seed=22, duration_s=20, softphones=4, ipphones=1,
                                pbx_trunks=1, goip_plain=1, goip_masked=1, simbank_clients=0,
                                lines=2, gtp_share=0.5, encap=kind), tmp_path / "t.pcap")
    # the mirror's tunnels are peeled in numpy; VXLAN still goes per frame
    src = FastPcapSource(tmp_path / "t.pcap", dense_min=16)
    rtp = sum(b.packets for b in src if type(b) is RtpBatch)
    assert rtp > 1000
    if kind == "vxlan":
        assert src.fast_rtp == 0
    else:  # nearly all media took the numpy path (the rest: sparse seconds, GTP seq)
        assert src.fast_rtp >= 0.8 * rtp, (src.fast_rtp, rtp)
    check_numpy_equals_per_frame(tmp_path / "t.pcap", 0, 4)


def check_numpy_equals_per_frame(sim_pcap: Path, min_fast: int, min_flows: int = 11) -> None:
    fast_src = FastPcapSource(sim_pcap, dense_min=16)
    fast = list(fast_src)
    slow = list(FastPcapSource(sim_pcap, dense_min=1 << 60))  # every frame per frame
    assert fast_src.fast_rtp >= min_fast  # the numpy path really ran
    assert [p for p in fast if type(p) is Packet] == [p for p in slow if type(p) is Packet]
    ff, sf = flows(fast), flows(slow)
    assert ff.keys() == sf.keys() and len(ff) >= min_flows
    for k in ff:
        assert ff[k][:3] == sf[k][:3] and ff[k][4:] == sf[k][4:], k
        assert ff[k][3] == pytest.approx(sf[k][3], rel=1e-6, abs=1e-9)
    # per (flow, second) the totals agree too: batches never straddle a second
    def per_second(recs: list[Any]) -> dict[tuple[Any, ...], int]:
        d: dict[tuple[Any, ...], int] = defaultdict(int)
        for b in recs:
            if type(b) is RtpBatch:
                assert int(b.first_ts) == int(b.ts)
                d[(b.src, b.dst, b.sport, b.dport, b.ssrc, int(b.ts))] += b.packets
        return dict(d)
    assert per_second(fast) == per_second(slow)


def test_output_is_time_ordered_enough(sim_pcap: Path) -> None:
    newest = last_packet = 0.0
    for r in FastPcapSource(sim_pcap):
        if type(r) is Packet:
            assert r.ts >= last_packet
            last_packet = r.ts
        elif type(r) is RtpBatch:
            assert r.ts >= newest - 3.0  # a batch is handed out within ~2 s of closing
        newest = max(newest, r.ts)


def test_small_blocks_give_the_same_records(sim_pcap: Path) -> None:
    big = list(FastPcapSource(sim_pcap))
    small = list(FastPcapSource(sim_pcap, block_bytes=4096))
    assert [p for p in big if type(p) is Packet] == [p for p in small if type(p) is Packet]
    assert flows(big).keys() == flows(small).keys()
    assert {k: v[:3] for k, v in flows(big).items()} == {k: v[:3] for k, v in flows(small).items()}


def test_frame_decoder_stage_matches_the_fast_source(sim_pcap: Path) -> None:
    stage = FrameDecoderStage()
    out: list[Any] = []
    for fr in PcapFileSource(sim_pcap):
        assert type(fr) is Frame
        out.extend(stage.feed(fr))
    out.extend(stage.flush(0.0))
    fast = list(FastPcapSource(sim_pcap))
    pk = [(p.frame, p.src, p.dst, p.sport, p.dport, p.payload) for p in out if type(p) is Packet]
    assert pk == [(p.frame, p.src, p.dst, p.sport, p.dport, p.payload)
                  for p in fast if type(p) is Packet]
    assert {k: v[0] for k, v in flows(out).items()} == {k: v[0] for k, v in flows(fast).items()}


def editcap() -> str:
    exe = shutil.which("editcap")
    if exe is None:
        pytest.fail("editcap is not installed (Debian package wireshark-common / tshark)")
    return exe


@pytest.mark.parametrize("fmt", ["pcapng", "nsecpcap"])
def test_pcapng_and_nanosecond_pcap(sim_pcap: Path, tmp_path: Path, fmt: str) -> None:
    conv = tmp_path / f"sim.{fmt}"
    subprocess.run([editcap(), "-F", fmt, str(sim_pcap), str(conv)], check=True,
                   capture_output=True)
    ref = [p for p in FastPcapSource(sim_pcap) if type(p) is Packet]
    got = [p for p in FastPcapSource(conv) if type(p) is Packet]
    assert len(got) == len(ref) > 100
    for a, b in zip(ref, got, strict=True):
        assert (a.frame, a.src, a.dport, a.payload) == (b.frame, b.src, b.dport, b.payload)
        assert a.ts == pytest.approx(b.ts, abs=1e-6)


def test_truncated_file_keeps_frames_and_ends_with_malformed(sim_pcap: Path,
                                                             tmp_path: Path) -> None:
    data = sim_pcap.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2 + 7])
    recs = list(FastPcapSource(cut))
    assert type(recs[-1]) is not Malformed or "truncated" in recs[-1].reason
    bad = [r for r in recs if type(r) is Malformed]
    assert len(bad) == 1 and "truncated" in bad[0].reason
    assert sum(1 for r in recs if type(r) is Packet) > 50


def test_not_a_capture_raises_input_error(tmp_path: Path) -> None:
    f = tmp_path / "x.pcap"
    f.write_bytes(b"hello world, not a pcap")
    with pytest.raises(InputError):
        list(FastPcapSource(f))


def test_shared_real_captures(captures_dir: Path) -> None:
    ddns = [r for r in FastPcapSource(captures_dir / "goip" / "ddns.pcap")]
    assert [r.payload[:4] for r in ddns] == [b"\x86\x70\x14\x13"] * 2
    assert ddns[0].eth_src[:3] == bytes.fromhex("383f10")
    g711 = [r for r in FastPcapSource(captures_dir / "sipp" / "g711a.pcap")]
    assert all(type(r) is RtpBatch for r in g711)
    assert sum(r.packets for r in g711) == 236 and {r.payload_type for r in g711} == {8}
