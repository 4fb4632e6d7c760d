"""The example configs under examples/ pass check-config as shipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.cli.agent import main as agent_main

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_passes_check_config(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # --no-probe: the examples name the devices and ports of a real box (eth1,
    # /dev/ttyUSB0, a UDP port), which this machine need not have or may be using.
    assert agent_main(["check-config", "--no-probe", str(path)]) == 0, capsys.readouterr().err


def test_there_are_examples_for_both_sites() -> None:
    assert {"basestation", "depot"} <= {p.stem for p in EXAMPLES}
