"""Throughput of the IP-plane detector stage alone (records already decoded in memory).

    python bench/ipplane_detector.py [--seconds 600]

1. behaviour-generator Packets (SIP + GoIP protocols + per-packet RTP): packets/s;
2. a pcap-simulator capture decoded by the fast reader into Packet + RtpBatch records:
   records/s and the equivalent captured packets/s (what the stage adds to part A's
   end-to-end figure).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from edge.config import Config
from edge.eval.ipplane import run_packets
from edge.records import RtpBatch
from edge.telecom.ipplane.build import build_stages


def _stage():  # type: ignore[no-untyped-def]
    return build_stages(Config())[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=600.0)
    a = ap.parse_args()
    from simulators.telecom.ipplane_behaviour import generate

    sc = generate(4242, profile="heldout", duration_s=a.seconds, rtp_packets=50)
    st = _stage()
    t = time.perf_counter()
    run_packets(st, sc.packets)
    dt = time.perf_counter() - t
    print(f"generator packets: {len(sc.packets)} in {dt:.2f} s = {len(sc.packets) / dt:,.0f} pkt/s"
          f" (sip {st.counters()['sip_messages']}, rtp {st.counters()['rtp_packets']})")

    from drivers.capture.fastpcap import FastPcapSource
    from simulators.telecom.pcap import PcapSimConfig, simulate_pcap

    with tempfile.TemporaryDirectory() as tmp:
        pcap = Path(tmp) / "b.pcap"
        res = simulate_pcap(PcapSimConfig(seed=4242, duration_s=a.seconds), pcap)
        src = FastPcapSource(pcap)
        recs = list(iter(src))
        src.close()
    frames = res.frames if hasattr(res, "frames") else res.truth["counts"]["packets"]
    batches = sum(1 for r in recs if type(r) is RtpBatch)
    st = _stage()
    t = time.perf_counter()
    run_packets(st, recs)
    dt = time.perf_counter() - t
    print(f"pcap-sim records: {len(recs)} ({batches} RtpBatch) for {frames} frames in "
          f"{dt:.2f} s = {len(recs) / dt:,.0f} records/s = {frames / dt:,.0f} captured pkt/s")


if __name__ == "__main__":
    main()
