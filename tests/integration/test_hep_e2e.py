"""HEP end to end: a real HEP sender (sngrep, ``-H``) plays captures to the agent.

- every real SIP capture in ``../shared/captures/sip/`` sent by sngrep as HEP3 reaches
  our listener with the SIP messages the pcap reader decodes from the file (same
  times, addresses, ports and bytes);
- sngrep listening as a HEP collector (``-L``) reads what our encoder sends (the
  encoder the tests and the demo use is checked by an independent implementation);
- the same traffic (a simulated capture with GoIPs, softphones and a PBX, reduced to
  what a SIP probe forwards: SIP and RTCP) replayed as a pcap and sent by sngrep as
  HEP to ``edge-agent run`` with ``[inputs.hep]`` gives the same IP-plane reports.
Needs sngrep (Debian package sngrep; the test command installs it).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from drivers.capture.fastpcap import FastPcapSource
from drivers.capture.hep import HepListener
from edge.records import Packet
from edge.telecom.ipplane.sip import looks_like_sip
from simulators.telecom.hep import HepSender, hep3
from simulators.telecom.pcap import PcapSimConfig, simulate_pcap
from simulators.telecom.pcap_frames import PcapWriter, ethernet, udp

UDP_REAL = ["sipnab__Asterisk_ZFONE_XLITE.pcap", "sipnab__b2bua-asterisk.pcapng",
            "sipnab__sip-rtp-g711.pcap", "suricata-verify__sip.pcap"]


def sngrep() -> str:
    exe = shutil.which("sngrep")
    if exe is None:
        pytest.fail("sngrep is not installed (Debian package sngrep); the test command "
                    "installs it")
    return exe


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sngrep_send(pcap: Path, port: int, workdir: Path) -> None:
    """sngrep reads ``pcap`` and sends every SIP message it parses as HEP3."""
    rc = workdir / "sngreprc"
    rc.write_text("set eep.send.ver 3\nset eep.send.id 77\n")
    subprocess.run([sngrep(), "-N", "-q", "-I", str(pcap), "-H", f"udp:127.0.0.1:{port}"],
                   env={**os.environ, "SNGREPRC": str(rc)}, stdin=subprocess.DEVNULL,
                   capture_output=True, timeout=60, check=True)


def udp_sip(path: Path) -> list[tuple[Any, ...]]:
    return [(round(p.ts, 6), p.src, p.dst, p.sport, p.dport, p.payload)
            for p in FastPcapSource(path)
            if type(p) is Packet and p.proto == 17 and looks_like_sip(p.payload)]


def collect(port: int, action: Any, want: int) -> list[Any]:
    lst = HepListener("127.0.0.1", port, timeout_s=0.05)
    recs: list[Any] = []
    t = threading.Thread(target=lambda: recs.extend(lst), daemon=True)
    t.start()
    try:
        action()
        deadline = time.monotonic() + 10
        while len(recs) < want and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        lst.close()
        t.join(5)
    return recs


@pytest.mark.parametrize("name", UDP_REAL)
def test_sngrep_hep_matches_the_pcap(captures_dir: Path, tmp_path: Path, name: str) -> None:
    pcap = captures_dir / "sip" / name
    want = udp_sip(pcap)
    assert len(want) >= 5
    port = free_port()
    recs = collect(port, lambda: sngrep_send(pcap, port, tmp_path), len(want))
    got = [(round(p.ts, 6), p.src, p.dst, p.sport, p.dport, p.payload) for p in recs
           if type(p) is Packet]
    assert sorted(got) == sorted(want)
    assert all(p.tunnel.startswith("hep3(agent=") for p in recs if type(p) is Packet)


def test_sngrep_reads_our_encoder(tmp_path: Path, captures_dir: Path) -> None:
    pcap = captures_dir / "sip" / "sipnab__sip-rtp-g711.pcap"
    want = udp_sip(pcap)
    port = free_port()
    out = tmp_path / "collected.pcap"
    rc = tmp_path / "sngreprc"
    rc.write_text("set eep.listen.ver 3\n")
    proc = subprocess.Popen([sngrep(), "-N", "-q", "-L", f"udp:127.0.0.1:{port}", "-O",
                             str(out)], env={**os.environ, "SNGREPRC": str(rc)},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        tx = HepSender("127.0.0.1", port)
        for ts, src, dst, sport, dport, payload in want:
            tx.send(hep3(ts, src, dst, sport, dport, payload))
        tx.close()
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    assert udp_sip(out) == want  # sngrep wrote what it decoded back as frames


def _sip_only(src_pcap: Path, dst_pcap: Path) -> int:
    """What a SIP probe forwards: the capture's SIP and RTCP, as plain UDP frames."""
    frames = []
    for p in FastPcapSource(src_pcap):
        if type(p) is not Packet or p.proto != 17:
            continue
        if looks_like_sip(p.payload):
            frames.append((p.ts, ethernet(b"\x02" * 6, b"\x04" * 6,
                                          udp(p.src, p.dst, p.sport, p.dport, p.payload))))
    with open(dst_pcap, "wb") as fh:
        PcapWriter(fh).write_many(frames)
    return len(frames)


