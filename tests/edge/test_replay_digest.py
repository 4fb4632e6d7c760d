"""Pins the exact bytes ``edge-agent replay`` writes on fixed inputs.

A refactor of the agent's plumbing (assembly, pipeline routing, sinks) must leave the
reports byte for byte identical; this test holds it to that. The inputs are a seeded
simulated event day, a seeded simulated capture and real captures from
``../shared/captures``; the config fixes site, agent id and privacy key, so report
ids and pseudonyms are deterministic.

A change that is *meant* to change reports (a detector, a simulator, a model) re-pins
the digests and says so in its commit:

    AFE_REPIN=1 .venv/bin/python -m pytest tests/edge/test_replay_digest.py -q

The pinned file records the digest of each input as well, so a failure says whether
the input (simulator) or the output (agent) moved.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import orjson
import pytest

from edge.cli.agent import main as agent_main

PINS = Path(__file__).with_name("replay_digests.json")
CONFIG = """\
[agent]
site = "pin-site"
id = "pin-agent"
data_dir = "{data}"
status_interval_s = 1800
[privacy]
key = "replay-digest-key-0001"
"""
REAL = ("goip/startup.pcap", "goip/ddns.pcap", "sip/sipnab__Asterisk_ZFONE_XLITE.pcap",
        "sip/heplify__sip_ipv4_tcp.pcap")


def _sha(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def _replay(tmp: Path, flag: str, inputs: list[Path]) -> tuple[bytes, dict[str, int]]:
    cfg = tmp / "pin.toml"
    cfg.write_text(CONFIG.format(data=tmp / "data"))
    out = tmp / "reports.jsonl"
    args = ["replay", "--config", str(cfg), "--out", str(out), "--quiet"]
    for p in inputs:
        args += [flag, str(p)]
    assert agent_main(args) == 0
    data = out.read_bytes()
    kinds: dict[str, int] = {}
    for line in data.splitlines():
        k = orjson.loads(line)["kind"]
        kinds[k] = kinds.get(k, 0) + 1
    return data, kinds


def _check(case: str, inputs: list[Path], flag: str, tmp: Path) -> dict[str, int]:
    data, kinds = _replay(tmp, flag, inputs)
    got = {"input_sha256": _sha(inputs), "reports_sha256": hashlib.sha256(data).hexdigest(),
           "kinds": kinds}
    pins = orjson.loads(PINS.read_bytes()) if PINS.exists() else {}
    if os.environ.get("AFE_REPIN") == "1":
        pins[case] = got
        PINS.write_bytes(orjson.dumps(pins, option=orjson.OPT_INDENT_2
                                      | orjson.OPT_SORT_KEYS) + b"\n")
        return kinds
    want = pins.get(case)
    assert want is not None, f"no pinned digest for {case}: run with AFE_REPIN=1"
    assert got["input_sha256"] == want["input_sha256"], (
        f"{case}: the input changed (simulator?), so the pin no longer says anything; "
        f"re-pin with AFE_REPIN=1 and say why in the commit")
    assert got["kinds"] == want["kinds"]
    assert got["reports_sha256"] == want["reports_sha256"], (
        f"{case}: same input, different report bytes")
    return kinds


def test_simulated_event_day(tmp_path: Path) -> None:
    from simulators.telecom.events import EventSimConfig, write_events

    ev = tmp_path / "day.jsonl"
    write_events(EventSimConfig(seed=811, subscribers=1500, hours=6, simbox_devices=2), ev)
    kinds = _check("events-811", [ev], "--events", tmp_path)
    assert kinds.get("simbox.sim", 0) > 0  # the day exercises the detector


def test_simulated_capture(tmp_path: Path) -> None:
    from simulators.telecom.pcap import PcapSimConfig, simulate_pcap

    pcap = tmp_path / "cap.pcap"
    simulate_pcap(PcapSimConfig(seed=812, duration_s=240.0, softphones=6, ipphones=4,
                                pbx_trunks=1, goip_plain=1, goip_masked=1,
                                simbank_clients=1), pcap, tmp_path / "cap.truth.json")
    kinds = _check("pcap-812", [pcap], "--pcap", tmp_path)
    assert kinds.get("goip.endpoint", 0) > 0


def test_real_captures(tmp_path: Path, captures_dir: Path) -> None:
    paths = [captures_dir / p for p in REAL]
    if not all(p.exists() for p in paths):
        pytest.skip("shared captures missing")
    _check("real-captures", paths, "--pcap", tmp_path)
