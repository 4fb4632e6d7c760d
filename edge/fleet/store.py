"""Writing parsed messages to PostgreSQL, one batch per transaction, idempotently.

``write_batch`` inserts reports with ``ON CONFLICT DO NOTHING`` on (id_ts, id) — the
id alone decides id_ts — so a report delivered twice (the agent re-sends what the
broker had not acknowledged; the broker re-delivers what a collector had not) is
stored once and counted as a duplicate. Presence rows only move forward in
(boot_seq, connection time, offline-after-online) order, whatever order two
collectors commit in. The caller commits; nothing here acknowledges anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from edge.fleet.ingest import HeartbeatIn, Ignored, Parsed, Rejected, ReportIn, StatusIn


@dataclass(slots=True)
class BatchCounts:
    reports: int = 0
    duplicates: int = 0
    statuses: int = 0
    heartbeats: int = 0
    rejects: int = 0
    ignored: int = 0

    def add(self, other: BatchCounts) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


_INSERT_REPORT = """
INSERT INTO reports (id, id_ts, ts, site, agent, kind, severity, score, subject_type,
                     subject_id, subject_fleet_id, body, topic, received_at, collector)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s)
ON CONFLICT DO NOTHING RETURNING id"""

_INSERT_IDENT = """
INSERT INTO report_identifiers (report_id, id_ts, site, ts, kind, role, id_type,
                                pseudonym, fleet_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"""

# The status order key: (boot_seq, when its connection began, offline after online).
# A will carries the time its connection began; a birth carries it as conn_ts.
_UPSERT_STATUS = """
INSERT INTO agents AS a (site, agent, state, reason, boot_seq, status_ts, status_order_ts,
                         status_rank, versions, models, config_hash, updated_at)
VALUES (%(site)s, %(agent)s, %(state)s, %(reason)s, %(boot)s, %(ts)s, %(order)s, %(rank)s,
        %(versions)s, %(models)s, %(config_hash)s, now())
ON CONFLICT (site, agent) DO UPDATE SET
    state = EXCLUDED.state, reason = EXCLUDED.reason, boot_seq = EXCLUDED.boot_seq,
    status_ts = EXCLUDED.status_ts, status_order_ts = EXCLUDED.status_order_ts,
    status_rank = EXCLUDED.status_rank,
    versions = CASE WHEN EXCLUDED.state = 'online' THEN EXCLUDED.versions ELSE a.versions END,
    models = CASE WHEN EXCLUDED.state = 'online' THEN EXCLUDED.models ELSE a.models END,
    config_hash = CASE WHEN EXCLUDED.state = 'online' THEN EXCLUDED.config_hash
                  ELSE a.config_hash END,
    updated_at = now()
WHERE (a.boot_seq, a.status_order_ts, a.status_rank)
      < (EXCLUDED.boot_seq, EXCLUDED.status_order_ts, EXCLUDED.status_rank)
   OR a.status_order_ts IS NULL"""

_INSERT_HEARTBEAT = """
INSERT INTO heartbeats (site, agent, ts, boot_seq, received_at, body)
VALUES (%s, %s, %s, %s, %s, %s::jsonb) ON CONFLICT DO NOTHING"""

# A heartbeat newer than the last status proves the box is up: it heals an offline
# that a late will wrote (agents older than conn_ts in the birth), and it creates the
# row of a box whose birth the collector never saw.
_UPSERT_HEARTBEAT = """
INSERT INTO agents AS a (site, agent, state, boot_seq, last_heartbeat_ts, last_heartbeat_at,
                         outbox_depth, oldest_pending_age_s, heartbeat, updated_at)
VALUES (%(site)s, %(agent)s, 'online', %(boot)s, %(ts)s, %(at)s, %(depth)s, %(age)s,
        %(body)s::jsonb, now())
ON CONFLICT (site, agent) DO UPDATE SET
    last_heartbeat_ts = EXCLUDED.last_heartbeat_ts,
    last_heartbeat_at = EXCLUDED.last_heartbeat_at,
    outbox_depth = EXCLUDED.outbox_depth,
    oldest_pending_age_s = EXCLUDED.oldest_pending_age_s,
    heartbeat = EXCLUDED.heartbeat,
    state = CASE WHEN a.boot_seq <= EXCLUDED.boot_seq
                  AND (a.status_ts IS NULL OR a.status_ts < EXCLUDED.last_heartbeat_ts)
                 THEN 'online' ELSE a.state END,
    updated_at = now()
WHERE a.last_heartbeat_ts IS NULL OR a.last_heartbeat_ts < EXCLUDED.last_heartbeat_ts"""

_INSERT_REJECT = """
INSERT INTO rejects (received_at, topic, reason, payload, collector)
VALUES (%s, %s, %s, %s, %s)"""


def write_batch(conn: Any, items: Sequence[tuple[Parsed, datetime]], collector: str
                ) -> BatchCounts:
    """Writes one batch inside the caller's transaction; returns what it did."""
    n = BatchCounts()
    reports = [(p, at) for p, at in items if isinstance(p, ReportIn)]
    if reports:
        with conn.cursor() as cur:
            cur.executemany(_INSERT_REPORT, [
                (r.id, r.id_ts, r.ts, r.site, r.agent, r.kind, r.severity, r.score,
                 r.subject.id_type, r.subject.pseudonym, r.subject.fleet_id,
                 r.body.decode(), r.topic, at, collector) for r, at in reports],
                returning=True)
            fresh: set[str] = set()
            while True:
                row = cur.fetchone()
                if row is not None:
                    fresh.add(row[0])
                if not cur.nextset():
                    break
        n.reports = len(fresh)
        n.duplicates = len(reports) - len(fresh)
        idents = []
        for r, _ in reports:
            if r.id not in fresh:
                continue
            fresh.discard(r.id)  # the same id twice in one batch: its identifiers once
            for i in (r.subject, *r.related):
                idents.append((r.id, r.id_ts, r.site, r.ts, r.kind, i.role, i.id_type,
                               i.pseudonym, i.fleet_id))
        if idents:
            with conn.cursor() as cur:
                cur.executemany(_INSERT_IDENT, idents)
    for p, at in items:
        if isinstance(p, StatusIn):
            conn.execute(_UPSERT_STATUS, {
                "site": p.site, "agent": p.agent, "state": p.state, "reason": p.reason,
                "boot": p.boot_seq, "ts": p.ts, "order": p.order_ts,
                "rank": 0 if p.state == "online" else 1, "versions": Jsonb(p.versions),
                "models": Jsonb(p.models), "config_hash": p.config_hash})
            n.statuses += 1
        elif isinstance(p, HeartbeatIn):
            conn.execute(_INSERT_HEARTBEAT, (p.site, p.agent, p.ts, p.boot_seq, at,
                                             p.body.decode()))
            conn.execute(_UPSERT_HEARTBEAT, {
                "site": p.site, "agent": p.agent, "boot": p.boot_seq, "ts": p.ts, "at": at,
                "depth": p.outbox_depth, "age": p.oldest_pending_age_s,
                "body": p.body.decode()})
            n.heartbeats += 1
        elif isinstance(p, Rejected):
            conn.execute(_INSERT_REJECT, (at, p.topic[:1024], p.reason[:2000],
                                          p.payload[:65536], collector))
            n.rejects += 1
        elif isinstance(p, Ignored):
            n.ignored += 1
    return n
