"""Sans-IO: one MQTT message (topic, payload) in, one typed record to store out.

:func:`parse` never raises on what a box sent: a message that is not what its topic
says becomes a :class:`Rejected` with the reason, which the collector stores and
acknowledges (sending it again would not mend it) and counts. Topics are those of
:mod:`edge.report.topics`: ``<prefix>/<site>/<agent>/report/<kind>``, ``.../status``,
``.../heartbeat``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from edge.fleet.validate import report_errors
from edge.report.schema import SCHEMA_ID

_ULID = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID_VAL = {c: i for i, c in enumerate(_ULID)}
MAX_PAYLOAD = 1 << 20  # a report larger than 1 MiB is refused (a crop is a few tens of kB)


@dataclass(slots=True, frozen=True)
class Identifier:
    """One subject of a report, as it left the box (a pseudonym for personal types)."""

    role: str            # "subject" | "related"
    id_type: str
    pseudonym: str
    fleet_id: str | None  # fleet-scoped pseudonym, when the box computes one


@dataclass(slots=True, frozen=True)
class ReportIn:
    id: str
    id_ts: datetime       # time part of the ULID (partition key)
    ts: datetime          # event time of the detection
    site: str
    agent: str
    kind: str
    severity: str
    score: float
    subject: Identifier
    related: tuple[Identifier, ...]
    body: bytes           # the JSON document as received
    topic: str


@dataclass(slots=True, frozen=True)
class StatusIn:
    """Presence: a birth (``online``) or an ``offline`` (will or clean exit)."""

    site: str
    agent: str
    state: str
    reason: str | None
    boot_seq: int
    ts: datetime
    order_ts: datetime    # when the connection began (births with conn_ts; else ts)
    versions: dict[str, Any]
    models: dict[str, Any]
    config_hash: str
    topic: str


@dataclass(slots=True, frozen=True)
class HeartbeatIn:
    site: str
    agent: str
    ts: datetime
    boot_seq: int
    outbox_depth: int | None
    oldest_pending_age_s: float | None
    body: bytes
    topic: str


@dataclass(slots=True, frozen=True)
class Rejected:
    topic: str
    reason: str
    payload: bytes


@dataclass(slots=True, frozen=True)
class Ignored:
    """A topic the collector does not store (e.g. downlink acknowledgements)."""

    topic: str


Parsed = ReportIn | StatusIn | HeartbeatIn | Rejected | Ignored


def ulid_time(ulid: str) -> datetime:
    """The millisecond timestamp in a ULID's first 10 characters, as UTC datetime."""
    ms = 0
    for c in ulid[:10]:
        ms = ms * 32 + _ULID_VAL[c]
    return datetime.fromtimestamp(ms / 1000.0, UTC)


def _rfc3339(s: str) -> datetime:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _epoch(v: Any) -> datetime | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    try:
        return datetime.fromtimestamp(float(v), UTC)
    except (OverflowError, OSError, ValueError):
        return None


def split_topic(topic: str, prefix: str) -> tuple[str, str, list[str]] | None:
    """(site, agent, rest) of a topic under ``prefix``, or None."""
    head = prefix.rstrip("/") + "/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head):].split("/")
    if len(parts) < 3 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1], parts[2:]


def _ident(role: str, d: dict[str, Any]) -> Identifier:
    fid = d.get("fleet_id")
    return Identifier(role, d["type"], d["id"], fid if isinstance(fid, str) else None)


