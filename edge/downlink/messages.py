"""Downlink message types, their JSON Schemas, and parsing (sans-IO).

Every message is one JSON object on ``<prefix>/<site>/<agent>/down/<kind>``, after a
signature line (see :mod:`edge.downlink.envelope`, checked before this module sees
the body):

config      ``{"id": "...", "version": 7, "set": {"detectors.callplane.threshold": 0.8}}``
              (a value ``null`` resets the key to the value the agent started with)
watchlist   a snapshot ``{"id": "...", "version": 12, "type": "snapshot", "entries":
              [{"kind": "imsi", "value": "h1:...", "reason", "case", "issuer",
              "expires"}, ...]}`` or a delta ``{"id", "version": 13, "type": "delta",
              "base_version": 12, "add": [...], "remove": [{"kind", "value"}]}``
              (see :mod:`edge.watchlist.model`; plain strings with ``id_type`` too)
command     ``{"id": "...", "version": 31, "command": "ping", "args": {}}``

``id`` is the correlation id echoed in the acknowledgement (MQTT 5 CorrelationData
is echoed as well). ``version`` must grow per kind (required when signed; see
:mod:`edge.downlink.replay`). :func:`parse` never raises: it returns a typed message
or a :class:`Rejection` with the reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import orjson

KINDS = ("config", "watchlist", "command")

_ID = {"type": "string", "minLength": 1, "maxLength": 128}
_VERSION = {"type": "integer", "minimum": 1, "maximum": 2**53}

SCHEMAS: dict[str, dict[str, Any]] = {
    "config": {
        "type": "object", "additionalProperties": False, "required": ["id", "set"],
        "properties": {
            "id": _ID, "version": _VERSION,
            "set": {"type": "object", "minProperties": 1, "maxProperties": 64,
                    "propertyNames": {"pattern": "^[a-z_]+(\\.[a-z_0-9]+){1,4}$"},
                    # null: back to the value the agent started with (runtime.py)
                    "additionalProperties": {"type": ["string", "number", "boolean",
                                                      "null"]}},
        },
    },
    "watchlist": {
        # entries are checked one by one by edge.watchlist.model.parse_entry (a schema
        # walk over a million items would cost seconds before anything is applied)
        "type": "object", "additionalProperties": False, "required": ["id", "version"],
        "properties": {
            "id": _ID, "version": _VERSION,
            "type": {"enum": ["snapshot", "delta"]},
            "base_version": {"type": "integer", "minimum": 0, "maximum": 2**53},
            "expires": {"type": "number"},
            "issuer": {"type": "string", "maxLength": 200},
            "id_type": {"type": "string", "pattern": "^[a-z_]{1,32}$"},
            "format": {"enum": ["pseudonymised", "clear"]},
            "entries": {"type": "array", "maxItems": 5_000_000},
            "add": {"type": "array", "maxItems": 5_000_000},
            "remove": {"type": "array", "maxItems": 5_000_000},
        },
    },
    "command": {
        "type": "object", "additionalProperties": False, "required": ["id", "command"],
        "properties": {
            "id": _ID, "version": _VERSION,
            "command": {"type": "string", "pattern": "^[a-z_]{1,32}$"},
            "args": {"type": "object", "maxProperties": 32},
        },
    },
}


@dataclass(slots=True, frozen=True)
class ConfigUpdate:
    id: str
    set: dict[str, Any]
    version: int | None = None


@dataclass(slots=True, frozen=True)
class WatchlistUpdate:
    """A snapshot or delta (``body``, applied by :mod:`edge.watchlist.model`)."""

    id: str
    version: int
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class Command:
    id: str
    command: str
    args: dict[str, Any] = field(default_factory=dict)
    version: int | None = None


Message = ConfigUpdate | WatchlistUpdate | Command


@dataclass(slots=True, frozen=True)
class Rejection:
    """Why a message was not applied. ``id`` is its correlation id when one was found."""

    reason: str
    id: str | None = None


@dataclass(slots=True)
class Ack:
    """The answer on the response topic to one downlink message."""

    kind: str
    id: str | None
    ok: bool
    reason: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)

    def to_json(self) -> bytes:
        d: dict[str, Any] = {"id": self.id, "kind": self.kind, "ok": self.ok, "ts": self.ts}
        if self.reason:
            d["reason"] = self.reason
        if self.result:
            d["result"] = self.result
        return orjson.dumps(d, default=str)


@cache
def _validator(kind: str) -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(SCHEMAS[kind])


def parse(kind: str, payload: bytes,
          max_bytes: int) -> tuple[Message, dict[str, Any]] | Rejection:
    """(typed message, its JSON object) or the reason it is not acceptable.
    Checks, in this order: known kind, size, JSON, schema. The caller has checked
    the signature on the raw bytes before (:mod:`edge.downlink.envelope`)."""
    if kind not in KINDS:
        return Rejection(f"unknown downlink topic '{kind}' (known: {', '.join(KINDS)})")
    if len(payload) > max_bytes:
        return Rejection(f"too large: {len(payload)} bytes > limit {max_bytes}")
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return Rejection(f"malformed JSON: {exc}")
    if not isinstance(body, dict):
        return Rejection(f"schema: expected a JSON object, got {type(body).__name__}")
    mid = body.get("id") if isinstance(body.get("id"), str) else None
    if mid is not None and len(mid) > 128:
        mid = mid[:128]
    errors = sorted(_validator(kind).iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(map(str, e.absolute_path)) or "<root>"
        return Rejection(f"schema: {where}: {_short(e.message)}", mid)
    return _typed(kind, body), body


def _typed(kind: str, body: dict[str, Any]) -> Message:
    if kind == "config":
        return ConfigUpdate(body["id"], dict(body["set"]), body.get("version"))
    if kind == "watchlist":
        return WatchlistUpdate(body["id"], body["version"], body)
    return Command(body["id"], body["command"], dict(body.get("args", {})),
                   body.get("version"))


def _short(msg: str, limit: int = 200) -> str:
    return msg if len(msg) <= limit else msg[:limit] + "..."
