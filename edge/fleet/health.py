"""Fleet health: which boxes are offline, silent or backed up, as fleet alerts.

:func:`evaluate` is pure: box states and the time in, the set of alerts that should
be open out. :func:`sweep` reads the ``agents`` table, opens the alerts that are new
and clears those that no longer hold, in one transaction, under an advisory lock so
that of N collectors one sweeps at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from edge.fleet.config import FleetHealth
from edge.fleet.maintenance import try_lock

LOCK_HEALTH = 0x61666568  # "afeh"


@dataclass(slots=True, frozen=True)
class BoxState:
    site: str
    agent: str
    state: str
    reason: str | None
    status_ts: datetime | None
    last_heartbeat_at: datetime | None
    outbox_depth: int | None
    oldest_pending_age_s: float | None
    updated_at: datetime


@dataclass(slots=True, frozen=True)
class FleetAlert:
    site: str
    agent: str
    kind: str       # "box.offline" | "box.silent" | "box.backlog"
    detail: tuple[tuple[str, Any], ...]


def evaluate(boxes: list[BoxState], now: datetime, cfg: FleetHealth) -> list[FleetAlert]:
    """The alerts that should be open now."""
    out = []
    for b in boxes:
        if b.state == "offline":
            if cfg.offline_alert and b.reason != "shutdown":
                out.append(FleetAlert(b.site, b.agent, "box.offline",
                                      (("reason", b.reason or "unknown"),
                                       ("since", b.status_ts.isoformat()
                                        if b.status_ts else None))))
            continue
        seen = b.last_heartbeat_at or b.status_ts or b.updated_at
        silent = (now - seen).total_seconds()
        if silent >= cfg.silent_after_s:
            out.append(FleetAlert(b.site, b.agent, "box.silent",
                                  (("silent_s", round(silent, 1)),
                                   ("last_heartbeat", b.last_heartbeat_at.isoformat()
                                    if b.last_heartbeat_at else None))))
        depth, age = b.outbox_depth, b.oldest_pending_age_s
        if (depth is not None and depth >= cfg.backlog_depth) or \
                (age is not None and age >= cfg.backlog_age_s):
            out.append(FleetAlert(b.site, b.agent, "box.backlog",
                                  (("outbox_depth", depth), ("oldest_pending_age_s", age))))
    return out


def load_boxes(conn: Any) -> list[BoxState]:
    rows = conn.execute("""SELECT site, agent, state, reason, status_ts, last_heartbeat_at,
        outbox_depth, oldest_pending_age_s, updated_at FROM agents""").fetchall()
    return [BoxState(*r) for r in rows]


def sweep(conn: Any, cfg: FleetHealth) -> tuple[int, int] | None:
    """(opened, cleared), or None when another collector holds the sweep."""
    with conn.transaction():
        if not try_lock(conn, LOCK_HEALTH):
            return None
        now = conn.execute("SELECT now()").fetchone()[0]
        want = evaluate(load_boxes(conn), now, cfg)
        keys = {(a.site, a.agent, a.kind) for a in want}
        opened = 0
        for a in want:
            cur = conn.execute("""INSERT INTO fleet_alerts (site, agent, kind, detail)
                VALUES (%s, %s, %s, %s)
                ON CONFLICT (site, agent, kind) WHERE cleared_at IS NULL
                DO UPDATE SET detail = EXCLUDED.detail RETURNING (xmax = 0)""",
                               (a.site, a.agent, a.kind, Jsonb(dict(a.detail))))
            row = cur.fetchone()
            opened += 1 if row and row[0] else 0
        cleared = 0
        for aid, site, agent, kind in conn.execute(
                "SELECT id, site, agent, kind FROM fleet_alerts WHERE cleared_at IS NULL"
        ).fetchall():
            if (site, agent, kind) not in keys:
                conn.execute("UPDATE fleet_alerts SET cleared_at = now() WHERE id = %s",
                             (aid,))
                cleared += 1
    return opened, cleared
