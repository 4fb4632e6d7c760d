"""Kept for imports of the first version: the call-plane detector now lives in
:mod:`edge.telecom.callplane` (state, features, rules, model, detector)."""

from __future__ import annotations

from edge.telecom.callplane.detector import CallPlaneDetector
from edge.telecom.callplane.rules import certain

CallPlaneRules = CallPlaneDetector

__all__ = ["CallPlaneDetector", "CallPlaneRules", "certain"]
