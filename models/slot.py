"""The model a detector runs, swappable between two batches without a lost decision.

A detector holds a :class:`ModelSlot` where it held a model: the slot has the same
surface (``predict_proba``, ``run``, ``info``, ``features``, ``contract``) and passes
each call to the current model. An update that was verified, loaded and canary-checked
elsewhere (on the MQTT thread, :mod:`models.store`) is *offered* to the slot: one
reference assignment. The slot takes it at the start of the next call, on the
pipeline thread, so every batch is scored by exactly one model, entirely: nothing is
scored twice and nothing is skipped. ``on_swap`` callbacks (on that thread too) let a
detector pick up what comes with the model, such as its threshold.

Each call's rows also feed the drift monitor when the package has a reference.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from edge.detection import ModelInfo
from models.drift import DriftMonitor
from models.loader import LoadedModel

log = logging.getLogger(__name__)


class ModelSlot:
    def __init__(self, name: str, model: LoadedModel, *, drift: DriftMonitor | None = None,
                 source: str = "packaged") -> None:
        self.name = name
        self._model = model
        self._offer: tuple[LoadedModel, DriftMonitor | None, str] | None = None
        self._lock = threading.Lock()
        self.drift = drift
        self.source = source
        self.swaps = 0
        self.batches = 0
        self.rows_scored = 0
        self.drift_events: list[tuple[str, ...]] = []
        self._drifting: tuple[str, ...] = ()
        self.on_swap: list[Callable[[LoadedModel], None]] = []

    # -- the model's surface, as detectors use it
    @property
    def current(self) -> LoadedModel:
        return self._model

    @property
    def info(self) -> ModelInfo:
        return self._model.info

    @property
    def features(self) -> list[str]:
        return self._model.features

    @property
    def contract(self) -> dict[str, Any]:
        return self._model.contract

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        model = self._take()
        out = model.predict_proba(x)
        self._count(x)
        return out

    def run(self, inputs: np.ndarray | Mapping[str, np.ndarray]) -> list[Any]:
        model = self._take()
        out = model.run(inputs)
        if isinstance(inputs, np.ndarray):
            self._count(inputs)
        return out

    def counters(self) -> dict[str, int | float]:
        out = self._model.counters()
        p = f"model.{self.name}."
        out.update({p + "swaps": self.swaps, p + "batches": self.batches})
        if self.drift is not None:
            out.update(self.drift.summary(p + "drift."))
        return out

    # -- updates
    def offer(self, model: LoadedModel, drift: DriftMonitor | None, source: str) -> None:
        """Hand over a verified, loaded model (any thread); taken at the next batch."""
        with self._lock:
            self._offer = (model, drift, source)

    def pending(self) -> bool:
        return self._offer is not None

    def _take(self) -> LoadedModel:
        if self._offer is not None:
            with self._lock:
                model, drift, source = self._offer  # type: ignore[misc]
                self._offer = None
            old = self._model
            self._model, self.drift, self.source = model, drift, source
            self.swaps += 1
            log.info("model %s: %s %s (%s) replaces %s", self.name, model.info.name,
                     model.info.version, source, old.info.version)
            for fn in self.on_swap:
                try:
                    fn(model)
                except Exception:  # a detector's callback must not undo the swap
                    log.exception("model %s: on_swap callback failed", self.name)
        return self._model

    def _count(self, x: np.ndarray) -> None:
        self.batches += 1
        self.rows_scored += int(x.shape[0]) if x.ndim else 1
        if self.drift is not None and x.ndim == 2:
            got = self.drift.observe(x)
            # one alert when features start drifting (or others join), not one per window
            if got is not None:
                if got and not set(got) <= set(self._drifting):
                    self.drift_events.append(got)
                self._drifting = got

    def rearm_drift(self) -> None:
        """Forget which features were drifting: features still drifting at the next
        check alert again (the end of the drift warm-up)."""
        self._drifting = ()

    def take_drift_events(self) -> list[tuple[str, ...]]:
        ev, self.drift_events = self.drift_events, []
        return ev
