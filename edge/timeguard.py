"""Event-time bounds at every entry: a record whose ``ts`` cannot be true is counted
as :class:`~edge.records.Malformed` with the reason, and never moves event time.

The pipeline's clock is the highest ``ts`` seen, so one record stamped ten years
ahead (or 1e300, or NaN) would stop every window from closing, or crash the report
formatting. Each source is therefore wrapped, before sources are merged, in a
:class:`GuardedSource` that checks, per record:

1. always: ``ts`` is finite and in ``[0, MAX_EPOCH)`` (before 2100-01-01);
2. in ``run`` (followed files, UDP, capture, files read once): ``ts`` is at most
   ``inputs.max_future_s`` ahead of the wall clock and, if ``inputs.max_past_s`` is
   not 0, at most that far behind it;
3. in ``replay`` and ``demo``: ``ts`` is within ``inputs.max_jump_s`` of the feed's
   own time. That time starts as the median of the feed's first
   :data:`ANCHOR_RECORDS` timestamps (so a poisoned first record cannot set it) and
   then follows the newest accepted ``ts``. A feed that really jumps (a capture with
   a two-day gap) is followed once :data:`CONFIRM_RECORDS` records in a row agree on
   the new time; they are held meanwhile, not lost. An isolated outlier is released
   as Malformed when the feed comes back.

:func:`edge.assembly.assemble` wraps every domain's sources, so a domain needs to do
nothing for this. Records without ``ts`` pass untouched. A Malformed record with an impossible ``ts``
keeps its reason and loses the ``ts``. Counters: ``ts_rejected`` per source.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import Any

from edge.records import Malformed

log = logging.getLogger(__name__)

MAX_EPOCH = 4_102_444_800.0  # 2100-01-01T00:00:00Z
ANCHOR_RECORDS = 8
CONFIRM_RECORDS = 64


def absolute_reason(ts: Any) -> str | None:
    """Why ``ts`` cannot be an event time at all, or None if it can."""
    if type(ts) is not float and type(ts) is not int:
        return "ts is not a number"
    if not math.isfinite(ts):
        return "ts is not finite"
    if not 0 <= ts < MAX_EPOCH:
        return f"ts {ts:.6g} is outside [0, {MAX_EPOCH:.0f}) (1970..2100)"
    return None


class WallClockCheck:
    """``check(ts) -> reason | None`` against the wall clock (live sources)."""

    def __init__(self, max_future_s: float, max_past_s: float = 0.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.max_future_s = max_future_s
        self.max_past_s = max_past_s
        self.clock = clock

    def check(self, ts: Any) -> str | None:
        why = absolute_reason(ts)
        if why is not None:
            return why
        now = self.clock()
        if ts > now + self.max_future_s:
            return f"ts is {ts - now:.0f} s ahead of the wall clock (limit {self.max_future_s:g})"
        if self.max_past_s and ts < now - self.max_past_s:
            return f"ts is {now - ts:.0f} s behind the wall clock (limit {self.max_past_s:g})"
        return None


class GuardedSource:
    """A source whose records' ``ts`` are bounded (see the module docstring).

    ``live`` selects the wall-clock check; otherwise the feed's own time is used with
    ``max_jump_s``. Name, ``close`` and ``counters`` are the wrapped source's (plus
    ``ts_rejected``); every other attribute is forwarded."""

    def __init__(self, source: Any, *, live: bool, max_jump_s: float = 86_400.0,
                 max_future_s: float = 600.0, max_past_s: float = 0.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.name: str = source.name
        self.live = live
        self.max_jump_s = max_jump_s
        self.wall = WallClockCheck(max_future_s, max_past_s, clock)
        self.ts_rejected = 0
        self.jumps_followed = 0
        self._n = 0
        # Replay and demo: the records taken for the anchor (None once it is set), the
        # feed's time (the newest accepted ts) and the outliers held meanwhile.
        self._head: list[Any] | None = []
        self._hi = -math.inf
        self._held: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)

    def counters(self) -> dict[str, int | float]:
        c = dict(self.source.counters()) if hasattr(self.source, "counters") else {}
        c["ts_rejected"] = self.ts_rejected
        if not self.live:
            c["ts_jumps_followed"] = self.jumps_followed
        return c

    def close(self) -> None:
        self.source.close()

    def __iter__(self) -> Iterator[Any]:
        return self._live() if self.live else self._feed()

    # -- helpers
    def _reject(self, rec: Any, why: str) -> Malformed:
        self.ts_rejected += 1
        if type(rec) is Malformed:
            return dataclasses.replace(rec, ts=None, reason=f"{rec.reason}; {why}")
        pos = getattr(rec, "position", None) or f"record {self._n}"
        return Malformed(self.name, str(pos), why, None)

    def _live(self) -> Iterator[Any]:
        check = self.wall.check
        for rec in self.source:
            self._n += 1
            ts = rec.ts
            if ts is None:
                yield rec
                continue
            why = check(ts)
            yield rec if why is None else self._reject(rec, why)

    def _feed(self) -> Iterator[Any]:
        return chain(self._checked(iter(self.source)), self._finish())

    def iter_blocks(self) -> Iterator[Iterable[Any]]:
        """The same records as iterating this, in blocks (iterables, each to be
        consumed before the next is asked for): a source with ``blocks()`` and ``take()`` (a
        block of decoded lines: see :class:`drivers.events.sources.JsonlEventFile`)
        has each block checked at once when its every ``ts`` is within the bounds
        wherever it falls in the block, and handed on as it is (no generator frame
        per record); any other block, or any other source, goes record by record."""
        blocks = getattr(self.source, "blocks", None)
        take = getattr(self.source, "take", None)
        if self.live or blocks is None or take is None:
            yield iter(self)
            return
        jump = self.max_jump_s
        for blk in blocks():
            if type(blk) is list and self._head is None and not self._held and blk:
                try:
                    stamps = [r.ts for r in blk]
                    lo, hi = min(stamps), max(stamps)
                    total = sum(stamps)
                except TypeError:  # a record without ts
                    total = math.nan
                top = self._hi
                if total - total == 0 and hi <= top + jump and lo >= max(top, hi) - jump:
                    # every record is accepted wherever it falls in the block
                    self._n += len(blk)
                    if hi > top:
                        self._hi = hi
                    yield take(blk)
                    continue
            yield self._checked(take(blk) if type(blk) is list else blk)
        yield self._finish()

    def _checked(self, records: Iterator[Any]) -> Iterator[Any]:
        """Records after the bounds check, one at a time; the state (the anchor
        being taken, the feed's time, the held records) lives on ``self``, so blocks
        checked here and at once in :meth:`iter_blocks` follow each other."""
        jump = self.max_jump_s
        for rec in records:
            self._n += 1
            ts = rec.ts
            head = self._head
            if head is not None:  # 1. anchor: the median of the first possible stamps
                if ts is not None:
                    why = absolute_reason(ts)
                    if why is not None:
                        head.append(self._reject(rec, why))
                        continue
                head.append(rec)
                if sum(1 for r in head if r.ts is not None) >= ANCHOR_RECORDS:
                    yield from self._anchor()
                continue
            if ts is None:
                yield rec
                continue
            hi = self._hi
            held = self._held
            # 2. the feed's time follows the newest accepted ts
            if hi - jump <= ts <= hi + jump:  # NaN fails both comparisons
                if held:
                    for h in held:
                        yield self._reject(h, self._far(h.ts, hi))
                    held.clear()
                if ts > hi:
                    self._hi = ts
                yield rec
                continue
            why = absolute_reason(ts)
            if why is not None:
                yield self._reject(rec, why)
                continue
            if held and abs(ts - held[0].ts) > jump:  # does not agree with the held ones
                for h in held:
                    yield self._reject(h, self._far(h.ts, hi))
                held.clear()
            held.append(rec)
            if len(held) >= CONFIRM_RECORDS:  # the feed really moved: follow it
                self.jumps_followed += 1
                new_hi = max(h.ts for h in held)
                log.warning("%s: event time jumps %+.0f s (confirmed by %d records); "
                            "following it", self.name, new_hi - hi, len(held))
                self._hi = new_hi
                yield from held
                held.clear()

    def _anchor(self) -> list[Any]:
        """End of the anchor: the records taken so far, checked against it."""
        head = self._head or []
        self._head = None
        stamps = sorted(r.ts for r in head if r.ts is not None)
        if not stamps:
            self._head = []  # nothing to anchor on yet (only at the end of a feed)
            return head
        jump = self.max_jump_s
        anchor = stamps[len(stamps) // 2]
        hi = anchor - jump  # raised to the newest accepted ts below
        out = []
        for rec in head:
            ts = rec.ts
            if ts is None:
                out.append(rec)
            elif abs(ts - anchor) > jump:
                out.append(self._reject(rec, f"ts is {ts - anchor:+.0f} s from the feed's "
                                        f"first timestamps (limit {jump:g})"))
            else:
                hi = max(hi, ts)
                out.append(rec)
        self._hi = hi
        return out

    def _finish(self) -> Iterator[Any]:
        """At the end of the feed: a short feed's anchor, then the held outliers."""
        if self._head is not None:
            yield from self._anchor()
        held = self._held
        for h in held:  # the feed ended on outliers
            yield self._reject(h, self._far(h.ts, self._hi))
        held.clear()

    def _far(self, ts: float, hi: float) -> str:
        return (f"ts is {ts - hi:+.0f} s from the feed's time (limit {self.max_jump_s:g}, "
                f"not confirmed by {CONFIRM_RECORDS} records)")


def guard(source: Any, cfg: Any, *, live: bool) -> GuardedSource:
    """Wrap one source with the bounds of ``cfg.inputs`` (an :class:`edge.config.Config`)."""
    i = cfg.inputs
    return GuardedSource(source, live=live, max_jump_s=i.max_jump_s,
                         max_future_s=i.max_future_s, max_past_s=i.max_past_s)
