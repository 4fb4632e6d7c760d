"""Every command a user can run has --help with a usage line and exits 0."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("edge", "drivers", "models", "simulators", "firmware_bridge")


def _python_m_modules() -> list[str]:
    mods = []
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            if re.search(r'^if __name__ == "__main__":', path.read_text("utf-8"), re.M):
                rel = path.relative_to(REPO).with_suffix("")
                mods.append(".".join(p for p in rel.parts if p != "__main__"))
    return mods


MODULES = _python_m_modules()
CONSOLE = [["edge-agent"], ["edge-sim"]]


@pytest.mark.parametrize("module", MODULES)
def test_python_m_help(module: str) -> None:
    proc = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout.lower(), proc.stdout[:500]


def test_console_scripts_help_every_subcommand() -> None:
    from edge.cli.agent import _parser as agent_parser
    from edge.cli.sim import _parser as sim_parser

    for parser in (agent_parser(), sim_parser()):
        sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        for name, p in sub.choices.items():  # type: ignore[union-attr]
            text = p.format_help()
            assert "usage:" in text, name
            for action in p._actions:
                if action.option_strings and action.dest != "help":
                    assert action.help, f"{parser.prog} {name} {action.option_strings} has no help"
