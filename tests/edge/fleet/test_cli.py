"""edge-fleet migrate / user add / health / cases on a real database."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from edge.fleet.cli import main


def test_cli_migrate_user_health_cases(dsn: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--dsn", dsn]) == 0
    assert "schema version 2" in capsys.readouterr().out
    pw = tmp_path / "pw"
    pw.write_text("a-long-password\n")
    assert main(["user", "add", "alice", "--role", "fraud", "--password-file", str(pw),
                 "--dsn", dsn]) == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        role, h = conn.execute("SELECT role, pw_hash FROM desk_users").fetchone()
        assert role == "fraud" and h.startswith("scrypt$") and "a-long" not in h
        conn.execute("INSERT INTO agents (site, agent, state) VALUES ('s1', 'a1', 'online')")
        conn.execute("INSERT INTO fleet_alerts (site, agent, kind) VALUES "
                     "('s1', 'a1', 'box.silent')")
    capsys.readouterr()
    assert main(["health", "--dsn", dsn]) == 0
    out = capsys.readouterr().out
    assert "s1\ta1\tonline" in out and "box.silent" in out
    assert main(["cases", "--dsn", dsn]) == 0
    pw.write_text("short\n")
    assert main(["user", "add", "bob", "--role", "admin", "--password-file", str(pw),
                 "--dsn", dsn]) == 2   # refused with a message, not a traceback
