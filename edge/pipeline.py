"""The pipeline runtime: sources -> stages (decoders, detectors) -> reporter.

A *stage* declares which record types it consumes; whatever it returns is routed
again by type, so a decoder stage turns ``Frame`` into packet records that a
detector stage consumes, and a detector returns ``Detection`` objects, which go to
the reporter. Malformed records are counted per source and reason, never raised.

Time is event time: the highest ``ts`` seen so far. Stages get ``tick(now)`` once
per ``tick_s`` of event time to close windows and evict idle state, so replay (as
fast as possible) and live runs behave the same.
"""

from __future__ import annotations

import gc
import heapq
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from edge.detection import Detection, Evidence, Subject
from edge.records import Malformed
from edge.report.reporter import Reporter

log = logging.getLogger(__name__)

NOTHING: tuple[()] = ()
# Full garbage collections at most every this many young-generation collections
# during a run (CPython's default: 10). Detector state is hundreds of thousands of
# long-lived, acyclic objects (one per SIM, device, cell); a full collection walks
# all of them, and with the default that cost a fifth of a 500 k-SIM replay.
# Refcounting frees everything a run drops; the collector is only for cycles.
GC_FULL_EVERY = 100


@runtime_checkable
class Stage(Protocol):
    """A decoder or detector. ``feed`` returns a (usually empty) sequence of outputs."""

    name: str
    consumes: tuple[type, ...]

    def feed(self, item: Any) -> Sequence[Any]: ...

    def tick(self, now: float) -> Sequence[Any]: ...

    def flush(self, now: float) -> Sequence[Any]: ...

    def counters(self) -> dict[str, int | float]: ...


class Source(Protocol):
    """Yields records with a ``ts`` attribute, in (roughly) ascending event time."""

    name: str

    def __iter__(self) -> Iterator[Any]: ...

    def counters(self) -> dict[str, int | float]: ...

    def close(self) -> None: ...


def merge_by_time(sources: Sequence[Iterable[Any]]) -> Iterator[Any]:
    """Merge time-ordered sources into one time-ordered stream (records lacking ts first)."""
    if len(sources) == 1:
        return iter(sources[0])

    def key(r: Any) -> float:
        ts = r.ts
        return float("-inf") if ts is None else ts

    return heapq.merge(*sources, key=key)


