"""Group evidence no device links: a cell's attach cohorts and local call links.

A SIM-box's SIMs sit in one physical box: when it powers up (or a SIM bank re-cycles
its ports) they attach on the same serving cell within a minute, and then they dial
out in parallel with nothing coming back. That holds even when every port carries its
own random, valid phone IMEI and a local (fast) SIM, which leaves no device tell.
People who attach on one cell at one moment are either few (chance) or a crowd (a
cell restart re-attaches everyone camped on it): in a crowd only a small share dial
out, and nothing in it dials in parallel the way one box's ports do.

In: attaches (:meth:`CohortTables.on_attach`), the SIMs the detector judges
(:meth:`note_judged`). Out: :data:`COHORT_FEATURES` for a SIM at event time ``now``
(:meth:`features`), appended to the per-SIM vector, and :meth:`group_tell`.

- ``cohort_sims``: SIMs (the SIM included) that attached on the SIM's cell within
  :data:`COHORT_S` of one of its own attaches in the last :data:`KEEP_S`;
- ``cohort_excess_z``: how far that many co-attaches exceed the cell's own attach
  rate around that moment (the attaches within :data:`BACKGROUND_S`, outside the
  cohort window): ``(n - expected) / sqrt(expected + 1)``, the largest over the SIM's
  attaches. A busy hour, a morning crowd or the start of a feed raises ``n`` and
  ``expected`` together; a box powering up raises ``n`` alone;
- ``cohort_dialers``: of those, SIMs that placed outgoing calls in the last hour and
  received none from outside the cohort (the SIM included when it did; calls between
  the cohort's own SIMs, a box's ports calling each other, do not count as incoming);
- ``cohort_concurrent_mo``: the most outgoing calls those dialers had in progress at
  one instant in the last hour;
- ``local_links``: other SIMs of this site, themselves judged (busy enough to be
  looked at), that this SIM called or texted, or that called or texted it, in 24 h
  (boxes calling each other to look human: domain.md);
- ``link_cell_sims``: of those linked SIMs, the ones seen on one of this SIM's cells
  (a box's SIMs that call each other sit in one box: one cell).

Memory: one (time, IMSI) entry per attach per cell for :data:`KEEP_S` (the IMSI
string is the one the SIM table already holds) and one entry per judged SIM's number,
bounded by :data:`MAX_NUMBERS`.
"""
# ``COHORT_FEATURES`` (the names, in order) lives in features.py with the rest of
# the model's input contract; re-exported here.

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from struct import Struct
from typing import Final

from edge.telecom.callplane.features import COHORT_FEATURES, concurrency, pair_calls
from edge.telecom.callplane.state import (
    ATTACH,
    EVICTED,
    MO_END,
    MO_START,
    MT_START,
    NO_NUMBER,
    PEER_CODES,
    EntityTables,
    SimState,
)

COHORT_S: Final = 60.0  # a box's ports attach within about a minute of each other
BACKGROUND_S: Final = 1800.0  # the cell's attach rate is measured over +-30 min
KEEP_S: Final = 6 * 3600.0  # attaches kept per cell (a box is judged within hours of power-on)
WINDOW_S: Final = 3600.0  # dialling is looked at over the last hour
MAX_COHORT: Final = 64
MAX_NUMBERS: Final = 100_000
# Group tell (see rules.device_tell): 3+ co-attached SIMs dialling out with nothing
# coming in, at least half the cohort, 2+ of them calling at one instant.
__all__ = ["COHORT_FEATURES", "CohortTables", "group_tell"]
TELL_Z: Final = 3.0
TELL_DIALERS: Final = 3
TELL_CONCURRENT: Final = 2
_pack_h = Struct("<I").pack  # the low 32 bits of an IMSI's hash


