"""The bridge domain in the assembly: [bridge] table, live sources, the station actuator."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.transport.pty import PtyPair
from edge.assembly import assemble
from edge.config import parse_config
from edge.errors import ConfigError
from edge.records import Command
from firmware_bridge.actuator import StationActuator
from firmware_bridge.source import BridgeSource


def _cfg(tmp: Path, bridge: str) -> object:
    return parse_config(f'[agent]\nid = "a"\ndata_dir = "{tmp}/d"\n'
                        f'[privacy]\nkey = "bridge-domain-key-01"\n[bridge]\n{bridge}')


def test_run_mode_builds_bridge_sources_and_the_station_actuator(tmp_path: Path) -> None:
    key = tmp_path / "link.key"
    key.write_text("00" * 32 + "\n")
    bs, st = PtyPair("bs"), PtyPair("st")
    try:
        cfg = _cfg(tmp_path, f'base_station_port = "{bs.slave_path}"\n'
                             f'station_port = "{st.slave_path}"\nkey_file = "{key}"\n')
        agent = assemble(cfg, mode="run", sinks=[], domains=["bridge"])  # type: ignore[arg-type]
        try:
            names = sorted(s.name for s in agent.sources)
            assert names == ["bridge:base_station", "bridge:station"]
            (act,) = agent.actuators
            assert isinstance(act, StationActuator) and act.name == "station"
            # one link to the station: the source and the actuator share it
            srcs = [s for s in agent.sources if s.name == "bridge:station"]
            inner = srcs[0].source  # inside the time guard
            assert isinstance(inner, BridgeSource) and inner.client is act.client
            bad = act.submit(Command(ts=1.0, target="station", action="divert",
                                     args={"lane": "L1"}, deadline=2.0, correlation_id="x"))
            assert bad[0].status == "rejected"
        finally:
            agent.close()
    finally:
        bs.close()
        st.close()


def test_links_without_a_key_are_refused_unless_allowed(tmp_path: Path) -> None:
    st = PtyPair("st")
    try:
        cfg = _cfg(tmp_path, f'station_port = "{st.slave_path}"\n')
        with pytest.raises(ConfigError, match="bridge.key_file"):
            assemble(cfg, mode="run", sinks=[], domains=["bridge"])  # type: ignore[arg-type]
        cfg = _cfg(tmp_path, f'station_port = "{st.slave_path}"\nallow_unsigned = true\n')
        agent = assemble(cfg, mode="run", sinks=[], domains=["bridge"])  # type: ignore[arg-type]
        agent.close()
    finally:
        st.close()


def test_replay_has_a_dry_run_station(tmp_path: Path) -> None:
    agent = assemble(_cfg(tmp_path, ""), mode="replay", sinks=[],  # type: ignore[arg-type]
                     domains=["bridge"])
    try:
        assert [a.name for a in agent.actuators] == ["station"] and not agent.sources
    finally:
        agent.close()