class Pipeline:
    def __init__(self, stages: Sequence[Stage], reporter: Reporter, *,
                 tick_s: float = 1.0, status_interval_s: float = 60.0,
                 malformed_log_limit: int = 20) -> None:
        self.stages = list(stages)
        self.reporter = reporter
        self.tick_s = tick_s
        self.status_interval_s = status_interval_s
        self._routes: dict[type, list[Stage]] = {}
        for st in self.stages:
            for t in st.consumes:
                self._routes.setdefault(t, []).append(st)
        self.now: float | None = None
        self._next_tick = float("inf")
        self._next_status = float("inf")
        self.records = 0
        self.detections = 0
        self.unrouted: dict[str, int] = {}
        self.malformed: dict[str, int] = {}
        self.malformed_by_reason: dict[str, int] = {}
        self._malformed_logged = 0
        self._malformed_log_limit = malformed_log_limit
        self.sources: list[Source] = []
        self._feeders: dict[type, list[Any]] = {}

    # -- driving
    def run(self, records: Iterable[Any], progress: Any = None) -> None:
        """Process every record of an (already merged) stream, then flush."""
        gc_old = gc.get_threshold()
        gc.set_threshold(gc_old[0], gc_old[1], max(gc_old[2], GC_FULL_EVERY))
        try:
            self._feed_all(records, progress)
            self.finish()
        finally:
            gc.set_threshold(*gc_old)

    def feed(self, rec: Any) -> None:
        """Process one record (live runs, and outputs of decoder stages)."""
        self._feed_all((rec,), None)

    def _feed_all(self, records: Iterable[Any], progress: Any) -> None:
        # The one loop every record goes through. Stages' bound ``feed`` methods are
        # looked up once per record type: at a few microseconds per event the
        # attribute lookups and calls show.
        feeders = self._feeders
        routes = self._routes
        dispatch = self._dispatch
        n = 0
        for rec in records:
            self.records += 1
            if progress is not None:
                n += 1
                if n == 4096:
                    progress.update(n)
                    n = 0
            ts = rec.ts
            if ts is not None:
                now = self.now
                if now is None:
                    self.now = ts
                    self._next_tick = ts + self.tick_s
                    self._next_status = ts + self.status_interval_s
                elif ts > now:
                    self.now = ts
                    if ts >= self._next_tick:
                        self._advance(ts)
            t = type(rec)
            feeds = feeders.get(t)
            if feeds is None:
                stages = routes.get(t)
                if stages is None:
                    self._unrouted(rec)
                    continue
                feeds = feeders[t] = [st.feed for st in stages]
            for f in feeds:
                out = f(rec)
                if out:
                    dispatch(out)
        if progress is not None:
            progress.update(n)

    def _unrouted(self, rec: Any) -> None:
        """Count a record no stage consumes (Malformed by source and reason)."""
        if type(rec) is Malformed:
            self._count_malformed(rec)
        else:
            n = type(rec).__name__
            self.unrouted[n] = self.unrouted.get(n, 0) + 1

    def _dispatch(self, outputs: Iterable[Any]) -> None:
        for o in outputs:
            if type(o) is Detection:
                self.detections += 1
                self.reporter.report(o)
            else:
                self.feed(o)

    def _advance(self, now: float) -> None:
        self._next_tick = now + self.tick_s
        for st in self.stages:
            out = st.tick(now)
            if out:
                self._dispatch(out)
        if now >= self._next_status:
            self._next_status = now + self.status_interval_s
            self.reporter.report(self.status_detection(now))

    def tick_idle(self, now: float) -> None:
        """Advance event time without a record (live runs when inputs are quiet)."""
        if self.now is None or now <= self.now:
            return
        self.now = now
        if now >= self._next_tick:
            self._advance(now)

    def finish(self) -> None:
        now = self.now if self.now is not None else 0.0
        for st in self.stages:
            out = st.flush(now)
            if out:
                self._dispatch(out)
        if self.now is not None:
            self.reporter.report(self.status_detection(now, final=True))

    # -- bookkeeping
    def _count_malformed(self, rec: Malformed) -> None:
        self.malformed[rec.source] = self.malformed.get(rec.source, 0) + 1
        self.malformed_by_reason[rec.reason] = self.malformed_by_reason.get(rec.reason, 0) + 1
        if self._malformed_logged < self._malformed_log_limit:
            self._malformed_logged += 1
            log.warning("skipped malformed input %s %s: %s", rec.source, rec.position,
                        rec.reason)
            if self._malformed_logged == self._malformed_log_limit:
                log.warning("further malformed input is counted, not logged")

    def counters(self) -> dict[str, int | float]:
        out: dict[str, int | float] = {
            "records": self.records,
            "detections": self.detections,
            "malformed": sum(self.malformed.values()),
        }
        for src in self.sources:
            for k, v in src.counters().items():
                out[f"source.{src.name}.{k}"] = v
        for st in self.stages:
            for k, v in st.counters().items():
                out[f"{st.name}.{k}"] = v
        for sink in self.reporter.sinks:
            for k, v in sink.counters().items():
                out[f"sink.{sink.name}.{k}"] = v
        return out

    def status_detection(self, now: float, final: bool = False) -> Detection:
        feats: dict[str, Any] = dict(self.counters())
        feats["final"] = final
        for reason, n in sorted(self.malformed_by_reason.items())[:20]:
            feats[f"malformed.{reason}"] = n
        return Detection(
            ts=now, kind="agent.status", severity="info", score=0.0,
            subject=Subject("agent", self.reporter.agent),
            evidence=[Evidence("pipeline counters", feats)],
            route=["ops"], detector="pipeline",
        )
