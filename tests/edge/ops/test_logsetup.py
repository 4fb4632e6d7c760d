"""Service logging: JSON lines, a size cap, identifiers redacted at every level."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from edge.ops.logsetup import redact, setup_logging


def test_redact_identifiers() -> None:
    assert redact("imsi 460001234567890 imei 3520990012345678 on +8613800138000") == \
        "imsi <15 digits> imei <16 digits> on <13 digits>"
    assert redact("frame 123456 line 42 port 5060") == "frame 123456 line 42 port 5060"


def test_json_file_log_is_capped_and_redacted(tmp_path: Path) -> None:
    log_file = tmp_path / "agent.log"
    setup_logging("debug", fmt="json", file=log_file, max_bytes=65_536, backups=2)
    try:
        lg = logging.getLogger("edge.test")
        for i in range(3000):
            lg.debug("event %d from imsi %s", i, "460001234567890")
        try:
            raise ValueError("bad line: {\"imsi\": \"460009876543210\"}")
        except ValueError:
            lg.exception("decoder failed")
    finally:
        setup_logging("warning")  # back to stderr for the other tests
    files = sorted(tmp_path.glob("agent.log*"))
    assert len(files) == 3  # the live file and two backups, no more
    assert all(f.stat().st_size <= 65_536 + 512 for f in files)
    text = "".join(f.read_text() for f in files)
    assert "4600012345" not in text and "4600098765" not in text
    last = json.loads(log_file.read_text().splitlines()[-1])
    assert last["level"] == "error" and last["logger"] == "edge.test"
    assert "<15 digits>" in last["exc"] and last["msg"] == "decoder failed"
