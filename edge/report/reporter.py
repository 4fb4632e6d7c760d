"""The reporter boundary: detections in, versioned pseudonymised reports out to sinks.

This is the one place identifiers are pseudonymised; nothing personal passes it in
clear. Subjects and related subjects of a personal type, and evidence features whose
*name* is a personal type (e.g. ``peer``), are replaced by keyed HMACs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import orjson

from edge.detection import SEVERITIES, Detection, Subject
from edge.report.ids import IdFactory
from edge.report.pseudonym import Pseudonymiser
from edge.report.schema import SCHEMA_ID
from edge.timeguard import MAX_EPOCH

log = logging.getLogger(__name__)

Report = dict[str, Any]


class Sink(Protocol):
    """Where finished reports go. ``payload`` is the report's JSON encoding."""

    name: str

    def publish(self, report: Report, payload: bytes) -> None: ...

    def close(self) -> None: ...

    def counters(self) -> dict[str, int]: ...


def _log_sink_error(name: str, exc: BaseException) -> None:
    log.error("sink %s failed: %s: %s", name, type(exc).__name__, exc)


def rfc3339_ms(ts: float) -> str:
    ms = int(round(ts * 1000))
    secs, milli = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{milli:03d}Z"


class Reporter:
    def __init__(self, *, site: str, agent: str, pseudonymiser: Pseudonymiser,
                 ids: IdFactory, sinks: Sequence[Sink]) -> None:
        self.site = site
        self.agent = agent
        self._pseudo = pseudonymiser
        self._ids = ids
        self.sinks = list(sinks)
        self.count_by_kind: dict[str, int] = {}
        # Told of a sink's exception (the pipeline counts it); the other sinks still
        # get the report.
        self.on_sink_error: Callable[[str, BaseException], None] = _log_sink_error

    def _subject(self, s: Subject) -> dict[str, Any]:
        ident, pseudo = self._pseudo.apply(s.type, s.id)
        out = {"type": s.type, "id": ident, "pseudonymised": pseudo}
        if pseudo and self._pseudo.has_fleet_key:
            out["fleet_id"] = self._pseudo.fleet_pseudonym(s.type, s.id)
        return out

    def build(self, det: Detection) -> Report:
        """The report for a detection, pseudonymised, not yet published."""
        if det.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {det.severity!r}")
        if not 0.0 <= det.ts < MAX_EPOCH:  # inputs are bounded (edge.timeguard): a bug
            raise ValueError(f"detection time {det.ts!r} is impossible (1970..2100)")
        personal = self._pseudo.personal_types
        evidence = []
        for ev in det.evidence:
            feats = {}
            for k, v in ev.features.items():
                if isinstance(v, str) and k in personal:
                    v = self._pseudo.pseudonym(k, v)
                elif isinstance(v, float):
                    v = round(v, 6)
                feats[k] = v
            evidence.append({"reason": ev.reason, "features": feats})
        report: Report = {
            "schema": SCHEMA_ID,
            "id": self._ids.next(det.ts),
            "ts": rfc3339_ms(det.ts),
            "site": self.site,
            "agent": self.agent,
            "kind": det.kind,
            "severity": det.severity,
            "score": round(min(1.0, max(0.0, float(det.score))), 6),
            "subject": self._subject(det.subject),
            "evidence": evidence,
            "model": None if det.model is None else {
                "name": det.model.name, "version": det.model.version,
                "sha256": det.model.sha256},
            "route": list(dict.fromkeys(det.route)),
        }
        if det.related:
            report["related"] = [self._subject(s) for s in det.related]
        if det.detector:
            report["detector"] = det.detector
        return report

    def report(self, det: Detection) -> Report:
        report = self.build(det)
        payload = orjson.dumps(report)
        self.count_by_kind[det.kind] = self.count_by_kind.get(det.kind, 0) + 1
        for sink in self.sinks:
            try:
                sink.publish(report, payload)
            except Exception as exc:
                self.on_sink_error(sink.name, exc)
        return report

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:  # one sink failing to close must not lose the others
                log.exception("sink %s failed to close", sink.name)