class _CellAttaches:
    """One cell's attaches in time order: times, IMSIs, the SIMs' states as they were
    (None when not given) and, packed 4 bytes each, the IMSIs' hashes (whether a SIM
    is among a window's attaches is then one C-level ``find`` over the window's bytes
    instead of a string comparison per attach: a busy cell holds a thousand attaches
    within a minute of any moment). The states spare a look-up in the SIM table per
    cohort member: a state the table evicted since is marked (``EVICTED``) and the
    table is asked instead."""

    __slots__ = ("ts", "imsi", "st", "h")

    def __init__(self) -> None:
        self.ts = array("d")
        self.imsi: list[str] = []
        self.st: list[SimState | None] = []
        self.h = bytearray()

    def add(self, ts: float, imsi: str, st: SimState | None = None) -> None:
        t = self.ts
        if not t or ts >= t[-1]:
            t.append(ts)
            self.imsi.append(imsi)
            self.st.append(st)
            self.h += _pack_h(hash(imsi) & 0xFFFFFFFF)
        else:  # a late event (up to seconds): keep the arrays sorted
            i = bisect_right(t, ts)
            t.insert(i, ts)
            self.imsi.insert(i, imsi)
            self.st.insert(i, st)
            self.h[4 * i:4 * i] = _pack_h(hash(imsi) & 0xFFFFFFFF)

    def trim(self, horizon: float) -> None:
        cut = bisect_left(self.ts, horizon)
        if cut:
            del self.ts[:cut]
            del self.imsi[:cut]
            del self.st[:cut]
            del self.h[:4 * cut]

    def around(self, ts: float, span: float) -> tuple[int, int]:
        return bisect_left(self.ts, ts - span), bisect_right(self.ts, ts + span)

    def holds(self, imsi: str, key: bytes, lo: int, hi: int) -> bool:
        """Whether ``imsi`` is among the attaches ``lo:hi`` (``key``: its packed hash)."""
        h = self.h
        end = 4 * hi
        j = h.find(key, 4 * lo, end)
        while j >= 0:
            if not j & 3 and self.imsi[j >> 2] == imsi:
                return True
            j = h.find(key, j + 1, end)
        return False


