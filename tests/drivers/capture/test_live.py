"""Live capture on ``lo``: a simulator capture played onto loopback is decoded like the file.

Needs root (PF_PACKET sockets). The BPF filter keeps loopback traffic of other tests
(127.0.0.1, ::1) out; the simulator never uses those addresses.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from drivers.capture.fastpcap import FastPcapSource
from drivers.capture.live import LiveCaptureSource, open_live_source
from edge.config import CaptureInput
from edge.errors import ConfigError
from edge.records import Packet, RtpBatch
from simulators.telecom.pcap import PcapSimConfig, simulate_pcap
from simulators.telecom.playback import play_pcap

BPF = "not (host 127.0.0.1 or host ::1)"


def _root() -> None:
    if os.geteuid() != 0:
        pytest.fail("live capture on lo needs root")


@pytest.fixture(scope="module")
def small_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("live")
    simulate_pcap(PcapSimConfig(seed=31, duration_s=45, softphones=4, ipphones=1, pbx_trunks=1,
                                goip_plain=1, goip_masked=1, simbank_clients=1, lines=3),
                  d / "s.pcap")
    return d / "s.pcap"


def _content(recs: list[Any]) -> tuple[Counter[Any], Counter[Any]]:
    pk = Counter((p.src, p.dst, p.sport, p.dport, p.proto, p.payload, p.teid)
                 for p in recs if type(p) is Packet)
    rtp: Counter[Any] = Counter()
    for b in recs:
        if type(b) is RtpBatch:
            rtp[(b.src, b.dst, b.sport, b.dport, b.ssrc)] += b.packets
    return pk, rtp


@pytest.mark.needs_root
def test_played_capture_is_decoded_like_the_file(small_pcap: Path) -> None:
    _root()
    src = open_live_source(CaptureInput(interface="lo", bpf=BPF, queue_size=200_000))
    recs: list[Any] = []
    reader = threading.Thread(target=lambda: recs.extend(src), daemon=True)
    reader.start()
    time.sleep(0.2)
    st = play_pcap(small_pcap, iface="lo", speed=0)
    deadline = time.monotonic() + 20
    while src.counters()["captured"] < st.sent and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    src.close()
    reader.join(timeout=10)
    assert not reader.is_alive()  # close() ends the iteration
    c = src.counters()
    assert st.sent > 3000 and st.errors == 0
    assert c["captured"] == st.sent and c["queue_drops"] == 0 and c["malformed"] == 0
    want_pk, want_rtp = _content(list(FastPcapSource(small_pcap)))
    got_pk, got_rtp = _content(recs)
    assert got_pk == want_pk
    assert got_rtp == want_rtp


@pytest.mark.needs_root
def test_full_queue_drops_are_counted_and_close_is_clean(small_pcap: Path) -> None:
    _root()
    src = LiveCaptureSource("lo", bpf=BPF, queue_size=50)
    st = play_pcap(small_pcap, iface="lo", speed=0, max_packets=2000)
    deadline = time.monotonic() + 10
    while src.counters()["captured"] < st.sent and time.monotonic() < deadline:
        time.sleep(0.05)
    c = src.counters()
    assert c["captured"] == 2000 and c["queued"] == 50 and c["queue_drops"] == 1950
    src.close()
    recs = list(src)  # what was queued is still handed out, then iteration ends
    assert 0 < sum(1 for r in recs if type(r) is Packet) + sum(
        r.packets for r in recs if type(r) is RtpBatch) <= 50


def test_bad_interface_is_a_config_error() -> None:
    _root()
    with pytest.raises(ConfigError):
        open_live_source(CaptureInput(interface="no-such-if0"))
    with pytest.raises(ConfigError):
        open_live_source(CaptureInput(interface=None))


@pytest.mark.needs_root
def test_edge_sim_play_cli_paces_by_timestamps(small_pcap: Path) -> None:
    from drivers.capture.pcapio import open_records
    from edge.cli.sim import main as sim_main

    _root()
    with open(small_pcap, "rb") as fh:
        ts = next(iter(open_records(fh, str(small_pcap)))).ts[:300]
    span = float(ts[-1] - ts[0])
    assert span > 1.0
    src = LiveCaptureSource("lo", bpf=BPF, queue_size=10_000)
    t0 = time.monotonic()
    rc = sim_main(["play", "--pcap", str(small_pcap), "--iface", "lo", "--speed", "10",
                   "--max-packets", "300"])
    elapsed = time.monotonic() - t0
    deadline = time.monotonic() + 5
    while src.counters()["captured"] < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    src.close()
    assert rc == 0 and src.counters()["captured"] == 300
    assert elapsed >= 0.9 * span / 10  # paced by the capture's own timestamps
