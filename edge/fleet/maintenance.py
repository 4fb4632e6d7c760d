"""Day partitions ahead of time, and retention by kind.

``ensure_partitions`` creates one partition per UTC day for the partitioned tables;
rows that had landed in a table's DEFAULT partition for that day (a box whose clock
was off, a collector that ran before the partition existed) are moved into it in
the same transaction, since PostgreSQL refuses to create a partition whose range
the default partition already holds rows for. ``apply_retention`` deletes reports
past the keep time of their kind (``retention`` table, longest prefix wins) and drops
whole day partitions once nothing in them may be kept.

Several collectors run these; each job takes a transaction-level advisory lock and a
collector that does not get it skips the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from psycopg import sql

# table -> partition key column
PARTITIONED = {"reports": "id_ts", "report_identifiers": "id_ts", "heartbeats": "ts"}
LOCK_PARTITIONS = 0x61666570  # "afep"
LOCK_RETENTION = 0x61666572  # "afer"


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def try_lock(conn: Any, key: int) -> bool:
    """A transaction-level advisory lock, without waiting (inside a transaction)."""
    row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (key,)).fetchone()
    return bool(row and row[0])


def existing_partitions(conn: Any, table: str) -> dict[date, str]:
    rows = conn.execute("""SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = %s""", (table,)).fetchall()
    out = {}
    for (name,) in rows:
        tail = name.rsplit("_p", 1)[-1]
        if len(tail) == 8 and tail.isdigit():
            out[datetime.strptime(tail, "%Y%m%d").date()] = name
    return out


def ensure_partition(conn: Any, table: str, day: date) -> bool:
    """Creates the day's partition (moving its rows out of DEFAULT); True if created."""
    key = PARTITIONED[table]
    name = partition_name(table, day)
    lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
    hi = lo + timedelta(days=1)
    with conn.transaction():
        # two collectors starting together: one creates, the other then finds it
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_PARTITIONS,))
        if conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None:
            return False
        default = sql.Identifier(f"{table}_default")
        tmp = sql.Identifier(f"_move_{table}")
        conn.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(
            tmp, sql.Identifier(table)))
        conn.execute(sql.SQL("WITH m AS (DELETE FROM {} WHERE {} >= %s AND {} < %s "
                             "RETURNING *) INSERT INTO {} SELECT * FROM m").format(
            default, sql.Identifier(key), sql.Identifier(key), tmp), (lo, hi))
        conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})")
                     .format(sql.Identifier(name), sql.Identifier(table),
                             sql.Literal(lo), sql.Literal(hi)))
        conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
            sql.Identifier(table), tmp))
    return True


def ensure_partitions(conn: Any, today: date, back_days: int = 2, ahead_days: int = 7
                      ) -> int:
    """Partitions of every partitioned table for [today - back, today + ahead]."""
    made = 0
    for table in PARTITIONED:
        have = existing_partitions(conn, table)
        for off in range(-back_days, ahead_days + 1):
            day = today + timedelta(days=off)
            if day not in have and ensure_partition(conn, table, day):
                made += 1
    return made


@dataclass(slots=True)
class RetentionResult:
    reports_deleted: int = 0
    partitions_dropped: int = 0
    heartbeats_deleted: int = 0
    rejects_deleted: int = 0
    alerts_deleted: int = 0
    sessions_deleted: int = 0


_KEEP = """(SELECT r.keep_days FROM retention r WHERE r.kind_prefix NOT LIKE '@%%'
            AND {tbl}.kind LIKE r.kind_prefix || '%%'
            ORDER BY length(r.kind_prefix) DESC LIMIT 1)"""


def apply_retention(conn: Any, now: datetime | None = None) -> RetentionResult:
    """Deletes what is past its keep time (see the module docstring)."""
    res = RetentionResult()
    now = now or datetime.now(UTC)
    with conn.transaction():
        pol = dict(conn.execute("SELECT kind_prefix, keep_days FROM retention").fetchall())
        kinds = [v for k, v in pol.items() if not k.startswith("@")]
        if not kinds:
            return res
        min_keep, max_keep = min(kinds), max(kinds)
        older = now - timedelta(days=min_keep)
        for table in ("reports", "report_identifiers"):
            cur = conn.execute(
                f"DELETE FROM {table} WHERE id_ts < %s AND id_ts < %s - "
                f"make_interval(days => coalesce({_KEEP.format(tbl=table)}, %s))",
                (older, now, max_keep))
            if table == "reports":
                res.reports_deleted = cur.rowcount
        # whole days beyond the longest keep time go at once
        edge = (now - timedelta(days=max_keep)).date()
        hb_edge = (now - timedelta(days=pol.get("@heartbeats", 14))).date()
        for table in PARTITIONED:
            limit = hb_edge if table == "heartbeats" else edge
            for day, name in existing_partitions(conn, table).items():
                if day < limit:
                    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
                    res.partitions_dropped += 1
        res.heartbeats_deleted = conn.execute(
            "DELETE FROM heartbeats WHERE ts < %s",
            (now - timedelta(days=pol.get("@heartbeats", 14)),)).rowcount
        res.rejects_deleted = conn.execute(
            "DELETE FROM rejects WHERE received_at < %s",
            (now - timedelta(days=pol.get("@rejects", 30)),)).rowcount
        res.alerts_deleted = conn.execute(
            "DELETE FROM fleet_alerts WHERE cleared_at < %s",
            (now - timedelta(days=pol.get("@fleet_alerts", 180)),)).rowcount
        if conn.execute("SELECT to_regclass('desk_sessions')").fetchone()[0] is not None:
            res.sessions_deleted = conn.execute(
                "DELETE FROM desk_sessions WHERE expires_at < %s", (now,)).rowcount
    return res
