"""check-config makes every check run makes, and reports all problems at once."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from edge.cli.agent import main as agent_main
from edge.config import load_config
from edge.ops.preflight import preflight


def _conf(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "agent.toml"
    p.write_text(text)
    return p


def test_empty_config_has_no_live_input(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    conf = _conf(tmp_path, "")
    assert agent_main(["check-config", str(conf)]) == 2
    assert "no live inputs" in capsys.readouterr().err
    assert agent_main(["run", "--config", str(conf)]) == 2  # run refuses the same way
    assert "no live inputs" in capsys.readouterr().err
    assert agent_main(["check-config", "--mode", "replay", str(conf)]) == 0


def test_every_problem_is_listed_at_once(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    port = busy.getsockname()[1]
    (tmp_path / "keydir").mkdir()
    (tmp_path / "afile").write_text("x")
    conf = _conf(tmp_path, f"""
[agent]
data_dir = "afile/state"
[privacy]
key_file = "keydir"
[inputs.events]
udp_listen = "127.0.0.1:{port}"
[inputs.capture]
interface = "nosuch0"
""")
    try:
        problems = preflight(load_config(conf))
        assert agent_main(["check-config", str(conf)]) == 2
    finally:
        busy.close()
    assert "4 problem(s)" in capsys.readouterr().err
    keys = sorted(p.key for p in problems)
    assert keys == ["agent.data_dir", "inputs.capture.interface", "inputs.events.udp_listen",
                    "privacy.key_file"], problems
    assert "nosuch0" in str(problems) and "lo" in str(problems)  # names what exists
    # prepared for another box: machine-dependent checks skipped, the rest kept
    no_probe = {p.key for p in preflight(load_config(conf), probe=False)}
    assert no_probe == {"agent.data_dir", "privacy.key_file"}


def test_followed_files_and_loopback_capture_pass(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text("")
    conf = _conf(tmp_path, f"""
[inputs.events]
files = ["{feed}"]
follow = true
[inputs.capture]
interface = "lo"
""")
    assert preflight(load_config(conf)) == []
    conf.write_text(f'[inputs.events]\nfiles = ["{feed}"]\n')
    assert {p.key for p in preflight(load_config(conf))} == {"inputs", "inputs.events.follow"}
