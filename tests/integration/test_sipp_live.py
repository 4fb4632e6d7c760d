"""Real SIP calls (SIPp UAC -> SIPp UAS over loopback) seen by the live capture.

The capture source listens on ``lo`` with a BPF filter for the two SIPp ports; the
decoded Packets are parsed with the IP-plane SIP parser, and every call SIPp made
must show up: its INVITE, and the same Call-IDs SIPp logged; the IP plane reads every
message and raises nothing (a real negative). Needs root and sipp.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from drivers.capture.live import open_live_source
from edge.config import CaptureInput
from edge.records import Packet

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "edge/telecom/ipplane"))

UAS_PORT = 15071
UAC_PORT = 15070
CALLS = 5


def _require() -> str:
    if os.geteuid() != 0:
        pytest.fail("live capture on lo needs root")
    exe = shutil.which("sipp")
    if exe is None:
        pytest.fail("sipp is not installed (Debian package sip-tester); the test command "
                    "installs it")
    return exe


BPF = f"udp port {UAS_PORT} or udp port {UAC_PORT}"


def run_sipp_calls(sipp: str, workdir: Path) -> set[str]:
    """SIPp UAS and UAC on 127.0.0.1 make CALLS calls; returns the UAC's Call-IDs."""
    uas = subprocess.Popen([sipp, "-sn", "uas", "-i", "127.0.0.1", "-p", str(UAS_PORT),
                            "-nostdin", "-trace_msg", "-message_file",
                            str(workdir / "uas.log")],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, cwd=workdir)
    try:
        time.sleep(0.5)
        uac = subprocess.run([sipp, "-sn", "uac", "-i", "127.0.0.1", "-p", str(UAC_PORT),
                              f"127.0.0.1:{UAS_PORT}", "-m", str(CALLS), "-r", "5", "-d", "200",
                              "-nostdin", "-timeout", "30s", "-trace_msg", "-message_file",
                              str(workdir / "uac.log")],
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                             cwd=workdir)
        assert uac.returncode == 0, uac.stderr.decode(errors="replace")[-2000:]
        time.sleep(1.0)
    finally:
        uas.terminate()
        uas.wait(timeout=10)
    ids = set(re.findall(r"^Call-ID:\s*(\S+)", (workdir / "uac.log").read_text(), re.M | re.I))
    assert len(ids) == CALLS
    return ids


@pytest.mark.needs_root
@pytest.mark.slow
def test_sipp_calls_are_captured_on_loopback(tmp_path: Path, captures_dir: Path) -> None:
    from edge.telecom.ipplane.sip import SipMessage, parse_message

    sipp = _require()
    src = open_live_source(CaptureInput(interface="lo", bpf=BPF, queue_size=10_000))
    records: list[Any] = []
    reader = threading.Thread(target=lambda: records.extend(src), daemon=True)
    reader.start()
    try:
        sent_ids = run_sipp_calls(sipp, tmp_path)
    finally:
        src.close()
        reader.join(timeout=10)
    assert not reader.is_alive()
    invites: list[str] = []
    seen_ids: set[str] = set()
    methods: dict[str, int] = {}
    for r in records:
        if type(r) is not Packet:
            continue
        m, _ = parse_message(r.payload)
        if isinstance(m, SipMessage):
            seen_ids.add(m.call_id)
            key = m.method if m.is_request else str(m.status)
            methods[key] = methods.get(key, 0) + 1
            if m.is_request and m.method == "INVITE":
                invites.append(m.call_id)
                assert (r.src, r.dst, r.sport, r.dport) == ("127.0.0.1", "127.0.0.1",
                                                            UAC_PORT, UAS_PORT)
    assert sorted(invites) == sorted(sent_ids)
    assert seen_ids == sent_ids
    # the whole dialog of every call: INVITE, 100/180/200, ACK, BYE, 200 for BYE
    assert methods.get("ACK") == CALLS and methods.get("BYE") == CALLS
    assert methods.get("200", 0) == 2 * CALLS
    c = src.counters()
    assert c["queue_drops"] == 0 and c["malformed"] == 0
    # SIPp's calls are ordinary SIP recorded on lo: a real negative for the IP plane,
    # which must read every message and raise nothing
    from edge.eval.ipplane import run_packets
    from edge.records import RtpBatch
    from edge.telecom.ipplane.detector import IpPlaneDetector, load_default_model

    det = IpPlaneDetector(model=load_default_model())
    live = [r for r in records if type(r) in (Packet, RtpBatch)]
    assert run_packets(det, live) == []
    assert det.counters()["sip_messages"] == sum(methods.values())
    # the control: the same recording with a real GoIP's boot traffic (DHCP vendor class,
    # DBL MAC, NTP look-ups) replayed into it names that gateway and nothing else
    from pcaputil import packets_from_pcap

    goip = packets_from_pcap(captures_dir / "goip/startup.pcap")
    d = live[0].ts + 0.1 - goip[0].ts
    mixed = sorted([*live, *(dataclasses.replace(p, ts=p.ts + d) for p in goip)],
                   key=lambda r: r.ts)
    reports = run_packets(IpPlaneDetector(model=load_default_model()), mixed)
    assert {r.subject.id for r in reports} == {"192.168.1.31"}


@pytest.mark.needs_root
@pytest.mark.slow
def test_agent_run_counts_sipp_calls(tmp_path: Path) -> None:
    """``edge-agent run`` with [inputs.capture] on lo: its counters see every SIP message."""
    import orjson

    from edge.config import load_config
    from edge.live import run_live

    sipp = _require()
    out = tmp_path / "reports.jsonl"
    cfg_path = tmp_path / "agent.toml"
    cfg_path.write_text(f"""
[agent]
site = "sipp"
id = "a1"
data_dir = "{tmp_path}/data"
status_interval_s = 1
[inputs.capture]
interface = "lo"
bpf = "{BPF}"
[outputs.jsonl]
path = "{out}"
""")
    stop = threading.Event()
    agent = threading.Thread(target=run_live, args=(load_config(cfg_path),),
                             kwargs={"stop": stop})
    agent.start()
    try:
        time.sleep(0.5)
        run_sipp_calls(sipp, tmp_path)
    finally:
        stop.set()
        agent.join(timeout=15)
    assert not agent.is_alive(), "agent did not stop"
    reports = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    final = [r for r in reports if r["kind"] == "agent.status"][-1]
    feats = final["evidence"][0]["features"]
    assert feats["final"] is True
    # SIPp's uac/uas: INVITE, 180, 200, ACK, BYE, 200 per call
    assert feats["source.capture:lo.packets"] >= 6 * CALLS
    assert feats["source.capture:lo.queue_drops"] == 0
    sip = [v for k, v in feats.items() if k.endswith(".sip_messages")]
    assert sip and sip[0] >= 6 * CALLS
