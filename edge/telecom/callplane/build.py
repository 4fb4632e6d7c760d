"""Builds the call-plane (base-station event) stage from config: the detector with its
verified ONNX model (models/callplane by default), or rules only when asked to or when
the packaged model is absent."""

from __future__ import annotations

import logging
from typing import Any

from edge.config import CallPlaneSection, Config
from edge.telecom.callplane.detector import CallPlaneDetector

log = logging.getLogger(__name__)


def load_callplane_model(cfg: CallPlaneSection) -> Any:
    """The verified model (None for rules only). An explicitly configured model that
    fails verification raises :class:`~edge.errors.ModelError`."""
    from models.loader import MODELS_DIR, load_model

    if cfg.rules_only:
        return None
    if cfg.model is not None:
        return load_model(cfg.model)
    folder = MODELS_DIR / "callplane"
    if not (folder / "model.onnx").exists():
        log.warning("no packaged call-plane model in %s: running the explicit rules only",
                    folder)
        return None
    return load_model(folder)


def build_stages(cfg: Config) -> list[Any]:
    cp = cfg.detectors.callplane
    if not cp.enabled:
        return []
    return [CallPlaneDetector(cp, load_callplane_model(cp))]
