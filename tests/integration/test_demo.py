"""The README's demo command: detections printed, and a subscriber received them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "edge.cli.agent", "demo", "--subscribers", "600", "--hours",
         "3", "--pcap-seconds", "60", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    m = re.search(r"received (\d+) of (\d+) reports", out)
    assert m and m.group(1) == m.group(2) and int(m.group(2)) > 0, out
    assert "simbox.sim" in out and "why:" in out
    m = re.search(r"(\d+) of (\d+) SIM-box SIMs flagged", out)
    assert m and int(m.group(1)) > 0, out
    m = re.search(r"(\d+) of (\d+) GoIP / SIM-bank endpoints flagged, (\d+) false", out)
    assert m and int(m.group(1)) > 0 and m.group(3) == "0", out
    assert "goip.endpoint" in out
