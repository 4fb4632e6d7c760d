"""Collector processes for the fleet tests (real processes, so kill -9 is real)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[3]


class CollectorProc:
    def __init__(self, name: str, dsn: str, port: int, log_dir: Path,
                 extra: list[str] | None = None) -> None:
        self.name, self.dsn, self.port = name, dsn, port
        self.log_path = log_dir / f"collector-{name}.log"
        self.extra = extra or []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> CollectorProc:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge.fleet.cli", "collect", "--dsn", self.dsn,
             "--mqtt-host", "127.0.0.1", "--mqtt-port", str(self.port), "--name", self.name,
             *self.extra], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        log.close()
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return -9

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def connects(proc: CollectorProc) -> int:
    """How many SUBACKs the collector logged (it subscribes on every connection)."""
    return proc.log_text().count(" subscribed (")


def wait_connected(proc: CollectorProc, before: int = 0, timeout_s: float = 20.0) -> None:
    """Waits until the collector has subscribed more often than ``before``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if connects(proc) > before:
            return
        if proc.proc is not None and proc.proc.poll() is not None:
            raise AssertionError(f"collector {proc.name} exited:\n{proc.log_text()[-2000:]}")
        time.sleep(0.1)
    raise AssertionError(f"collector {proc.name} did not connect:\n{proc.log_text()[-2000:]}")


def report_ids(dsn: str) -> tuple[set[str], int]:
    """(distinct report ids, row count) in the database."""
    with psycopg.connect(dsn) as conn:
        ids = {r[0] for r in conn.execute("SELECT id FROM reports").fetchall()}
        n = conn.execute("SELECT count(*) FROM reports").fetchone()
    return ids, int(n[0]) if n else 0
