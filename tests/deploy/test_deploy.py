"""The systemd unit and the install script are valid as shipped."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "systemd" / "edge-agent.service"


def _unit() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read(UNIT)
    return cp


def test_unit_is_a_hardened_notify_service() -> None:
    svc = _unit()["Service"]
    assert svc["Type"] == "notify" and svc["NotifyAccess"] == "main"
    assert svc["WatchdogSec"].endswith("s") and svc["Restart"] == "on-failure"
    assert svc["User"] == "afe" and svc["NoNewPrivileges"] == "yes"
    assert set(svc["CapabilityBoundingSet"].split()) == {"CAP_NET_RAW", "CAP_NET_ADMIN"}
    assert svc["ProtectSystem"] == "strict" and "/var/lib/afe" in svc["ReadWritePaths"]
    assert "dialout" in svc["SupplementaryGroups"]


def test_unit_passes_systemd_analyze(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    agent = Path(sys.executable).with_name("edge-agent")
    text = UNIT.read_text().replace("/opt/antifraud-edge/venv/bin/edge-agent", str(agent))
    unit = tmp_path / "edge-agent.service"
    unit.write_text(text)
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60)
    complaints = [ln for ln in (proc.stdout + proc.stderr).splitlines()
                  if str(unit) in ln or "edge-agent.service" in ln]
    assert proc.returncode == 0 and not complaints, proc.stdout + proc.stderr


def test_install_script_parses_and_helps() -> None:
    script = REPO / "scripts" / "install.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    out = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "systemd" in out and "virtualenv" in out


def test_fleet_collector_unit_restarts_and_keeps_its_name() -> None:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read(REPO / "deploy" / "systemd" / "edge-fleet@.service")
    svc = cp["Service"]
    assert svc["Restart"] == "always" and svc["KillSignal"] == "SIGTERM"
    assert "--name %i" in svc["ExecStart"] and "edge-fleet collect" in svc["ExecStart"]
    assert svc["NoNewPrivileges"] == "yes"
