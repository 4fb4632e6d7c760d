"""A throwaway PostgreSQL cluster on a free loopback port, for tests and benches.

``initdb`` into a temporary directory, ``pg_ctl start`` on a free port with its socket
in that directory; the caller can stop it (fast or immediate, i.e. like a crash),
start it again on the same port and data, and remove it. PostgreSQL refuses to run as
root: as root the cluster belongs to the OS user ``postgres`` (Debian's package
creates it) and every command runs through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from edge.errors import LinkError
from simulators.broker import free_port

_OS_USER = "postgres"


def find_pg_bin() -> Path:
    """The directory holding initdb and pg_ctl (Debian: /usr/lib/postgresql/<v>/bin)."""
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(cand, "initdb").exists():
            return Path(cand)
    which = shutil.which("initdb")
    if which:
        return Path(which).resolve().parent
    raise LinkError("PostgreSQL server binaries not found (Debian: apt-get install postgresql)")


class LocalPostgres:
    """``with LocalPostgres() as pg: pg.dsn``; ``pg.stop("immediate")`` / ``pg.start()``."""

    def __init__(self, port: int | None = None, *, fsync: bool = False) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.bin = find_pg_bin()
        self._root = Path(tempfile.mkdtemp(prefix="afe-pg-"))
        self.data = self._root / "data"
        self.log_path = self._root / "postgres.log"
        # fsync only matters when the OS crashes; a killed postgres loses nothing that a
        # commit returned for, so tests run without it (much faster on a shared disk)
        self.fsync = fsync
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam(_OS_USER)
            except KeyError:
                raise LinkError("running as root needs the OS user 'postgres' "
                                "(Debian's postgresql package creates it)") from None
            os.chown(self._root, pw.pw_uid, pw.pw_gid)
            self._as_user = ["runuser", "-u", _OS_USER, "--"]
        self.user = "afe"
        self.dbname = "fleet"

    @property
    def dsn(self) -> str:
        return (f"host={self.host} port={self.port} user={self.user} dbname={self.dbname} "
                f"connect_timeout=5")

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._as_user, *args], check=check, capture_output=True,
                              text=True, timeout=120)

    def init(self) -> None:
        pwfile = self._root / "pw"
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user,
                  "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        pwfile.unlink(missing_ok=True)

    def start(self, timeout_s: float = 30.0) -> LocalPostgres:
        if not (self.data / "PG_VERSION").exists():
            self.init()
        opts = (f"-p {self.port} -k {self._root} -c listen_addresses={self.host} "
                f"-c fsync={'on' if self.fsync else 'off'} -c full_page_writes=off "
                f"-c max_connections=100 -c shared_buffers=64MB")
        res = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                        str(self.log_path), "-o", opts, "-w", "-t", str(int(timeout_s)),
                        "start", check=False)
        if res.returncode != 0:
            raise LinkError(f"postgres did not start: {res.stderr.strip()[:300]} "
                            f"{self.log_text()[-600:]}")
        if not self._db_exists():
            self._run(str(self.bin / "createdb"), "-h", self.host, "-p", str(self.port),
                      "-U", self.user, self.dbname)
        return self

    def _db_exists(self) -> bool:
        res = self._run(str(self.bin / "psql"), "-h", self.host, "-p", str(self.port),
                        "-U", self.user, "-d", "postgres", "-tAc",
                        f"SELECT 1 FROM pg_database WHERE datname='{self.dbname}'",
                        check=False)
        return res.stdout.strip() == "1"

    def new_database(self, name: str) -> str:
        """Creates an empty database in this cluster; returns its DSN."""
        self._run(str(self.bin / "createdb"), "-h", self.host, "-p", str(self.port),
                  "-U", self.user, name)
        return (f"host={self.host} port={self.port} user={self.user} dbname={name} "
                f"connect_timeout=5")

    def stop(self, mode: str = "fast") -> None:
        """``mode``: "fast" (clean), "immediate" (no checkpoint: recovery at next start)."""
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                      "stop", check=False)

    def restart(self, mode: str = "fast", down_s: float = 0.0) -> None:
        self.stop(mode)
        if down_s:
            time.sleep(down_s)
        self.start()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop("immediate")
        shutil.rmtree(self._root, ignore_errors=True)


def main() -> None:
    """Runs a throwaway cluster until interrupted and prints its DSN."""
    import argparse

    ap = argparse.ArgumentParser(description="Start a throwaway PostgreSQL cluster on a free "
                                 "loopback port until Ctrl-C; prints its DSN.")
    ap.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    args = ap.parse_args()
    with LocalPostgres(args.port) as pg:
        print(pg.dsn, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
