"""A private mosquitto broker on a free loopback port, for demos and tests.

The broker runs as a child process that the caller can kill (SIGKILL) and restart on
the same port, which is what the reliability tests need.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from edge.errors import LinkError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_mosquitto() -> str:
    for cand in (shutil.which("mosquitto"), "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if cand and Path(cand).exists():
            return cand
    raise LinkError("mosquitto is not installed (Debian: apt-get install mosquitto)")


class LocalBroker:
    """``with LocalBroker() as b: ... b.port``; ``b.kill()`` / ``b.start()`` to bounce it."""

    def __init__(self, port: int | None = None, *, extra_conf: str = "",
                 persistence: bool = False) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._dir = Path(tempfile.mkdtemp(prefix="afe-broker-"))
        self.extra_conf = extra_conf
        self.persistence = persistence
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self._dir / "mosquitto.log"

    def conf_text(self) -> str:
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true",
                 "max_queued_messages 0", "max_inflight_messages 0",
                 f"log_dest file {self.log_path}", "log_type error", "log_type warning"]
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self._dir}/",
                      "autosave_interval 1"]
        if self.extra_conf:
            lines.append(self.extra_conf)
        return "\n".join(lines) + "\n"

    def start(self, timeout_s: float = 10.0) -> LocalBroker:
        conf = self._dir / "mosquitto.conf"
        conf.write_text(self.conf_text())
        self.proc = subprocess.Popen([find_mosquitto(), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise LinkError(f"mosquitto exited at start: {err.strip()[:400]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise LinkError(f"mosquitto did not listen on port {self.port} within {timeout_s} s")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
