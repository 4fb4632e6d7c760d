"""The IP-plane evaluation runs the agent's own pipeline loop: its detections are
those ``edge-agent replay`` reports on the same capture."""

from __future__ import annotations

from pathlib import Path

from drivers.capture.fastpcap import FastPcapSource
from edge.assembly import assemble
from edge.config import parse_config
from edge.eval.ipplane import KIND, _default_stage, run_packets
from edge.pipeline import merge_by_time
from edge.report.sinks import MemorySink


def test_evaluation_sees_what_the_agent_reports(tmp_path: Path) -> None:
    from simulators.telecom.pcap import PcapSimConfig, simulate_pcap

    cap = tmp_path / "c.pcap"
    simulate_pcap(PcapSimConfig(seed=815, duration_s=300.0, softphones=2, ipphones=1,
                                pbx_trunks=1, goip_plain=1, goip_masked=1,
                                simbank_clients=0, lines=4, rtp=True),
                  cap, tmp_path / "c.truth.json")
    src = FastPcapSource(cap)
    try:
        dets = [d for d in run_packets(_default_stage(), iter(src)) if d.kind == KIND]
    finally:
        src.close()
    cfg = parse_config(f'[agent]\ndata_dir = "{tmp_path}/d"\n[detectors.watchlist]\n'
                       'enabled = false\n')
    mem = MemorySink()
    agent = assemble(cfg, mode="replay", sinks=[mem], inputs={"pcap": [cap]})
    agent.pipeline.run(merge_by_time(agent.sources))
    agent.close()
    reported = [r for r in mem.reports if r["kind"] == KIND]
    assert dets, "the capture has GoIPs to find"
    assert [(round(d.score, 4), d.severity) for d in dets] == \
        [(round(r["score"], 4), r["severity"]) for r in reported]
