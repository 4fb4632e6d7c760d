"""What a detector says, before it is pseudonymised and turned into a report."""

from __future__ import annotations

from dataclasses import dataclass, field

Scalar = float | int | str | bool | None

SEVERITIES = ("info", "low", "medium", "high", "critical")


@dataclass(slots=True, frozen=True)
class Subject:
    """What an alert is about. ``type`` decides whether ``id`` is personal data.

    Types in use: imsi, imei, msisdn, phone, ip, endpoint, device, parcel, waybill,
    sender_id, agent.
    """

    type: str
    id: str


@dataclass(slots=True, frozen=True)
class Evidence:
    """One human-readable reason with the feature values behind it."""

    reason: str
    features: dict[str, Scalar] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class ModelInfo:
    name: str
    version: str
    sha256: str


@dataclass(slots=True)
class Detection:
    """A detector's finding. ``ts`` is the event time at which the evidence was complete."""

    ts: float
    kind: str  # e.g. simbox.sim, simbox.device, goip.endpoint, parcel.card_batch
    severity: str  # one of SEVERITIES
    score: float  # 0..1
    subject: Subject
    evidence: list[Evidence]
    route: list[str]  # authority channels: police, telecom, finance, cyberspace, ops
    model: ModelInfo | None = None
    related: list[Subject] = field(default_factory=list)
    detector: str = ""