def _ipplane(reports: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Reports of the IP plane, without how the packets reached the agent."""
    out = []
    for r in reports:
        if not r["kind"].startswith("goip."):
            continue
        ev = [orjson.dumps(e, option=orjson.OPT_SORT_KEYS) for e in r["evidence"]
              if "tunnel" not in e.get("features", {})]
        out.append((r["kind"], r["ts"], orjson.dumps(r["subject"],
                                                     option=orjson.OPT_SORT_KEYS),
                    r["severity"], r["score"], tuple(ev)))
    return sorted(out)


def test_same_call_as_pcap_and_as_hep_gives_the_same_reports(tmp_path: Path) -> None:
    from edge.assembly import assemble
    from edge.config import load_config
    from edge.live import run_live
    from edge.pipeline import merge_by_time
    from edge.report.sinks import MemorySink

    sim = tmp_path / "sim.pcap"
    simulate_pcap(PcapSimConfig(seed=41, duration_s=300, softphones=6, ipphones=2,
                                pbx_trunks=1, goip_plain=1, goip_masked=2,
                                simbank_clients=0, lines=4, gtp_share=0.0, tcp_share=0.0,
                                ipv6_softphones=0, rtp=False), sim)
    pcap = tmp_path / "sip.pcap"
    n = _sip_only(sim, pcap)
    assert n > 500
    port = free_port()
    out = tmp_path / "reports.jsonl"
    cfg_path = tmp_path / "agent.toml"
    cfg_path.write_text(f"""
[agent]
site = "hep"
id = "a1"
data_dir = "{tmp_path}/data"
[inputs.hep]
listen = "127.0.0.1:{port}"
[outputs.jsonl]
path = "{out}"
""")
    cfg = load_config(cfg_path)
    mem = MemorySink()
    agent = assemble(cfg, mode="replay", sinks=[mem], inputs={"pcap": [pcap], "events": []})
    agent.pipeline.run(merge_by_time(agent.sources))
    agent.close()
    want = _ipplane(mem.reports)
    assert len({w[2] for w in want}) >= 2  # GoIPs were reported from SIP alone

    stop = threading.Event()
    live = threading.Thread(target=run_live, args=(cfg,), kwargs={"stop": stop})
    live.start()
    try:
        time.sleep(1.0)
        sngrep_send(pcap, port, tmp_path)
        time.sleep(2.0)
    finally:
        stop.set()
        live.join(timeout=20)
    assert not live.is_alive()
    reports = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    got = _ipplane(reports)
    assert got == want
    status = [r for r in reports if r["kind"] == "agent.status"][-1]["evidence"][0]["features"]
    assert status[f"source.hep:udp:{port}.sip"] == n
    assert status[f"source.hep:udp:{port}.malformed"] == 0
