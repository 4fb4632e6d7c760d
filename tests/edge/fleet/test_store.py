"""Migrations from empty, idempotent inserts, presence ordering, partitions, retention,
health alerts (real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest

from edge.errors import ConfigError
from edge.fleet import health, maintenance
from edge.fleet.config import FleetHealth
from edge.fleet.ingest import Rejected, ReportIn, parse, ulid_time
from edge.fleet.migrate import Migration, bundled, current_version, migrate
from edge.fleet.store import write_batch
from edge.report.ids import IdFactory
from edge.report.reporter import rfc3339_ms

PREFIX = "afe/v1"


def report(rid: str, ts: float, kind: str = "simbox.sim", site: str = "s1",
           agent: str = "a1", subject: str = "h1:" + "a" * 32) -> bytes:
    return orjson.dumps({
        "schema": "afe.report/1", "id": rid, "ts": rfc3339_ms(ts), "site": site,
        "agent": agent, "kind": kind, "severity": "high", "score": 0.9,
        "subject": {"type": "imsi", "id": subject, "pseudonymised": True},
        "evidence": [{"reason": "r", "features": {"x": 1}}], "model": None,
        "route": ["telecom"]})


def topic(kind: str = "simbox.sim", site: str = "s1", agent: str = "a1") -> str:
    return f"{PREFIX}/{site}/{agent}/report/{kind}"


@pytest.fixture()
def conn(dsn: str):  # type: ignore[no-untyped-def]
    with psycopg.connect(dsn, autocommit=True) as c:
        migrate(c)
        yield c


def test_migrations_up_from_empty_and_idempotent(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        assert current_version(c) == 0
        done = migrate(c)
        assert done == [m.version for m in bundled()] and len(done) >= 2
        assert migrate(c) == []
        assert current_version(c) == max(done)
        tables = {r[0] for r in c.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()}
        assert {"reports", "reports_default", "agents", "audit", "desk_users"} <= tables
        kinds = dict(c.execute("SELECT relname, relkind FROM pg_class WHERE relname IN "
                               "('reports', 'heartbeats')").fetchall())
        assert set(kinds.values()) == {"p"}  # declaratively partitioned
        # an edited migration is refused
        edited = [Migration(m.version, m.name, m.sql + "\n-- edited") for m in bundled()]
        with pytest.raises(ConfigError, match="changed after it was applied"):
            migrate(c, edited)


def test_parse_rejects_with_reasons() -> None:
    ids = IdFactory("t")
    rid = ids.next(1_800_000_000.0)
    ok = parse(topic(), report(rid, 1_800_000_000.0), PREFIX, rid)
    assert isinstance(ok, ReportIn) and ok.id_ts == ulid_time(rid)
    cases = {
        b"{not json": "not JSON",
        b"[1]": "not a JSON object",
        report(rid, 1e9).replace(b'"high"', b'"huge"'): "schema",
    }
    for payload, why in cases.items():
        got = parse(topic(), payload, PREFIX)
        assert isinstance(got, Rejected) and why in got.reason
    wrong = parse(topic(site="s2"), report(rid, 1e9), PREFIX)
    assert isinstance(wrong, Rejected) and "topic says" in wrong.reason
    other = parse(topic(), report(rid, 1e9), PREFIX, user_id="X" * 26)
    assert isinstance(other, Rejected) and "user property" in other.reason
    assert isinstance(parse("elsewhere/x", b"{}", PREFIX), Rejected)


def test_insert_is_idempotent_by_report_id(conn: psycopg.Connection) -> None:
    ids = IdFactory("t")
    now = datetime.now(UTC)
    t = now.timestamp()
    rows = [(parse(topic(), report(ids.next(t + i), t + i), PREFIX), now) for i in range(5)]
    with conn.transaction():
        first = write_batch(conn, rows + rows[:2], "c1")   # a copy inside the batch
    with conn.transaction():
        again = write_batch(conn, rows, "c2")               # and a redelivery later
    assert (first.reports, first.duplicates) == (5, 2)
    assert (again.reports, again.duplicates) == (0, 5)
    assert conn.execute("SELECT count(*) FROM reports").fetchone()[0] == 5
    assert conn.execute("SELECT count(*) FROM report_identifiers").fetchone()[0] == 5


def _status(state: str, boot: int, ts: float, conn_ts: float | None = None,
            reason: str | None = None) -> bytes:
    d: dict[str, object] = {"state": state, "site": "s1", "agent": "a1", "boot_seq": boot,
                            "ts": ts}
    if conn_ts is not None:
        d["conn_ts"] = conn_ts
    if reason:
        d["reason"] = reason
    return orjson.dumps(d)


def test_presence_moves_forward_whatever_the_commit_order(conn: psycopg.Connection) -> None:
    st = f"{PREFIX}/s1/a1/status"
    now = datetime.now(UTC)
    birth1 = parse(st, _status("online", 1, 100.5, conn_ts=100.0), PREFIX)
    lost1 = parse(st, _status("offline", 1, 100.0, reason="lost"), PREFIX)  # the will
    birth2 = parse(st, _status("online", 1, 200.5, conn_ts=200.0), PREFIX)

    def state() -> str:
        return str(conn.execute("SELECT state FROM agents").fetchone()[0])

    for p in (birth1, lost1):
        with conn.transaction():
            write_batch(conn, [(p, now)], "c")
    assert state() == "offline"
    for p in (birth2, lost1):  # a late copy of the old will from a slower collector
        with conn.transaction():
            write_batch(conn, [(p, now)], "c")
    assert state() == "online"


def test_partitions_move_default_rows_and_retention_by_kind(conn: psycopg.Connection) -> None:
    ids = IdFactory("t")
    now = datetime.now(UTC)
    old = now - timedelta(days=60)
    rows = [(parse(topic(k), report(ids.next(old.timestamp()), old.timestamp(), k), PREFIX),
             now) for k in ("agent.status", "simbox.sim")]
    with conn.transaction():
        write_batch(conn, rows, "c")
    assert conn.execute("SELECT count(*) FROM reports_default").fetchone()[0] == 2
    assert maintenance.ensure_partition(conn, "reports", old.date())
    assert conn.execute("SELECT count(*) FROM reports_default").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM reports").fetchone()[0] == 2
    made = maintenance.ensure_partitions(conn, now.date(), 1, 2)
    assert made == 4 * 3
    res = maintenance.apply_retention(conn, now)
    # agent.* keeps 30 days, everything else 400: only the status report goes
    assert res.reports_deleted == 1
    assert conn.execute("SELECT kind FROM reports").fetchall() == [("simbox.sim",)]
    res = maintenance.apply_retention(conn, now + timedelta(days=400))
    assert res.partitions_dropped >= 1
    assert conn.execute("SELECT count(*) FROM reports").fetchone()[0] == 0


def test_health_sweep_raises_and_clears_fleet_alerts(conn: psycopg.Connection) -> None:
    now = datetime.now(UTC)
    st = f"{PREFIX}/s1/a1/status"
    hb = f"{PREFIX}/s1/a1/heartbeat"
    beat = {"site": "s1", "agent": "a1", "boot_seq": 1, "ts": now.timestamp(),
            "outbox": {"depth": 5000, "oldest_pending_age_s": 10.0}}
    with conn.transaction():
        write_batch(conn, [(parse(st, _status("online", 1, now.timestamp()), PREFIX), now),
                           (parse(hb, orjson.dumps(beat), PREFIX), now)], "c")
    cfg = FleetHealth(silent_after_s=60)
    assert health.sweep(conn, cfg) == (1, 0)           # backlog
    kinds = {r[0] for r in conn.execute(
        "SELECT kind FROM fleet_alerts WHERE cleared_at IS NULL").fetchall()}
    assert kinds == {"box.backlog"}
    conn.execute("UPDATE agents SET last_heartbeat_at = now() - interval '10 minutes'")
    assert health.sweep(conn, cfg) == (1, 0)           # and now silent too
    late = parse(st, _status("offline", 1, now.timestamp() + 1, reason="lost"), PREFIX)
    with conn.transaction():
        write_batch(conn, [(late, now)], "c")
    opened, cleared = health.sweep(conn, cfg) or (0, 0)
    assert (opened, cleared) == (1, 2)                 # offline replaces silent + backlog
    boxes = health.load_boxes(conn)
    assert [a.kind for a in health.evaluate(boxes, now, cfg)] == ["box.offline"]