def parse_report(topic: str, site: str, agent: str, kind: str, payload: bytes,
                 user_id: str | None = None) -> ReportIn | Rejected:
    doc = _json_object(topic, payload)
    if isinstance(doc, Rejected):
        return doc
    if doc.get("schema") != SCHEMA_ID:
        return Rejected(topic, f"schema is {doc.get('schema')!r}, not {SCHEMA_ID}", payload)
    errors = report_errors(doc)
    if errors:
        return Rejected(topic, "schema: " + "; ".join(errors[:3]), payload)
    if (doc["site"], doc["agent"], doc["kind"]) != (site, agent, kind):
        return Rejected(topic, f"topic says {site}/{agent}/{kind}, body says "
                        f"{doc['site']}/{doc['agent']}/{doc['kind']}", payload)
    if user_id is not None and user_id != doc["id"]:
        return Rejected(topic, f"user property id {user_id} != body id {doc['id']}", payload)
    try:
        ts = _rfc3339(doc["ts"])
        id_ts = ulid_time(doc["id"])
    except (ValueError, KeyError) as exc:
        return Rejected(topic, f"bad time: {exc}", payload)
    related = tuple(_ident("related", r) for r in doc.get("related", ()))
    return ReportIn(doc["id"], id_ts, ts, site, agent, kind, doc["severity"],
                    float(doc["score"]), _ident("subject", doc["subject"]), related,
                    payload, topic)


def _json_object(topic: str, payload: bytes) -> dict[str, Any] | Rejected:
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return Rejected(topic, f"not JSON: {exc}", payload)
    if not isinstance(doc, dict):
        return Rejected(topic, "not a JSON object", payload)
    return doc


def _object(topic: str, payload: bytes, site: str, agent: str
            ) -> dict[str, Any] | Rejected:
    doc = _json_object(topic, payload)
    if isinstance(doc, Rejected):
        return doc
    if doc.get("site", site) != site or doc.get("agent", agent) != agent:
        return Rejected(topic, "site/agent in the body differ from the topic", payload)
    return doc


def _int(v: Any, default: int = 0) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else default


def parse_status(topic: str, site: str, agent: str, payload: bytes) -> StatusIn | Rejected:
    doc = _object(topic, payload, site, agent)
    if isinstance(doc, Rejected):
        return doc
    state = doc.get("state")
    ts = _epoch(doc.get("ts"))
    if state not in ("online", "offline") or ts is None:
        return Rejected(topic, "status needs state online|offline and a numeric ts", payload)
    order = _epoch(doc.get("conn_ts")) if state == "online" else None
    reason = doc.get("reason")
    versions, models = doc.get("versions"), doc.get("models")
    return StatusIn(site, agent, state, reason if isinstance(reason, str) else None,
                    _int(doc.get("boot_seq")), ts, order or ts,
                    versions if isinstance(versions, dict) else {},
                    models if isinstance(models, dict) else {},
                    str(doc.get("config_hash", ""))[:128], topic)


def parse_heartbeat(topic: str, site: str, agent: str, payload: bytes
                    ) -> HeartbeatIn | Rejected:
    doc = _object(topic, payload, site, agent)
    if isinstance(doc, Rejected):
        return doc
    ts = _epoch(doc.get("ts"))
    if ts is None:
        return Rejected(topic, "heartbeat needs a numeric ts", payload)
    ob = doc.get("outbox")
    if not isinstance(ob, dict):
        ob = {}
    depth = ob.get("depth")
    age = ob.get("oldest_pending_age_s")
    return HeartbeatIn(site, agent, ts, _int(doc.get("boot_seq")),
                       depth if isinstance(depth, int) and not isinstance(depth, bool) else None,
                       float(age) if isinstance(age, int | float) and not isinstance(age, bool)
                       and math.isfinite(age) else None, payload, topic)


def parse(topic: str, payload: bytes, prefix: str, user_id: str | None = None) -> Parsed:
    """The record a message on ``topic`` stands for (see the module docstring)."""
    where = split_topic(topic, prefix)
    if where is None:
        return Rejected(topic, f"topic not under {prefix}/<site>/<agent>/", payload)
    site, agent, rest = where
    if len(payload) > MAX_PAYLOAD:
        return Rejected(topic, f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}",
                        payload[:4096])
    if rest[0] == "report" and len(rest) == 2 and rest[1]:
        return parse_report(topic, site, agent, rest[1], payload, user_id)
    if rest == ["status"]:
        return parse_status(topic, site, agent, payload)
    if rest == ["heartbeat"]:
        return parse_heartbeat(topic, site, agent, payload)
    return Ignored(topic)
