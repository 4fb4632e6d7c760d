"""Builds the IP-plane (GoIP endpoint) detector stage from ``[detectors.ipplane]``."""

from __future__ import annotations

import logging
from typing import Any

from edge.config import Config, IpPlaneSection
from edge.errors import ModelError

log = logging.getLogger(__name__)


def settings_from(sec: IpPlaneSection) -> Any:
    from edge.telecom.ipplane.detector import DetectorSettings

    return DetectorSettings(
        window_s=sec.window_s, eval_interval_s=sec.eval_interval_s,
        min_activity=sec.min_activity, max_flows=sec.max_flows, max_dialogs=sec.max_dialogs,
        max_endpoints=sec.max_endpoints, idle_evict_s=sec.idle_evict_s,
        realert_s=sec.realert_s, threshold=sec.threshold if sec.threshold is not None else 0.9,
        track_unannounced_rtp=sec.track_unannounced_rtp, min_observed_s=sec.min_observed_s,
        confirm_evals=sec.confirm_evals, evidence_s=sec.evidence_s,
        trunk_numbers=tuple(n.lstrip("+") for n in sec.trunk_numbers))


def build_stages(cfg: Config, store: Any = None) -> list[Any]:
    """``[IpPlaneDetector]``, or ``[]`` when the IP plane is disabled.

    A model named in the config must load (ModelError otherwise); when the packaged
    model is missing the detector runs on signatures alone and says so in the log.
    """
    sec = cfg.detectors.ipplane
    if not sec.enabled:
        return []
    from edge.telecom.ipplane.detector import IpPlaneDetector, load_default_model
    from edge.telecom.ipplane.signatures import load_signatures

    sigs = load_signatures(sec.signatures)
    try:
        model = load_default_model(sec.model, cfg, store)
    except ModelError:
        if sec.model is not None:
            raise
        log.warning("ipplane: packaged behaviour model unavailable; signatures only")
        model = None
    settings = settings_from(sec)
    if sec.threshold is None and model is not None and "threshold" in model.contract:
        settings.threshold = float(model.contract["threshold"])
    det = IpPlaneDetector(settings, sigs, model)
    if model is not None and hasattr(model, "on_swap") and sec.threshold is None:
        def new_threshold(m: Any) -> None:  # a swapped-in model brings its threshold
            if "threshold" in m.contract:
                det.s.threshold = float(m.contract["threshold"])
        model.on_swap.append(new_threshold)
    return [det]
