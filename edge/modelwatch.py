"""Stage ``models``: the models' health in the pipeline — drift alerts and counters.

It consumes nothing. On each tick it collects the drift events of every model slot
(:mod:`models.slot`) and reports each as a ``model.drift`` detection to the ops
route, with the drifted features and their PSI; its counters (in ``agent.status``,
the heartbeat and ``/metrics``) are the slots' summaries: calls, rows, latency, swaps
and, per feature, count, mean, bin median and PSI.

Drift is not reported during the first ``warmup_s`` of event time (``[models]
drift_warmup_s``, 24 h): until the detectors' longest windows have filled, a site's
rows are early-day rows and differ from the whole days of the reference for that
reason alone. What drifted then is counted (``drift_warmup_suppressed``), and at the
end of the warm-up the slots are re-armed, so a feature still drifting alerts then.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edge.detection import Detection, Evidence, Subject

NOTHING: tuple[()] = ()


class ModelWatchStage:
    name = "models"
    consumes: tuple[type, ...] = ()

    def __init__(self, store: Any, agent_id: str = "", *, wall_clock: bool = True,
                 warmup_s: float = 0.0) -> None:
        self.store = store
        self.agent_id = agent_id
        # latencies are wall-clock measurements: kept out of replay's agent.status so
        # that the same input gives the same report bytes
        self.wall_clock = wall_clock
        self.warmup_s = warmup_s
        self.alerts = 0
        self.warmup_suppressed = 0
        self._t0: float | None = None  # event time of the first tick
        self._warm = warmup_s <= 0

    def feed(self, item: Any) -> Sequence[Any]:
        return NOTHING

    def _warming(self, now: float) -> bool:
        """True while drift alerts wait (their events are dropped and counted)."""
        if self._warm:
            return False
        if self._t0 is None:
            self._t0 = now
        if now - self._t0 < self.warmup_s:
            for slot in self.store.slots.values():
                self.warmup_suppressed += len(slot.take_drift_events())
            return True
        self._warm = True
        for slot in self.store.slots.values():
            slot.take_drift_events()  # of windows that closed during the warm-up
            slot.rearm_drift()
        return False

    def tick(self, now: float) -> Sequence[Detection]:
        if self._warming(now):
            return NOTHING
        out: list[Detection] = []
        for name, slot in self.store.slots.items():
            for drifted in slot.take_drift_events():
                mon = slot.drift
                psi = {f: round(float(v), 3) for f, v in
                       zip(mon.ref.features, mon.last_psi, strict=True)} if mon else {}
                top = dict(sorted(((f, psi[f]) for f in drifted if f in psi),
                                  key=lambda kv: -kv[1])[:8])
                out.append(Detection(
                    ts=now, kind="model.drift", severity="medium",
                    score=min(1.0, max(top.values(), default=0.0) / 2.0),
                    subject=Subject("model", f"{name}@{slot.info.version}"),
                    evidence=[Evidence(
                        f"{len(drifted)} input feature(s) of model {name} left the "
                        f"training distribution (PSI > {mon.psi_threshold if mon else '?'} "
                        f"over the last {mon.min_rows if mon else '?'} scored rows)",
                        {"model": name, "version": slot.info.version, **top})],
                    route=["ops"], detector="models"))
        self.alerts += len(out)
        return out

    def flush(self, now: float) -> Sequence[Detection]:
        return self.tick(now)

    def counters(self) -> dict[str, int | float]:
        out: dict[str, int | float] = {"drift_alerts": self.alerts,
                                       "drift_warmup_suppressed": self.warmup_suppressed}
        for slot in self.store.slots.values():
            out.update((k, v) for k, v in slot.counters().items()
                       if self.wall_clock or ".latency_us" not in k)
        out.update({f"store.{k}": v for k, v in self.store.counters.items()})
        return out
