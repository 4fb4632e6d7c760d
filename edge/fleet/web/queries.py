"""What the desks read and write, as typed rows. One function per question.

Which reports a desk sees is decided here and only here (:data:`DESK_KINDS`): the
fraud desk the telecom and watchlist alerts, the inspection desk the parcel alerts
(their divert outcomes shown with them), the admin desk the boxes and the audit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from edge.fleet.correlate import Case, load_cases

SEVERITIES = ("info", "low", "medium", "high", "critical")
STATUSES = ("new", "acknowledged", "closed")
INSPECTION_RESULTS = ("confirmed", "cleared", "not_found")

# desk -> (SQL condition on r.kind, kind prefixes for case grouping)
DESK_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "fraud": ("r.kind NOT LIKE 'parcel.%%' AND r.kind NOT LIKE 'agent.%%'",
              ("simbox.", "goip.", "watchlist.")),
    "inspection": ("r.kind LIKE 'parcel.%%' AND r.kind <> 'parcel.divert'", ("parcel.",)),
}


@dataclass(slots=True, frozen=True)
class AlertRow:
    id: str
    ts: datetime
    site: str
    agent: str
    kind: str
    severity: str
    score: float
    subject_type: str
    subject_id: str
    status: str
    case_id: str | None = None
    case_size: int = 0


@dataclass(slots=True, frozen=True)
class Filters:
    day: date
    site: str = ""
    kind: str = ""
    severity: str = ""
    status: str = ""

    @property
    def span(self) -> tuple[datetime, datetime]:
        lo = datetime(self.day.year, self.day.month, self.day.day, tzinfo=UTC)
        return lo, lo + timedelta(days=1)


def _alert_row(r: Any, case: Case | None) -> AlertRow:
    return AlertRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                    case_id=case.id if case else None,
                    case_size=len(case.reports) if case else 0)


def desk_of(kind: str) -> str:
    if kind.startswith("parcel."):
        return "inspection"
    return "admin" if kind.startswith("agent.") else "fraud"


def list_alerts(conn: Any, desk: str, f: Filters, limit: int = 1000) -> list[AlertRow]:
    cond, _ = DESK_KINDS[desk]
    lo, hi = f.span
    where = [cond, "r.ts >= %(lo)s", "r.ts < %(hi)s"]
    args: dict[str, Any] = {"lo": lo, "hi": hi, "limit": limit}
    for col, val in (("site", f.site), ("kind", f.kind), ("severity", f.severity)):
        if val:
            where.append(f"r.{col} = %({col})s")
            args[col] = val
    if f.status:
        where.append("coalesce(s.status, 'new') = %(status)s")
        args["status"] = f.status
    rows = conn.execute(f"""SELECT r.id, r.ts, r.site, r.agent, r.kind, r.severity, r.score,
            r.subject_type, r.subject_id, coalesce(s.status, 'new')
        FROM reports r LEFT JOIN alert_state s ON s.report_id = r.id
        WHERE {' AND '.join(where)} ORDER BY r.ts DESC LIMIT %(limit)s""", args).fetchall()
    cases = {rid: c for c in day_cases(conn, desk, f.day) for rid in c.reports}
    return [_alert_row(r, cases.get(r[0])) for r in rows]


_CASES: dict[tuple[str, str, date], tuple[float, list[Case]]] = {}
CASES_TTL_S = 20.0


def day_cases(conn: Any, desk: str, day: date) -> list[Case]:
    """The desk's cases of one day, recomputed at most every CASES_TTL_S per database
    (each page of a desk needs them; grouping a busy day costs a scan of its
    identifiers)."""
    key = (conn.info.dsn, desk, day)
    hit = _CASES.get(key)
    now = time.monotonic()
    if hit is not None and now - hit[0] < CASES_TTL_S:
        return hit[1]
    lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
    cases = load_cases(conn, days=1, until=lo + timedelta(days=1),
                       kind_prefixes=DESK_KINDS[desk][1])
    if len(_CASES) > 64:
        _CASES.clear()
    _CASES[key] = (now, cases)
    return cases


def facets(conn: Any, desk: str, day: date) -> dict[str, list[str]]:
    cond, _ = DESK_KINDS[desk]
    lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
    out = {}
    for col in ("site", "kind"):
        out[col] = [r[0] for r in conn.execute(
            f"SELECT DISTINCT r.{col} FROM reports r WHERE {cond} AND r.ts >= %s "
            f"AND r.ts < %s ORDER BY 1", (lo, lo + timedelta(days=1))).fetchall()]
    return out


@dataclass(slots=True, frozen=True)
class AlertDetail:
    row: AlertRow
    report: dict[str, Any]
    note: str
    updated_by: str | None
    inspection: dict[str, Any] | None
    diverts: list[dict[str, Any]]
    case: Case | None


def alert(conn: Any, report_id: str) -> AlertDetail | None:
    r = conn.execute("""SELECT r.id, r.ts, r.site, r.agent, r.kind, r.severity, r.score,
            r.subject_type, r.subject_id, coalesce(s.status, 'new'), r.body::text,
            coalesce(s.note, ''), s.updated_by
        FROM reports r LEFT JOIN alert_state s ON s.report_id = r.id
        WHERE r.id = %s""", (report_id,)).fetchone()
    if r is None:
        return None
    body = orjson.loads(r[10])
    insp = conn.execute("""SELECT result, found, note, entered_by, entered_at
        FROM inspections WHERE report_id = %s""", (report_id,)).fetchone()
    refs = {ev["features"].get("alert_ref") for ev in body.get("evidence", ())
            if isinstance(ev.get("features"), dict)} - {None}
    diverts = []
    for ref in refs:
        for ts, txt in conn.execute("""SELECT ts, body::text FROM reports
                WHERE kind = 'parcel.divert' AND site = %s AND ts >= %s - interval '1 day'
                AND body -> 'evidence' @> %s::jsonb ORDER BY ts""",
                (r[2], r[1], orjson.dumps([{"features": {"alert_ref": ref}}]).decode())
        ).fetchall():
            ev = orjson.loads(txt)["evidence"][0]
            diverts.append({"ts": ts, "status": ev["features"].get("divert_status"),
                            "reason": ev["reason"]})
    desk = desk_of(r[4])
    case = None
    if desk in DESK_KINDS:
        case = next((c for c in day_cases(conn, desk, r[1].date()) if report_id in c.reports),
                    None)
    row = _alert_row(r, case)
    return AlertDetail(row, body, r[11], r[12], None if insp is None else dict(
        zip(("result", "found", "note", "entered_by", "entered_at"), insp, strict=True)),
        diverts, case)


def set_status(conn: Any, report_ids: list[str], status: str, user: str, note: str = ""
               ) -> int:
    if status not in STATUSES:
        raise ValueError(status)
    n = 0
    for rid in report_ids:
        n += conn.execute("""INSERT INTO alert_state (report_id, status, note, updated_by)
            VALUES (%s, %s, %s, %s) ON CONFLICT (report_id) DO UPDATE SET
            status = EXCLUDED.status, note = CASE WHEN EXCLUDED.note = '' THEN
            alert_state.note ELSE EXCLUDED.note END, updated_by = EXCLUDED.updated_by,
            updated_at = now()""", (rid, status, note[:2000], user)).rowcount
    return n


def record_inspection(conn: Any, report_id: str, result: str, found: str, note: str,
                      user: str) -> None:
    if result not in INSPECTION_RESULTS:
        raise ValueError(result)
    conn.execute("""INSERT INTO inspections (report_id, result, found, note, entered_by)
        VALUES (%s, %s, %s, %s, %s) ON CONFLICT (report_id) DO UPDATE SET
        result = EXCLUDED.result, found = EXCLUDED.found, note = EXCLUDED.note,
        entered_by = EXCLUDED.entered_by, entered_at = now()""",
                 (report_id, result, found[:500], note[:2000], user))
    set_status(conn, [report_id], "closed", user)


@dataclass(slots=True, frozen=True)
class BoxRow:
    site: str
    agent: str
    state: str
    reason: str | None
    boot_seq: int
    last_heartbeat_at: datetime | None
    outbox_depth: int | None
    oldest_pending_age_s: float | None
    versions: dict[str, Any]
    models: dict[str, Any]
    config_hash: str
    alerts: tuple[str, ...]


def boxes(conn: Any) -> list[BoxRow]:
    open_alerts: dict[tuple[str, str], list[str]] = {}
    for site, agent, kind in conn.execute(
            "SELECT site, agent, kind FROM fleet_alerts WHERE cleared_at IS NULL").fetchall():
        open_alerts.setdefault((site, agent), []).append(kind)
    rows = conn.execute("""SELECT site, agent, state, reason, boot_seq, last_heartbeat_at,
        outbox_depth, oldest_pending_age_s, versions, models, config_hash FROM agents
        ORDER BY site, agent""").fetchall()
    return [BoxRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                   alerts=tuple(sorted(open_alerts.get((r[0], r[1]), ())))) for r in rows]


def fleet_alerts(conn: Any, limit: int = 200) -> list[tuple[Any, ...]]:
    return list(conn.execute("""SELECT raised_at, cleared_at, site, agent, kind, detail::text
        FROM fleet_alerts ORDER BY cleared_at IS NOT NULL, raised_at DESC LIMIT %s""",
                             (limit,)).fetchall())


def audit_rows(conn: Any, limit: int = 300) -> list[tuple[Any, ...]]:
    return list(conn.execute("""SELECT at, user_name, role, action, object, detail::text,
        remote FROM audit ORDER BY id DESC LIMIT %s""", (limit,)).fetchall())
