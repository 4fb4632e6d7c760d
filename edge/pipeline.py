"""The pipeline runtime: sources -> stages (decoders, detectors) -> reporter.

A *stage* declares which record types it consumes; whatever it returns is routed
again by type, so a decoder stage turns ``Frame`` into packet records that a
detector stage consumes, and a detector returns ``Detection`` objects. Detections
go to every stage that consumes ``Detection`` and then to the reporter, the last
consumer. A ``Command`` goes to the actuator named by its ``target`` (none by that
name: a ``rejected`` outcome); every ``CommandOutcome`` is routed like a record.
Malformed records are counted per source and reason, never raised.

Failures are contained here, in one place: an exception from a stage, an actuator or
a sink is caught, counted (``stage.<name>.errors``, ``actuator.<name>.errors``,
``sink.<name>.errors`` in ``agent.status``, present once non-zero), logged with a
rate limit, and the pipeline goes on with the next record.

Time is event time: the highest ``ts`` seen so far. Stages get ``tick(now)`` once
per ``tick_s`` of event time to close windows and evict idle state, so replay (as
fast as possible) and live runs behave the same.
"""

from __future__ import annotations

import gc
import heapq
import logging
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any, Protocol, runtime_checkable

from edge.actuators import Actuator, outcome
from edge.detection import Detection, Evidence, Subject
from edge.records import Command, CommandOutcome, Malformed
from edge.report.reporter import Reporter

log = logging.getLogger(__name__)

NOTHING: tuple[()] = ()
# Full garbage collections at most every this many young-generation collections
# during a run (CPython's default: 10). Detector state is hundreds of thousands of
# long-lived, acyclic objects (one per SIM, device, cell); a full collection walks
# all of them, and with the default that cost a fifth of a 500 k-SIM replay.
# Refcounting frees everything a run drops; the collector is only for cycles.
GC_FULL_EVERY = 100
# Young-generation collections after this many net container allocations (CPython's
# default: 700). Each young collection walks every young container still alive, and
# during a run that is mostly the decoded block and the run being folded (thousands
# of entries each) while the stages allocate: with the default they were walked
# every few hundred events. Garbage is the same either way (refcounting frees it).
GC_YOUNG_EVERY = 50_000
# Failures of one component logged in full this many times, then at 10, 100, 1000, ...
FAILURE_LOG_FIRST = 3


@runtime_checkable
class Stage(Protocol):
    """A decoder or detector. ``feed`` returns a (usually empty) sequence of outputs."""

    name: str
    consumes: tuple[type, ...]

    def feed(self, item: Any) -> Sequence[Any]: ...

    def tick(self, now: float) -> Sequence[Any]: ...

    def flush(self, now: float) -> Sequence[Any]: ...

    def counters(self) -> dict[str, int | float]: ...


# A stage may also have ``feed_many(records, on_error)``: the pipeline then collects
# its records in runs and hands each run over in one call (any exception on one record
# goes to ``on_error`` and the stage goes on), always before anything can see the
# difference: the next tick, flush, status report or detection routed to stages, and
# at the end of every ``feed``. What it returns is dispatched then, in its order, as
# ``feed``'s would be (so its detections of a run follow the other stages' outputs for
# the same records, still before the next tick: within ``tick_s`` of event time). At
# 500 k subscribers one call per event cost as much as the fold.
RUN_MAX = 4096  # records collected for a feed_many stage before they are handed over


class Source(Protocol):
    """Yields records with a ``ts`` attribute, in (roughly) ascending event time."""

    name: str

    def __iter__(self) -> Iterator[Any]: ...

    def counters(self) -> dict[str, int | float]: ...

    def close(self) -> None: ...


def merge_by_time(sources: Sequence[Iterable[Any]]) -> Iterator[Any]:
    """Merge time-ordered sources into one time-ordered stream (records lacking ts first).
    A single source that gives its records in blocks (``iter_blocks()``: iterables,
    each consumed before the next is asked for, as
    :class:`~edge.timeguard.GuardedSource` does) is read through them: no generator
    frame per record between the source and the pipeline."""
    if len(sources) == 1:
        blocks = getattr(sources[0], "iter_blocks", None)
        if callable(blocks):
            return chain.from_iterable(blocks())
        return iter(sources[0])

    def key(r: Any) -> float:
        ts = r.ts
        return float("-inf") if ts is None else ts

    return heapq.merge(*sources, key=key)


