"""Real SIP calls (SIPp UAC -> SIPp UAS over loopback) seen by the live capture.

The capture source listens on ``lo`` with a BPF filter for the two SIPp ports; the
decoded Packets are parsed with the IP-plane SIP parser, and every call SIPp made
must show up: its INVITE, and the same Call-IDs SIPp logged. Needs root and sipp.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from drivers.capture.live import open_live_source
from edge.config import CaptureInput
from edge.records import Packet

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


@pytest.mark.needs_root
@pytest.mark.slow
def test_sipp_calls_are_captured_on_loopback(tmp_path: Path) -> None:
    from edge.telecom.ipplane.sip import SipMessage, parse_message

    sipp = _require()
    src = open_live_source(CaptureInput(
        interface="lo", bpf=f"udp port {UAS_PORT} or udp port {UAC_PORT}", queue_size=10_000))
    records: list[Any] = []
    reader = threading.Thread(target=lambda: records.extend(src), daemon=True)
    reader.start()
    uas = subprocess.Popen([sipp, "-sn", "uas", "-i", "127.0.0.1", "-p", str(UAS_PORT),
                            "-nostdin", "-trace_msg", "-message_file",
                            str(tmp_path / "uas.log")],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        time.sleep(0.5)
        uac = subprocess.run([sipp, "-sn", "uac", "-i", "127.0.0.1", "-p", str(UAC_PORT),
                              f"127.0.0.1:{UAS_PORT}", "-m", str(CALLS), "-r", "5", "-d", "200",
                              "-nostdin", "-timeout", "30s", "-trace_msg", "-message_file",
                              str(tmp_path / "uac.log")],
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                             cwd=tmp_path)
        assert uac.returncode == 0, uac.stderr.decode(errors="replace")[-2000:]
        time.sleep(1.0)
    finally:
        uas.terminate()
        uas.wait(timeout=10)
        src.close()
        reader.join(timeout=10)
    assert not reader.is_alive()
    sent_ids = set(re.findall(r"^Call-ID:\s*(\S+)", (tmp_path / "uac.log").read_text(),
                              re.M | re.I))
    assert len(sent_ids) == CALLS
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
