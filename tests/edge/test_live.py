"""``edge-agent run``: live UDP event input -> pipeline -> JSONL sink, clean stop."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import orjson

from edge.config import load_config
from edge.live import run_live
from simulators.broker import free_port


def _udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_bound(port: int, timeout: float = 30.0) -> None:
    """Until the agent's socket holds the port (datagrams sent before are lost)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on udp {port}")


def test_run_live_udp_events_detects_and_stops_cleanly(tmp_path: Path) -> None:
    port = _udp_port()
    out = tmp_path / "reports.jsonl"
    cfg_path = tmp_path / "agent.toml"
    cfg_path.write_text(f"""
[agent]
site = "live"
id = "a1"
data_dir = "{tmp_path}/data"
status_interval_s = 1
[inputs.events]
udp_listen = "127.0.0.1:{port}"
[outputs.jsonl]
path = "{out}"
""")
    cfg = load_config(cfg_path)
    stop = threading.Event()
    t = threading.Thread(target=run_live, args=(cfg,), kwargs={"stop": stop})
    t.start()
    _wait_bound(port)  # assembly (models) takes a while on a loaded machine
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    base = 1_767_225_600.0
    imsi = "460009999999999"
    lines = [b"garbage that must be counted"]
    for i in range(40):  # a SIM that only calls out, to distinct numbers, from one cell
        common = {"imsi": imsi, "imei": "86000000000001", "cell": "46000-1-1", "dir": "mo",
                  "peer": f"8613{i:09d}", "call_id": f"c{i}"}
        lines.append(orjson.dumps({"ts": base + i * 60, "type": "call_start", **common}))
        lines.append(orjson.dumps({"ts": base + i * 60 + 30, "type": "call_end", **common,
                                   "duration_s": 20}))
    for i in range(0, len(lines), 10):
        tx.sendto(b"\n".join(lines[i:i + 10]), ("127.0.0.1", port))
        time.sleep(0.01)
    tx.close()
    time.sleep(1.0)  # idle ticks advance event time past the status interval
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if out.exists() and b"agent.status" in out.read_bytes():
            break
        time.sleep(0.1)
    stop.set()
    t.join(10)
    assert not t.is_alive(), "agent did not stop"
    reports = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    final = [r for r in reports if r["kind"] == "agent.status"][-1]
    feats = final["evidence"][0]["features"]
    assert feats["final"] is True and feats["malformed"] == 1
    assert feats[f"source.events:udp:{port}.decoded"] == 80
    assert feats["records"] == 81
    for r in reports:  # whatever was detected left the device pseudonymised
        assert imsi not in repr(r)
    assert free_port() > 0
