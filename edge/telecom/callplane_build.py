"""Builds the call-plane (base-station event) stages from config."""

from __future__ import annotations

from typing import Any

from edge.config import Config
from edge.telecom.callplane_rules import CallPlaneRules


def build_stages(cfg: Config) -> list[Any]:
    if not cfg.detectors.callplane.enabled:
        return []
    return [CallPlaneRules(cfg.detectors.callplane)]
