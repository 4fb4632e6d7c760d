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


class _Link:
    """The two things the actuator uses of a BridgeClient: ``send`` and ``results``."""

    def __init__(self) -> None:
        import queue

        self.results: queue.Queue[object] = queue.Queue()
        self.sent: list[object] = []

    def send(self, msg: object, *, deadline: float) -> None:
        self.sent.append(msg)

    def close(self) -> None:
        pass


def test_a_result_whose_ack_was_lost_or_comes_behind_it_counts_as_the_acknowledgement() -> None:
    from firmware_bridge import messages as M
    from firmware_bridge.client import LinkEvent

    wall = [100.0]
    link = _Link()
    act = StationActuator(link, clock=lambda: wall[0])  # type: ignore[arg-type]
    for i in range(3):
        act.submit(Command(ts=1.0, target="station", action="divert",
                           args={"lane": "L1", "parcel_seq": i, "waybill": f"SF{i}"},
                           deadline=3.0, correlation_id=f"c{i}"))
    d1, d2, d3 = link.sent
    # 1: ACK then result (the usual order); 2: result then the ACK behind it;
    # 3: the ACK lost, only the result; 1's ACK again (a retry's duplicate)
    for ev in (LinkEvent("acked", d1, "1 tries", 100.1),
               LinkEvent("result", M.DivertResult(d1.cmd_id, 0, 0, ""), at=100.2),
               LinkEvent("result", M.DivertResult(d2.cmd_id, 0, 0, ""), at=100.3),
               LinkEvent("acked", d2, "1 tries", 100.31),
               LinkEvent("result", M.DivertResult(d3.cmd_id, 0, 0, ""), at=100.4),
               LinkEvent("acked", d1, "2 tries", 100.5)):
        link.results.put(ev)
    outs = act.poll(1.5)
    assert [o.status for o in outs] == ["acted"] * 3
    assert all("acknowledged" in o.detail and "before the deadline" in o.detail for o in outs)
    c = act.counters()
    assert (c["acked"], c["acked_in_time"], c["acked_by_result"], c["acted"]) == (3, 3, 2, 3)
    assert c["in_flight"] == 0
