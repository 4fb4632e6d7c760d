"""A fast check of the afe.report/1 schema for the collector's hot path.

``jsonschema`` over ``edge/report/report.schema.json`` costs milliseconds per report
in CPython (measured ~4 ms on the loaded 2-core bench box), more than everything else
the collector does with it; this checks the same constraints by hand in a few
microseconds. ``tests/edge/fleet/test_validate.py`` holds the two to the same verdict
on valid reports and on thousands of mutations of them, so a schema change that is
not mirrored here fails the suite.
"""

from __future__ import annotations

import re
from typing import Any

_REQUIRED = ("schema", "id", "ts", "site", "agent", "kind", "severity", "score", "subject",
             "evidence", "model", "route")
_ALLOWED = frozenset((*_REQUIRED, "related", "detector"))
_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_KIND = re.compile(r"[a-z_]+\.[a-z_]+")
_STYPE = re.compile(r"[a-z_]+")
_FLEET = re.compile(r"f1:[0-9a-f]{32}")
_SHA = re.compile(r"[0-9a-f]{64}")
_SEVERITIES = frozenset(("info", "low", "medium", "high", "critical"))
_ROUTES = frozenset(("police", "telecom", "finance", "cyberspace", "ops"))
_SUBJECT_KEYS = frozenset(("type", "id", "pseudonymised", "fleet_id"))


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _full(rx: re.Pattern[str], v: Any) -> bool:
    # fullmatch, not $: JSON Schema's "$" would accept a trailing newline
    return isinstance(v, str) and rx.fullmatch(v) is not None


def _subject(s: Any, where: str, out: list[str]) -> None:
    if not isinstance(s, dict):
        out.append(f"{where}: not an object")
        return
    for k in ("type", "id", "pseudonymised"):
        if k not in s:
            out.append(f"{where}: '{k}' is a required property")
    extra = s.keys() - _SUBJECT_KEYS
    if extra:
        out.append(f"{where}: additional properties {sorted(extra)}")
    if "type" in s and not _full(_STYPE, s["type"]):
        out.append(f"{where}/type: bad subject type")
    if "id" in s and not (isinstance(s["id"], str) and s["id"]):
        out.append(f"{where}/id: not a non-empty string")
    if "pseudonymised" in s and not isinstance(s["pseudonymised"], bool):
        out.append(f"{where}/pseudonymised: not a boolean")
    if "fleet_id" in s and not _full(_FLEET, s["fleet_id"]):
        out.append(f"{where}/fleet_id: not f1:<32 hex>")


def report_errors(r: Any) -> list[str]:
    """Schema violations of one decoded report (empty if valid)."""
    if not isinstance(r, dict):
        return ["<root>: not an object"]
    out: list[str] = [f"<root>: '{k}' is a required property" for k in _REQUIRED
                      if k not in r]
    extra = r.keys() - _ALLOWED
    if extra:
        out.append(f"<root>: additional properties {sorted(extra)}")
    if "schema" in r and r["schema"] != "afe.report/1":
        out.append("schema: not afe.report/1")
    for key, rx in (("id", _ID), ("ts", _TS), ("site", _NAME), ("agent", _NAME),
                    ("kind", _KIND)):
        if key in r and not _full(rx, r[key]):
            out.append(f"{key}: does not match the pattern")
    if "severity" in r and not (isinstance(r["severity"], str) and r["severity"] in _SEVERITIES):
        out.append("severity: not one of the severities")
    if "score" in r and not (_num(r["score"]) and 0 <= r["score"] <= 1):
        out.append("score: not a number in 0..1")
    if "subject" in r:
        _subject(r["subject"], "subject", out)
    if "related" in r:
        rel = r["related"]
        if not isinstance(rel, list) or len(rel) > 1000:
            out.append("related: not an array of at most 1000 subjects")
        else:
            for i, s in enumerate(rel):
                _subject(s, f"related/{i}", out)
    if "evidence" in r:
        ev = r["evidence"]
        if not isinstance(ev, list):
            out.append("evidence: not an array")
        else:
            for i, e in enumerate(ev):
                if not isinstance(e, dict) or e.keys() != {"reason", "features"}:
                    out.append(f"evidence/{i}: needs exactly reason and features")
                    continue
                if not (isinstance(e["reason"], str) and e["reason"]):
                    out.append(f"evidence/{i}/reason: not a non-empty string")
                f = e["features"]
                if not isinstance(f, dict) or not all(
                        v is None or isinstance(v, str | bool) or _num(v) for v in f.values()):
                    out.append(f"evidence/{i}/features: values must be scalars")
    if "model" in r:
        m = r["model"]
        if m is not None and not (
                isinstance(m, dict) and m.keys() == {"name", "version", "sha256"}
                and isinstance(m["name"], str) and isinstance(m["version"], str)
                and _full(_SHA, m["sha256"])):
            out.append("model: not null nor {name, version, sha256}")
    if "route" in r:
        rt = r["route"]
        if not (isinstance(rt, list) and rt and all(
                isinstance(x, str) and x in _ROUTES for x in rt) and len(set(rt)) == len(rt)):
            out.append("route: not a non-empty list of distinct channels")
    if "detector" in r and not isinstance(r["detector"], str):
        out.append("detector: not a string")
    return out