class CohortTables:
    """Per-cell attach history and the numbers of judged SIMs."""

    def __init__(self) -> None:
        self.cells: dict[str, _CellAttaches] = {}
        self.numbers: dict[int, str] = {}  # MSISDN hash -> IMSI of a judged SIM
        self.lookups = 0
        self._z = 0.0  # excess of the last :meth:`cohort` (its return stays a set)

    def on_attach(self, ts: float, cell: str | None, imsi: str,
                  st: SimState | None = None) -> None:
        """An attach of ``imsi`` (its state in the SIM table: ``st``, if known)."""
        if cell is None:
            return
        ca = self.cells.get(cell)
        if ca is None:
            ca = self.cells[cell] = _CellAttaches()
        ca.add(ts, imsi, st)

    def note_judged(self, imsi: str, number: int | None) -> None:
        if number is None or number == NO_NUMBER:
            return
        nums = self.numbers
        if number not in nums and len(nums) >= MAX_NUMBERS:
            for k in list(nums)[:MAX_NUMBERS // 2]:  # the oldest half (insertion order)
                del nums[k]
        nums[number] = imsi

    def sweep(self, now: float) -> None:
        horizon = now - KEEP_S
        for c in [c for c, ca in self.cells.items() if not ca.ts or ca.ts[-1] < horizon]:
            del self.cells[c]
        for ca in self.cells.values():
            ca.trim(horizon)

    def cohort(self, imsi: str, st: SimState, now: float) -> dict[str, SimState | None]:
        """The SIMs that attached on one of the SIM's cells within :data:`COHORT_S` of
        one of its own attaches (the SIM itself included), each with the state its
        attach was noted with (None, or evicted since: ask the SIM table)."""
        out: dict[str, SimState | None] = {imsi: st}
        self._z = self._scan(imsi, st, now, out)
        return out

    def _scan(self, imsi: str, st: SimState, now: float,
              out: dict[str, SimState | None] | None) -> float:
        """The largest excess of the SIM's attaches over its cells' rates; with
        ``out``, the cohort's members are added to it and the scan stops once it holds
        :data:`MAX_COHORT` (the excess is then the largest up to there); without,
        every attach is looked at (the excess is at least the stopped scan's)."""
        zmax = 0.0
        e = st.e
        own: list[float] = []
        since = now - KEEP_S
        for i in range(len(e) - 2, -1, -2):
            if e[i] < since:
                break
            if int(e[i + 1]) & 15 == ATTACH:
                own.append(e[i])
        if not own:
            return zmax
        key = _pack_h(hash(imsi) & 0xFFFFFFFF)
        for cell in st.cell_names():
            ca = self.cells.get(cell)
            if ca is None:
                continue
            for t in own:
                lo, hi = ca.around(t, COHORT_S)
                if not ca.holds(imsi, key, lo, hi):
                    continue  # that attach was on another cell
                blo, bhi = ca.around(t, BACKGROUND_S)
                first = ca.ts[0]
                span = (min(t + BACKGROUND_S, now) - max(t - BACKGROUND_S, first)
                        - 2 * COHORT_S)
                expected = (bhi - blo - (hi - lo)) * 2 * COHORT_S / max(span, 2 * COHORT_S)
                z = (hi - lo - expected) / (expected + 1.0) ** 0.5
                if z > zmax:
                    zmax = z
                if out is not None:
                    end = min(hi, lo + MAX_COHORT)
                    out.update(zip(ca.imsi[lo:end], ca.st[lo:end], strict=True))
                    if len(out) >= MAX_COHORT:
                        return zmax
        return zmax

    def may_tell(self, imsi: str, st: SimState, tables: EntityTables, now: float) -> bool:
        """False when the SIM's :func:`group_tell` is certainly false at ``now``: it is
        false with the cohort's size and excess whatever its dialers do, counting as
        dialers all the members that dialled out in the hour (:meth:`features` looks
        at no others) with calls at one instant without limit (``group_tell`` only
        grows with both). The cheap part of :meth:`features`: most SIMs' cohorts are
        chance co-attaches or a crowd, and their dialers' calls need not be read."""
        return self._may_tell(imsi, st, tables, now, self.cohort(imsi, st, now))

    def _may_tell(self, imsi: str, st: SimState, tables: EntityTables, now: float,
                  members: dict[str, SimState | None],
                  states: list[SimState] | None = None) -> bool:
        """:meth:`may_tell` on the last :meth:`cohort`, ``members``; their states
        (:meth:`_states`) are taken into ``states`` when given, for the caller to reuse."""
        z = self._z
        n = len(members)
        if not group_tell(float(n), round(z, 3), float(n), math.inf):
            return False
        since = now - WINDOW_S
        found = self._states(imsi, st, tables, members)
        if states is not None:
            states[:] = found
        active = sum(1 for s2 in found if s2.mo_n and s2.last >= since)
        return group_tell(float(n), round(z, 3), float(active), math.inf)

    @staticmethod
    def _states(imsi: str, st: SimState, tables: EntityTables,
                members: dict[str, SimState | None]) -> list[SimState]:
        """The cohort members' states: the one noted with the attach, or the SIM
        table's when none was noted or it has been evicted since (members the table
        no longer holds are left out)."""
        sims = tables.sims
        out: list[SimState] = []
        for m, s2 in members.items():
            if m == imsi:
                s2 = st
            elif s2 is None or s2.flags & EVICTED:
                s2 = sims.get(m)
            if s2 is not None:
                out.append(s2)
        return out

    def tells(self, imsi: str, st: SimState, tables: EntityTables, now: float) -> bool:
        """``group_tell`` of the SIM's :meth:`features` at ``now`` (the early judging's
        question), answered with the work that can change it: ``group_tell`` only
        grows with the excess, the dialers and the calls at one instant, so it is
        false when it is false with each of those at its bound, in order of cost: the
        excess of every attach (at least the cohort's), every member active in the
        hour counted as a dialer, then the dialers themselves with calls at one
        instant unbounded; ``local_links`` does not enter it."""
        if not group_tell(math.inf, round(self._scan(imsi, st, now, None), 3), math.inf,
                          math.inf):
            return False
        members = self.cohort(imsi, st, now)
        states: list[SimState] = []
        if not self._may_tell(imsi, st, tables, now, members, states):
            return False
        self.lookups += 1
        n, z, dialers, intervals = self._dialers(now, members, states)
        if not group_tell(n, z, dialers, math.inf):
            return False
        return group_tell(n, z, dialers, float(concurrency(intervals)))

    def _dialers(self, now: float, members: dict[str, SimState | None],
                 states: list[SimState]
                 ) -> tuple[float, float, float, list[tuple[float, float]]]:
        """The cohort's size and excess (of the last :meth:`cohort`, ``members``, whose
        :meth:`_states` are ``states``), its dialers (members that called out in the
        last :data:`WINDOW_S` and received no call from outside the cohort) and their
        outgoing calls."""
        since = now - WINDOW_S
        dialers = 0
        intervals: list[tuple[float, float]] = []
        # The members' own numbers: calls among them are not incoming from outside.
        group = {n for s2 in states if (n := s2.number) != NO_NUMBER}
        for s2 in states:
            # No outgoing call held, or nothing at all in the hour: not a dialer
            # (the cheap tests first; most of a crowd is people doing nothing).
            if not s2.mo_n or s2.last < since:
                continue
            if dialer_calls(s2, since, now, intervals, group):
                dialers += 1
        return float(len(members)), round(self._z, 3), float(dialers), intervals

    def features(self, imsi: str, st: SimState, tables: EntityTables,
                 now: float) -> list[float]:
        """:data:`COHORT_FEATURES` of one SIM at event time ``now``."""
        self.lookups += 1
        members = self.cohort(imsi, st, now)
        n, z, dialers, intervals = self._dialers(now, members,
                                                 self._states(imsi, st, tables, members))
        links = same_cell = 0
        pq = st.pq
        if pq:
            nums = self.numbers
            seen: set[str] = set()
            for j in range(0, len(pq), 2):
                other = nums.get(pq[j])
                if other is not None and other != imsi and other not in seen:
                    seen.add(other)
            links = len(seen)
            if seen:
                mine_cells = st.cell_names()
                for other in seen:
                    s2 = tables.sims.get(other)
                    if s2 is not None and any(c in mine_cells for c in s2.cell_names()):
                        same_cell += 1
        return [n, z, dialers, float(concurrency(intervals)), float(links), float(same_cell)]


def dialer_calls(st: SimState, since: float, now: float,
                 intervals: list[tuple[float, float]], group: set[int] | None = None
                 ) -> bool:
    """Whether the SIM is a dialer over ``since``..``now``: ``mo and not mt`` of
    :func:`~edge.telecom.callplane.features.recent_calls`, not counting incoming
    calls from the numbers in ``group`` (the cohort's own SIMs: a box's ports calling
    each other are not traffic from outside), its outgoing calls then appended to
    ``intervals`` as that function appends them. The scan from the end stops at the
    first incoming call from outside (most of a crowd's active members receive some;
    their calls were read only to be dropped)."""
    e = st.e
    pq = st.pq
    k = len(pq) - 2 if pq is not None else -2  # the peer pair of the newest peer event
    starts: list[float] = []
    ends: list[float] = []
    i = len(e) - 2
    while i >= 0 and e[i] >= since:
        code = int(e[i + 1]) & 15
        if code == MO_START:
            starts.append(e[i])
            k -= 2
        elif code == MO_END:
            ends.append(e[i])
        elif code == MT_START:
            if not group or pq is None or k < 0 or pq[k] not in group:
                return False
            k -= 2
        elif code in PEER_CODES:
            k -= 2
        i -= 2
    if not starts:
        return False
    pair_calls(starts, ends, now, intervals)
    return True


def group_tell(cohort_sims: float, excess_z: float, cohort_dialers: float,
               concurrent: float) -> bool:
    """Co-attached SIMs on one cell dialling out in parallel with nothing coming in:
    more co-attaches than the cell's rate explains (z >= 3), 3+ dialers, at least
    half the cohort (a cell restart's crowd is mostly people doing something
    else), 2+ of them calling at one instant."""
    return (excess_z >= TELL_Z and cohort_dialers >= TELL_DIALERS
            and 2 * cohort_dialers >= cohort_sims and concurrent >= TELL_CONCURRENT)
