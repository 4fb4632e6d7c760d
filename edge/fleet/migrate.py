"""Versioned schema migrations: ``edge/fleet/migrations/NNNN_name.sql``, applied in order.

Each file runs in its own transaction and is recorded in ``schema_migrations`` with
its sha256. Several collectors may start at once: a transaction-level advisory lock
makes them take turns, and the second finds nothing left to do. A recorded migration
whose file has changed since is an error (a migration is never edited once shipped:
add a new one).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from edge.errors import ConfigError

_LOCK_KEY = 0x61666566  # "afef": one advisory lock id for the migrator
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(slots=True, frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def bundled() -> list[Migration]:
    """The migrations shipped in this package, by version."""
    out = []
    for entry in resources.files("edge.fleet").joinpath("migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            out.append(Migration(int(m.group(1)), m.group(2), entry.read_text("utf-8")))
    out.sort(key=lambda m: m.version)
    if len({m.version for m in out}) != len(out):
        raise ConfigError("two migrations share a version number")
    return out


def migrate(conn: Any, migrations: list[Migration] | None = None) -> list[int]:
    """Applies what is missing; returns the versions applied now. ``conn``: psycopg
    connection (autocommit off or on; each migration is its own transaction)."""
    migrations = bundled() if migrations is None else migrations
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
            version integer PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now())""")
    for mig in migrations:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            row = conn.execute("SELECT sha256 FROM schema_migrations WHERE version = %s",
                               (mig.version,)).fetchone()
            if row is not None:
                if row[0] != mig.sha256:
                    raise ConfigError(f"migration {mig.version:04d}_{mig.name} was changed "
                                      "after it was applied; add a new migration instead")
                continue
            conn.execute(mig.sql)
            conn.execute("INSERT INTO schema_migrations (version, name, sha256) "
                         "VALUES (%s, %s, %s)", (mig.version, mig.name, mig.sha256))
            applied.append(mig.version)
    return applied


def current_version(conn: Any) -> int:
    """The highest applied version (0 on an empty database)."""
    row = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
    if row is None or row[0] is None:
        return 0
    got = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(got[0]) if got else 0
