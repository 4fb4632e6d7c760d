"""Builds the call-plane (base-station event) stage from config: the detector with its
verified ONNX model (models/callplane by default), or rules only when asked to or when
the packaged model is absent."""

from __future__ import annotations

import logging
from typing import Any

from edge import native
from edge.config import CallPlaneSection, Config
from edge.telecom.callplane.detector import CallPlaneDetector

log = logging.getLogger(__name__)


def load_callplane_model(cfg: CallPlaneSection, full: Config | None = None,
                         store: Any = None) -> Any:
    """The verified model (None for rules only), through the model store when given
    (then updatable over the downlink and watched for drift). An explicitly configured
    model that fails verification raises :class:`~edge.errors.ModelError`."""
    from edge.telecom.callplane.features import FEATURES
    from models.loader import MODELS_DIR, load_configured

    if cfg.rules_only:
        return None
    folder = cfg.model if cfg.model is not None else MODELS_DIR / "callplane"
    if cfg.model is None and not (folder / "model.onnx").exists():
        log.warning("no packaged call-plane model in %s: running the explicit rules only",
                    folder)
        return None
    if store is not None:
        return store.open("callplane", folder, FEATURES)
    return load_configured(folder, full or Config(), expect_features=FEATURES)


def build_stages(cfg: Config, store: Any = None) -> list[Any]:
    cp = cfg.detectors.callplane
    if not cp.enabled:
        return []
    model = load_callplane_model(cp, cfg, store)
    det = CallPlaneDetector(cp, model)
    log.info("%s", native.status())  # its compiled build, or the pure-Python modules
    if model is not None and hasattr(model, "on_swap"):
        model.on_swap.append(det.model_swapped)
    return [det]
