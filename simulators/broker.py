"""A private mosquitto broker on a free loopback port, for demos and tests.

The broker runs as a child process that the caller can kill (SIGKILL) and restart on
the same port, which is what the reliability tests need.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
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


@dataclass(slots=True, frozen=True)
class BrokerTls:
    """A TLS listener: the broker's certificate and key, and the CA that signs the
    client certificates it accepts (``require_certificate`` for mTLS)."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    require_certificate: bool = True


class LocalBroker:
    """``with LocalBroker() as b: ... b.port``; ``b.kill()`` / ``b.start()`` to bounce it.

    Options: ``persistence`` (saved every ``autosave_interval`` seconds, or every
    ``autosave_interval`` changes with ``autosave_on_changes``, and on a clean stop), a TLS listener (``tls``), an ACL file's text (``acl``), users with
    passwords (``users``; anonymous clients are then refused).
    """

    def __init__(self, port: int | None = None, *, extra_conf: str = "",
                 persistence: bool = False, autosave_interval: int = 1,
                 autosave_on_changes: bool = False,
                 tls: BrokerTls | None = None, acl: str | None = None,
                 users: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._dir = Path(tempfile.mkdtemp(prefix="afe-broker-"))
        self.extra_conf = extra_conf
        self.persistence = persistence
        self.autosave_interval = autosave_interval
        self.autosave_on_changes = autosave_on_changes
        self.tls = tls
        self.acl = acl
        self.users = users
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self._dir / "mosquitto.log"

    def conf_text(self) -> str:
        lines = [f"listener {self.port} 127.0.0.1"]
        if self.tls is not None:
            lines += [f"cafile {self.tls.ca_file}", f"certfile {self.tls.cert_file}",
                      f"keyfile {self.tls.key_file}",
                      f"require_certificate {str(self.tls.require_certificate).lower()}"]
        if os.geteuid() == 0:
            # mosquitto started as root drops to user "mosquitto", which cannot write
            # the persistence file or the log in this root-owned private directory
            # (persistence would silently do nothing).
            lines.append("user root")
        lines += [f"allow_anonymous {'false' if self.users else 'true'}",
                  "max_queued_messages 0", "max_inflight_messages 0",
                  f"log_dest file {self.log_path}", "log_type error", "log_type warning"]
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self._dir}/",
                      f"autosave_interval {self.autosave_interval}"]
            if self.autosave_on_changes:
                # autosave_interval then counts changes: 1 = save after every change
                lines.append("autosave_on_changes true")
        if self.acl is not None:
            acl_path = self._dir / "acl"
            acl_path.write_text(self.acl)
            lines.append(f"acl_file {acl_path}")
        if self.users:
            pw = self._dir / "passwd"
            pw.write_text("")
            for user, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(pw), user, password],
                               check=True, capture_output=True)
            lines.append(f"password_file {pw}")
        if self.extra_conf:
            lines.append(self.extra_conf)
        return "\n".join(lines) + "\n"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

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