class Failures:
    """Counts and logs (rate-limited) exceptions of stages, actuators and sinks.

    Keys are ``"<kind>.<name>"`` (kind: stage, actuator, sink); ``counters()`` gives
    ``{"<kind>.<name>.errors": n}`` for every component that failed at least once.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def record(self, kind: str, name: str, exc: BaseException) -> None:
        key = f"{kind}.{name}"
        n = self.counts[key] = self.counts.get(key, 0) + 1
        if n <= FAILURE_LOG_FIRST:
            log.error("%s %s failed (%d): %s: %s", kind, name, n, type(exc).__name__, exc,
                      exc_info=exc)
        elif _power_of_ten(n):
            log.error("%s %s has failed %d times; last: %s: %s", kind, name, n,
                      type(exc).__name__, exc)

    def counters(self) -> dict[str, int]:
        return {f"{k}.errors": v for k, v in self.counts.items()}


def _power_of_ten(n: int) -> bool:
    while n >= 10 and n % 10 == 0:
        n //= 10
    return n == 1


def _name_of(fn: Any) -> str:
    """The stage name behind a bound ``feed`` method (for counting its failures)."""
    return str(getattr(getattr(fn, "__self__", None), "name", getattr(fn, "__name__", fn)))


class Pipeline:
    def __init__(self, stages: Sequence[Stage], reporter: Reporter, *,
                 actuators: Sequence[Actuator] = (), tick_s: float = 1.0,
                 status_interval_s: float = 60.0, malformed_log_limit: int = 20) -> None:
        self.stages = list(stages)
        self.reporter = reporter
        self.actuators: dict[str, Actuator] = {}
        for act in actuators:
            if act.name in self.actuators:
                raise ValueError(f"two actuators named {act.name!r}")
            self.actuators[act.name] = act
        self.tick_s = tick_s
        self.status_interval_s = status_interval_s
        self._routes: dict[type, list[Stage]] = {}
        for st in self.stages:
            for t in st.consumes:
                self._routes.setdefault(t, []).append(st)
        self.failures = Failures()
        reporter.on_sink_error = self._sink_failed
        self.now: float | None = None
        self._next_tick = float("inf")
        self._next_status = float("inf")
        self.records = 0
        self.detections = 0
        self.commands = 0
        self.outcomes: dict[str, int] = {}
        self.unrouted: dict[str, int] = {}
        self.malformed: dict[str, int] = {}
        self.malformed_by_reason: dict[str, int] = {}
        self._malformed_logged = 0
        self._malformed_log_limit = malformed_log_limit
        self.sources: list[Source] = []
        self._feeders: dict[type, list[Any]] = {}
        # One run (list of records) per stage with feed_many, filled by the loop.
        self._runs: list[tuple[Stage, list[Any]]] = []
        self._run_of: dict[int, list[Any]] = {}
        self.settings: Any = None  # edge.settings.Settings: live changes, taken per tick

    # -- driving
    def run(self, records: Iterable[Any], progress: Any = None) -> None:
        """Process every record of an (already merged) stream, then flush."""
        gc_old = gc.get_threshold()
        gc.set_threshold(max(gc_old[0], GC_YOUNG_EVERY), gc_old[1], max(gc_old[2], GC_FULL_EVERY))
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
        # attribute lookups and calls show. (try/except costs nothing in 3.11 until
        # something raises.)
        feeders = self._feeders
        routes = self._routes
        dispatch = self._dispatch
        n = 0
        try:
            for rec in records:
                self.records += 1
                n += 1
                if n == RUN_MAX:
                    if progress is not None:
                        progress.update(n)
                    self._hand_over_runs()
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
                    feeds = feeders[t] = [self._feeder(st) for st in stages]
                for f in feeds:
                    try:
                        out = f(rec)
                    except Exception as exc:
                        self.failures.record("stage", _name_of(f), exc)
                        continue
                    if out:
                        dispatch(out)
        finally:
            self._hand_over_runs()
        if progress is not None:
            progress.update(n)

    def _feeder(self, st: Stage) -> Any:
        """What the loop calls per record for ``st``: its ``feed``, or the ``append``
        of its run when it folds runs (``feed_many``)."""
        if not callable(getattr(st, "feed_many", None)):
            return st.feed
        run = self._run_of.get(id(st))
        if run is None:
            run = self._run_of[id(st)] = []
            self._runs.append((st, run))
        return run.append

    def _hand_over_runs(self) -> None:
        """Give every feed_many stage the records collected for it."""
        for st, run in self._runs:
            if run:
                records = run[:]
                run.clear()

                def failed(exc: Exception, name: str = st.name) -> None:
                    self.failures.record("stage", name, exc)

                try:
                    out = st.feed_many(records, failed)  # type: ignore[attr-defined]
                except Exception as exc:
                    failed(exc)
                    continue
                if out:
                    self._dispatch(out)

    def _unrouted(self, rec: Any) -> None:
        """Count a record no stage consumes (Malformed by source and reason)."""
        if type(rec) is Malformed:
            self._count_malformed(rec)
        else:
            n = type(rec).__name__
            self.unrouted[n] = self.unrouted.get(n, 0) + 1

    def _dispatch(self, outputs: Iterable[Any]) -> None:
        """Route what a stage or actuator returned: detections, commands and outcomes
        by their own rules, anything else as a record (it does not count as input)."""
        for o in outputs:
            t = type(o)
            if t is Detection:
                self._detection(o)
            elif t is Command:
                self._command(o)
            elif t is CommandOutcome:
                self._outcome(o)
            else:
                self.feed(o)

    def _to_stages(self, item: Any) -> None:
        """Hand an internal record (detection, outcome) to the stages consuming its type."""
        self._hand_over_runs()
        for st in self._routes.get(type(item), ()):
            try:
                out = st.feed(item)
            except Exception as exc:
                self.failures.record("stage", st.name, exc)
                continue
            if out:
                self._dispatch(out)

    def _detection(self, det: Detection) -> None:
        self.detections += 1
        if Detection in self._routes:
            self._to_stages(det)
        try:
            self.reporter.report(det)
        except Exception as exc:  # building the report failed: the detector's bug
            self.failures.record("stage", det.detector or "reporter", exc)

    def _command(self, cmd: Command) -> None:
        self.commands += 1
        act = self.actuators.get(cmd.target)
        now = self.now if self.now is not None else cmd.ts
        if act is None:
            res: Sequence[CommandOutcome] = (outcome(
                cmd, "rejected", now, f"no actuator named {cmd.target!r} (known: "
                f"{', '.join(sorted(self.actuators)) or 'none'})"),)
        elif now > cmd.deadline:
            res = (outcome(cmd, "too_late", now, f"deadline {cmd.deadline} passed before "
                           f"it could be submitted"),)
        else:
            try:
                res = act.submit(cmd)
            except Exception as exc:
                self.failures.record("actuator", act.name, exc)
                res = (outcome(cmd, "failed", now, f"{type(exc).__name__}: {exc}"),)
        if res:
            self._dispatch(res)

    def _outcome(self, res: CommandOutcome) -> None:
        self.outcomes[res.status] = self.outcomes.get(res.status, 0) + 1
        if CommandOutcome in self._routes:
            self._to_stages(res)

    def _sink_failed(self, name: str, exc: BaseException) -> None:
        self.failures.record("sink", name, exc)

    def _poll_actuators(self, now: float) -> None:
        for act in self.actuators.values():
            try:
                res = act.poll(now)
            except Exception as exc:
                self.failures.record("actuator", act.name, exc)
                continue
            if res:
                self._dispatch(res)

    def apply_settings(self) -> None:
        """Take runtime setting changes other threads submitted (live loop, ticks)."""
        if self.settings is not None and self.settings.pending():
            self.settings.apply_pending()

    def set_status_interval(self, changes: dict[str, Any]) -> None:
        """Settings subscriber: a new ``agent.status_interval_s`` counts from now."""
        self.status_interval_s = float(changes["agent.status_interval_s"])
        if self.now is not None:
            self._next_status = min(self._next_status, self.now + self.status_interval_s)

    def _advance(self, now: float) -> None:
        self._hand_over_runs()
        if self.settings is not None and self.settings.pending():
            self.settings.apply_pending()
        self._next_tick = now + self.tick_s
        for st in self.stages:
            try:
                out = st.tick(now)
            except Exception as exc:
                self.failures.record("stage", st.name, exc)
                continue
            if out:
                self._dispatch(out)
        if self.actuators:
            self._poll_actuators(now)
        if now >= self._next_status:
            self._next_status = now + self.status_interval_s
            self._report_status(now)

    def tick_idle(self, now: float) -> None:
        """Advance event time without a record (live runs when inputs are quiet)."""
        if self.now is None or now <= self.now:
            return
        self.now = now
        if now >= self._next_tick:
            self._advance(now)

    def finish(self) -> None:
        self._hand_over_runs()
        now = self.now if self.now is not None else 0.0
        for st in self.stages:
            try:
                out = st.flush(now)
            except Exception as exc:
                self.failures.record("stage", st.name, exc)
                continue
            if out:
                self._dispatch(out)
        if self.actuators:
            self._poll_actuators(now)
        if self.now is not None:
            self._report_status(now, final=True)

    def _report_status(self, now: float, final: bool = False) -> None:
        try:
            self.reporter.report(self.status_detection(now, final=final))
        except Exception as exc:  # a stage's counters() raised
            self.failures.record("stage", "pipeline", exc)

    def close(self) -> None:
        """Close the actuators (sources and sinks belong to the agent)."""
        for act in self.actuators.values():
            try:
                act.close()
            except Exception as exc:
                self.failures.record("actuator", act.name, exc)

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
        self._hand_over_runs()
        out: dict[str, int | float] = {
            "records": self.records,
            "detections": self.detections,
            "malformed": sum(self.malformed.values()),
        }
        if self.commands or self.outcomes:
            out["commands"] = self.commands
            for status, n in sorted(self.outcomes.items()):
                out[f"commands.{status}"] = n
        for src in self.sources:
            for k, v in src.counters().items():
                out[f"source.{src.name}.{k}"] = v
        for st in self.stages:
            for k, v in st.counters().items():
                out[f"{st.name}.{k}"] = v
        for act in self.actuators.values():
            for k, v in act.counters().items():
                out[f"actuator.{act.name}.{k}"] = v
        for sink in self.reporter.sinks:
            for k, v in sink.counters().items():
                out[f"sink.{sink.name}.{k}"] = v
        out.update(self.failures.counters())
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


class _Collect:
    """The last stage of :func:`run_stages`: keeps every detection, as detected."""

    name = "collect"
    consumes: tuple[type, ...] = (Detection,)

    def __init__(self) -> None:
        self.detections: list[Detection] = []

    def feed(self, det: Detection) -> Sequence[Any]:
        self.detections.append(det)
        return NOTHING

    def tick(self, now: float) -> Sequence[Any]:
        return NOTHING

    def flush(self, now: float) -> Sequence[Any]:
        return NOTHING

    def counters(self) -> dict[str, int | float]:
        return {}


def run_stages(stages: Sequence[Stage], records: Iterable[Any], *,
               tick_s: float = 1.0) -> list[Detection]:
    """The agent's own loop over ``stages`` alone, without sources, key or sinks (for
    evaluation, training and tests): records are routed by type, ticked on event time
    and flushed exactly as in ``edge-agent replay``. Returns every detection, in
    order, before pseudonymisation."""
    from edge.report.ids import IdFactory
    from edge.report.pseudonym import Pseudonymiser

    got = _Collect()
    reporter = Reporter(site="eval", agent="eval", pseudonymiser=Pseudonymiser(bytes(32)),
                        ids=IdFactory("eval/"), sinks=[])
    Pipeline([*stages, got], reporter, tick_s=tick_s,
             status_interval_s=float("inf")).run(records)
    return got.detections
