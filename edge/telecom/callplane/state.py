"""Bounded per-entity state over event time: per SIM (IMSI), per device (IMEI), per
IMEI block (consecutive serials), per cell, and per IMSI-IMEI pair.

In: :class:`~edge.records.BaseStationEvent` via :meth:`EntityTables.add`. Out: the
state objects that :mod:`edge.telecom.callplane.features` reads.

Memory is what decides whether this runs on a gateway box with half a million
subscribers (~0.9 KB a SIM), so a SIM keeps its last 24 h of events as (time,
code+value) pairs in one array plus (B-number hash, prefix hash) pairs for its calls
and SMS, and only SIMs or devices that show more than one partner get a dict; a device
that carried a single SIM is stored as that IMSI. Old entries are trimmed when a SIM
is scored or when its array reaches the cap; idle entities are evicted on a sweep
(counted), and a hard cap bounds the SIM table.

Late events (up to a few seconds) are appended where they arrive: windows filter by
timestamp, so order inside a SIM's arrays only matters to the gap features, which
sort. An exact duplicate (same time, type and value among the SIM's last 8 events)
is dropped and counted.

Identifier checks (the watchlist, :mod:`edge.watchlist.matcher`; the call plane knows
nothing of lists): while :attr:`EntityTables.check_gen` is set, each event of a SIM
whose :attr:`SimState.checked` stamp is not that generation is queued in
:attr:`EntityTables.unchecked`, after it is folded, for the checker to look at the
SIM's identifiers and stamp the SIM; a new device, the SIM's first number or a number
other than its first (told by ``hash``) clear the stamp. So a SIM's IMSI, IMEI and
number are looked at once per list version, not per event.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterable
from typing import Final

from edge.records import BaseStationEvent

try:
    from mypy_extensions import i64
except ImportError:  # a runtime install without mypy's extensions: the pure modules run
    i64 = int  # type: ignore[misc,assignment]

# Event codes stored per SIM.
# (Final: a compiled build, edge/native.py, inlines them.)
MO_START: Final = 0
MT_START: Final = 1
MO_END: Final = 2
MT_END: Final = 3
SMS_MO: Final = 4
SMS_MT: Final = 5
DATA: Final = 6
HANDOVER: Final = 7
ATTACH: Final = 8
DETACH: Final = 9
_CODES: Final = {"attach": ATTACH, "detach": DETACH, "data": DATA, "handover": HANDOVER,
          "call_start": MO_START, "call_end": MO_END, "sms": SMS_MO}  # MT: code + 1
WINDOW_LONG_S: Final = 24 * 3600.0
MAX_EVENTS: Final = 2048  # per SIM, within the long window (a box makes ~700 calls a day)
MAX_PARTNERS: Final = 64  # IMEIs per IMSI, IMSIs per IMEI, cells per SIM
DUP_WINDOW: Final = 8  # events per SIM searched for an exact duplicate
PEER_CODES: Final = frozenset((MO_START, MT_START, SMS_MO, SMS_MT))
_IS_PEER: Final = tuple(c in PEER_CODES for c in range(10))
SLOW_AUTH_MS: Final = 250.0  # slower than any phone on its home network (domain.md: SIM banks)
# SimState.flags bits: what the SIM's devices and attaches showed, set as events arrive.
LUHN_BAD: Final = 1  # a 15-digit IMEI of this SIM fails its Luhn check (a rewritten IMEI)
SHARED_DEVICE: Final = 2  # one of its IMEIs carried another SIM
IN_BLOCK: Final = 4  # 2+ devices are known within two serials of its IMEI
SLOW_SEEN: Final = 8  # an attach with auth_ms >= SLOW_AUTH_MS
FAST_SEEN: Final = 16  # an attach with auth_ms < SLOW_AUTH_MS
GROUP: Final = 32  # its attach cohort dials out in parallel (set by the detector, cohort.py)
EVICTED: Final = 64  # no longer in the SIM table (others holding the state ask the table again)
DIRTY: Final = 128  # waiting in the detector's queue to be scored (set and cleared by the detector)
NO_NUMBER: Final = -1  # SimState.number before an MSISDN is seen (hash() never returns -1)
_SERIAL_2: Final = tuple(f"{j:02d}" for j in range(100))  # last two serial digits of a block
# Known devices per IMEI block (TAC + 4 serial digits), counted in hashed slots of one
# byte, twice: in two tables, at two slots taken from different bits of the block's
# hash (several blocks may share a slot, so a count bounds the block's from above, and
# the smaller of the two is the tighter bound; a slot that reaches 255 stays there): a
# block whose count is at most the SIM's own device needs none of the 100 probes of
# its serials.
_BLOCK_SLOTS: Final = 1 << 21  # 2 MB each: at ~500 k devices ~1 slot in 5 shared, ~1 in 20 in both
_BLOCK_MASK = _BLOCK_SLOTS - 1
_BLOCK_SHIFT: Final = 32  # the second table's slot: the hash's high bits


class Judge:
    """What :meth:`EntityTables.fold` calls for the events that may make a SIM worth
    scoring (the detector is one): a class, not a callable, so that the compiled
    build calls :meth:`judge` directly."""

    def judge(self, st: SimState, ev: BaseStationEvent) -> None:
        raise NotImplementedError


class SimState:
    """One SIM's recent events (24 h), its devices and cells, and detector flags."""

    __slots__ = ("last", "e", "pq", "imsi", "imei", "imeis", "cell", "cells", "alerted",
                 "next_score", "mo_n", "number", "flags", "checked")

    def __init__(self, ts: float, imsi: str = "") -> None:
        self.last = ts
        # The SIM table's key (one string object: cohorts and devices hold this one,
        # not each event's copy).
        self.imsi = imsi
        # Events as pairs (ts, code + 16 * round(value * 10)) in one array (value: call
        # duration in s or auth round trip in ms; -1 when auth_ms was missing).
        self.e = array("d")
        # For each call start or SMS in ``e``, in order: (hash of the other number,
        # hash of its 7-digit prefix). Hashes, not strings: 16 bytes a call. Created
        # on the first one: many SIMs never call.
        self.pq: array[int] | None = None
        self.imei: str | None = None  # TAC + serial (14 digits) of the last device
        self.imeis: dict[str, float] | None = None  # only when more than one IMEI
        self.cell: str | None = None
        # Only when more than one cell: [cell, last seen, cell, last seen, ...] in the
        # order first seen (a flat list: ~90 bytes for two cells, a dict ~180).
        self.cells: list[str | float] | None = None
        self.alerted = 0.0
        self.next_score = 0.0
        self.mo_n = 0  # MO call starts currently held
        # hash of the SIM's own MSISDN, once seen (NO_NUMBER before; a native 64-bit
        # integer in the compiled build: no int object per SIM)
        self.number: i64 = NO_NUMBER
        self.flags = 0  # LUHN_BAD | SHARED_DEVICE | IN_BLOCK | SLOW_SEEN | FAST_SEEN | ...
        # The identifier check (EntityTables.check_gen) its IMSI, device and number
        # passed; 0: none. Set by the checker, cleared by the fold when they change.
        self.checked = 0

    def trim(self, now: float) -> None:
        """Drop entries older than the long window."""
        horizon = now - WINDOW_LONG_S
        e = self.e
        if e and e[0] < horizon:
            n = len(e)
            cut = 0
            while cut < n and e[cut] < horizon:
                cut += 2
            self._drop(cut)
        if self.imeis is not None and len(self.imeis) > 1:
            for k in [k for k, ts in self.imeis.items() if ts < horizon]:
                del self.imeis[k]
        cl = self.cells
        if cl is not None and len(cl) > 2:
            kept = [x for k in range(0, len(cl), 2) if cl[k + 1] >= horizon  # type: ignore[operator]
                    for x in (cl[k], cl[k + 1])]
            if len(kept) != len(cl):
                cl[:] = kept

    def _drop(self, cut: int) -> None:
        """Drop the first ``cut // 2`` events and their peer entries."""
        e = self.e
        npeer = nmo = 0
        for i in range(1, cut, 2):
            code = int(e[i]) & 15
            if code in PEER_CODES:
                npeer += 1
                if code == MO_START:
                    nmo += 1
        del e[:cut]
        if npeer and self.pq is not None:
            del self.pq[:2 * npeer]
        self.mo_n -= nmo

    def cell_set(self) -> dict[str, float]:
        cl = self.cells
        if cl is not None:
            return dict(zip(cl[::2], cl[1::2], strict=True))  # type: ignore[arg-type]
        return {self.cell: self.last} if self.cell is not None else {}

    def cell_names(self) -> list[str]:
        """The cells of :meth:`cell_set`, in its order."""
        cl = self.cells
        if cl is not None:
            return cl[::2]  # type: ignore[return-value]
        return [self.cell] if self.cell is not None else []

    def imei_set(self) -> dict[str, float]:
        if self.imeis is not None:
            return self.imeis
        return {self.imei: self.last} if self.imei is not None else {}


def _luhn_slow(imei: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(imei)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _luhn_table(width: int) -> dict[str, int]:
    """Luhn partial sums of every ``width``-digit chunk that starts at an even
    position of a 15-digit IMEI (its odd positions are the doubled ones)."""
    out = {}
    for v in range(10 ** width):
        chunk = f"{v:0{width}d}"
        t = 0
        for k, ch in enumerate(chunk):
            d = ord(ch) - 48
            if k % 2 == 1:
                d = d * 2 - 9 if d > 4 else d * 2
            t += d
        out[chunk] = t
    return out


_LUHN4: Final = _luhn_table(4)
_LUHN3: Final = _luhn_table(3)


def luhn_ok(imei: str) -> bool:
    """True when a 15-digit IMEI's last digit is the Luhn check digit of the rest.
    Four table lookups of precomputed partial sums (every SIM's first IMEI is
    checked, so this is on the per-event path); anything else takes the loop."""
    try:
        return (_LUHN4[imei[0:4]] + _LUHN4[imei[4:8]] + _LUHN4[imei[8:12]]
                + _LUHN3[imei[12:15]]) % 10 == 0
    except KeyError:  # not ASCII digits
        return _luhn_slow(imei)


class ImeiState:
    """One device (IMEI): the SIMs it carried (IMSI -> last seen)."""

    __slots__ = ("last", "one", "many")

    def __init__(self, imsi: str, ts: float) -> None:
        self.last = ts
        self.one: str | None = imsi
        self.many: dict[str, float] | None = None

    def add(self, imsi: str, ts: float) -> None:
        if ts > self.last:
            self.last = ts
        if self.many is None:
            if imsi == self.one:
                return
            self.many = {self.one: self.last} if self.one is not None else {}
            self.one = None
        if imsi in self.many or len(self.many) < MAX_PARTNERS:
            self.many[imsi] = ts

    def imsis(self, since: float) -> list[str]:
        if self.many is None:
            return [self.one] if self.one is not None and self.last >= since else []
        return [k for k, ts in self.many.items() if ts >= since]


class CellState:
    """One cell: when it last carried an outgoing call, and the SIMs alerted on it."""

    __slots__ = ("last", "alerted")

    def __init__(self, ts: float) -> None:
        self.last = ts
        self.alerted: set[str] = set()

    def add_mo(self, ts: float) -> None:
        if ts > self.last:
            self.last = ts


class EntityTables:
    """All per-entity tables with idle eviction and a hard cap on SIMs."""

    def __init__(self, *, idle_evict_s: float = WINDOW_LONG_S, max_sims: int = 2_000_000) -> None:
        self.sims: dict[str, SimState] = {}
        self.imeis: dict[str, ImeiState | str] = {}  # imei[:14] -> device (or its one IMSI)
        self.cells: dict[str, CellState] = {}
        self._cell_names: dict[str, str] = {}
        self._blocks = bytearray(_BLOCK_SLOTS)  # devices per hashed block (see above)
        self._blocks2 = bytearray(_BLOCK_SLOTS)
        self.idle_evict_s = idle_evict_s
        self.max_sims = max_sims
        self.evicted_sims = 0
        self.evicted_imeis = 0
        self.evicted_cells = 0
        self.duplicates = 0
        self.late = 0  # events older than the newest folded before them
        self.max_ts = -math.inf
        # Identifier checks (see the module docstring): 0 while no checker runs.
        self.check_gen = 0
        self.unchecked: list[tuple[SimState, BaseStationEvent]] = []

    def add(self, ev: BaseStationEvent) -> SimState | None:
        """Fold one event into the tables; returns the SIM's state (None for a duplicate)."""
        dup = self.duplicates
        self.fold((ev,))
        return None if self.duplicates != dup else self.sims.get(ev.imsi)

    def fold(self, evs: Iterable[BaseStationEvent], judge: Judge | None = None,
             on_error: Callable[[Exception], None] | None = None) -> None:
        """Fold events into the tables, in order. ``judge.judge(st, ev)`` is called right
        after each outgoing call start and each attach (duplicates aside): what the
        detector needs to decide whether to score the SIM, seen exactly as the tables
        stood then. An
        exception on one event goes to ``on_error`` and the fold goes on with the next
        (without ``on_error`` it is raised).

        One loop over many events, everything it uses held in locals: at 500 k SIMs
        the per-event cost is a few dict and array operations, and the calls and
        attribute lookups around them weighed as much."""
        sims = self.sims
        cells = self.cells
        devs = self.imeis
        codes = _CODES
        is_peer = _IS_PEER
        max_ts = self.max_ts
        late = 0
        check_gen = self.check_gen
        unchecked = self.unchecked
        try:
            for ev in evs:
                try:
                    ts = ev.ts
                    if ts < max_ts:
                        late += 1
                    else:
                        max_ts = ts
                    imsi = ev.imsi
                    st = sims.get(imsi)
                    if st is None:
                        if len(sims) >= self.max_sims:
                            self.evict_oldest(max(1, self.max_sims // 100))
                        st = sims[imsi] = SimState(ts, imsi)
                    # One lookup for the code; directed types have MT = MO + 1.
                    code = codes[ev.type]
                    if code <= SMS_MT:
                        if ev.dir == "mt":
                            code += 1
                        cv = code + 0.0
                        if code == MO_END or code == MT_END:
                            val = min(ev.duration_s or 0.0, 1e9)
                            if val:
                                cv = code + 16.0 * round(val * 10.0)
                    elif code == ATTACH:
                        auth = ev.auth_ms
                        if auth is not None:
                            val = min(auth, 1e9)
                            st.flags |= SLOW_SEEN if val >= SLOW_AUTH_MS else FAST_SEEN
                        else:
                            val = -1.0
                        cv = code + 16.0 * round(val * 10.0) if val else code + 0.0
                    else:
                        cv = code + 0.0
                    e = st.e
                    if ts <= st.last:
                        if e:
                            # Only a replayed or late event can be a duplicate: look for the
                            # same (time, type, value) among the SIM's last DUP_WINDOW events.
                            n = len(e)
                            for j in range(n - 2, max(-1, n - 2 * DUP_WINDOW - 1), -2):
                                if e[j] == ts and e[j + 1] == cv:
                                    break
                            else:
                                j = -1
                            if j >= 0:
                                self.duplicates += 1
                                if check_gen:  # its fields may differ: the checker looks
                                    unchecked.append((st, ev))
                                continue
                    else:
                        st.last = ts
                    if st.number == NO_NUMBER:
                        if ev.msisdn is not None:
                            st.number = hash(ev.msisdn)
                            st.checked = 0  # its number: to be checked
                    elif check_gen:
                        num = ev.msisdn
                        if num is not None and hash(num) != st.number:
                            st.checked = 0  # not its first number (rare): checked each time
                    if is_peer[code]:
                        pq = st.pq
                        if pq is None:
                            pq = st.pq = array("q")
                        peer = ev.peer or ""
                        pq.append(hash(peer))
                        pq.append(hash(peer[:7]))
                        if code == MO_START:
                            st.mo_n += 1
                            if ev.cell is not None:
                                cs = cells.get(ev.cell)
                                if cs is None:
                                    cs = cells[ev.cell] = CellState(ts)
                                cs.add_mo(ts)
                    e.append(ts)
                    e.append(cv)
                    if len(e) > 2 * MAX_EVENTS:
                        st.trim(st.last)
                        if len(e) > 2 * MAX_EVENTS:  # still over: keep the newest half
                            st._drop(len(e) - MAX_EVENTS)
                    cell = ev.cell
                    if cell is not None:
                        if cell != st.cell:
                            # One string object per cell, not one per SIM that saw it.
                            names = self._cell_names
                            if len(names) > 100_000:  # a site has hundreds of cells; garbage must not grow it
                                names.clear()
                            cell = names.setdefault(cell, cell)
                            if st.cell is not None:
                                cl = st.cells
                                if cl is None:
                                    st.cells = [st.cell, st.last, cell, ts]
                                elif cell in cl:  # names and floats never compare equal
                                    cl[cl.index(cell) + 1] = ts
                                elif len(cl) < 2 * MAX_PARTNERS:
                                    cl += (cell, ts)
                            st.cell = cell
                        elif st.cells is not None:
                            cl = st.cells
                            cell = st.cell or cell  # the one string object (found by identity)
                            try:  # one scan (not ``in``, then ``index``)
                                cl[cl.index(cell) + 1] = ts
                            except ValueError:  # trimmed away, or not taken at the cap: now it is
                                cl += (cell, ts)
                    imei = ev.imei
                    # The common case inline: the SIM's own, unshared device again.
                    if imei is not None and (imei[:14] != st.imei or st.imeis is not None
                                             or st.flags & SHARED_DEVICE):
                        self._fold_device(st, st.imsi, imei, ts, devs)
                    if check_gen and st.checked != check_gen:
                        unchecked.append((st, ev))
                    if judge is not None and (code == MO_START or code == ATTACH):
                        judge.judge(st, ev)
                except Exception as exc:  # a bug on one event: count it, fold the rest
                    if on_error is None:
                        raise
                    on_error(exc)
        finally:
            self.max_ts = max_ts
            self.late += late

    def _fold_device(self, st: SimState, imsi: str, full: str, ts: float,
                     devs: dict[str, ImeiState | str]) -> None:
        """The device part of :meth:`fold` for an event that carried an IMEI."""
        # Devices are keyed by TAC + serial (14 digits): IMEI and IMEISV match.
        imei = full[:14]
        if st.imei != imei:
            if st.imei is not None:
                # The SIM moved to another device: check the new IMEI's Luhn
                # digit (the first IMEI is checked when the SIM first calls out,
                # :meth:`check_luhn`: most SIMs never need it).
                if len(full) == 15 and not luhn_ok(full):
                    st.flags |= LUHN_BAD
                if st.imeis is None:
                    st.imeis = {st.imei: st.last}
                if len(st.imeis) < MAX_PARTNERS:
                    st.imeis[imei] = ts
            st.imei = imei
            st.checked = 0  # a new device: to be checked
        else:
            if st.imeis is not None:
                st.imeis[imei] = ts
            if not st.flags & SHARED_DEVICE:
                # Same device, which carried no other SIM: its table entry is
                # this IMSI (last seen = the SIM's), nothing to update. Another
                # SIM arriving on it sets SHARED_DEVICE on this one.
                return
        # A device that only ever carried one SIM is stored as that IMSI (no
        # object): its last-seen time is the SIM's.
        dev = devs.get(imei)
        if dev is None:
            devs[imei] = imsi
            h = hash(imei[:12])
            blocks = self._blocks
            slot = h & _BLOCK_MASK
            if blocks[slot] != 255:
                blocks[slot] += 1
            blocks = self._blocks2
            slot = (h >> _BLOCK_SHIFT) & _BLOCK_MASK
            if blocks[slot] != 255:
                blocks[slot] += 1
        elif isinstance(dev, str):
            if dev != imsi:
                first = self.sims.get(dev)
                d = ImeiState(dev, first.last if first is not None else ts)
                d.add(imsi, ts)
                devs[imei] = d
                st.flags |= SHARED_DEVICE
                if first is not None:
                    first.flags |= SHARED_DEVICE
        else:
            dev.add(imsi, ts)
            st.flags |= SHARED_DEVICE

    def device_imsis(self, imei: str, since: float) -> list[str]:
        """The SIMs an IMEI (or IMEISV) carried since ``since``."""
        dev = self.imeis.get(imei[:14])
        if dev is None:
            return []
        if isinstance(dev, str):
            st = self.sims.get(dev)
            return [dev] if st is not None and st.last >= since else []
        return dev.imsis(since)

    def _device_last(self, dev: ImeiState | str) -> float:
        if isinstance(dev, str):
            st = self.sims.get(dev)
            return st.last if st is not None else float("-inf")
        return dev.last

    @staticmethod
    def check_luhn(st: SimState, imei: str | None) -> None:
        """Set LUHN_BAD when a 15-digit IMEI fails its Luhn check."""
        if imei is not None and len(imei) == 15 and not luhn_ok(imei):
            st.flags |= LUHN_BAD

    def has_neighbours(self, imei: str) -> bool:
        """Whether the next serial and one more within two serials of the IMEI (TAC + serial,
        14 digits): the cheap test, four lookups, for the ports of one box or a batch
        of devices; a dual-SIM phone has one neighbour."""
        body = imei[:14]
        devs = self.imeis
        if len(body) == 14 and "02" <= body[12:] <= "97" and body.isascii() \
                and body.isdigit() and self.block_count(body) <= (body in devs):
            return False  # the four serials are in its block, which holds no other device
        try:
            serial = int(body[8:])
        except ValueError:
            return False
        tac = body[:8]
        # Most devices have no neighbour at all: test the two next serials first.
        n = (f"{tac}{serial - 1:06d}" in devs) + (f"{tac}{serial + 1:06d}" in devs)
        if n == 0:
            return False
        return n + (f"{tac}{serial - 2:06d}" in devs) + (f"{tac}{serial + 2:06d}" in devs) >= 2

    def block_sims(self, imei: str, since: float) -> set[str]:
        """The SIMs the devices of the IMEI's block carried since ``since``."""
        out: set[str] = set()
        for sib in self.block_imeis(imei):
            out.update(self.device_imsis(sib, since))
        return out

    def block_count(self, imei: str) -> int:
        """A bound from above on the number of known devices in the IMEI's block
        (exact unless other blocks share both its slots; 255: that many or more)."""
        h = hash(imei[:12])
        return min(self._blocks[h & _BLOCK_MASK],
                   self._blocks2[(h >> _BLOCK_SHIFT) & _BLOCK_MASK])

    def block_imeis(self, imei: str) -> list[str]:
        """Known devices (14-digit keys) in the IMEI's block of 100 consecutive serials:
        multi-port modules and dual-SIM phones carry consecutive IMEIs. Probing the
        100 candidates costs a few us (all in C: map, filter) and saves an index
        entry per device."""
        devs = self.imeis
        if len(imei) >= 14:
            n = self.block_count(imei)
            if n <= 1:  # at most one device in the block: the one given, if known
                if n == 0:
                    return []
                body = imei[:14]
                if body in devs:
                    return [body]
        return list(filter(devs.__contains__, map(imei[:12].__add__, _SERIAL_2)))

    # -- eviction
    def sweep(self, now: float) -> None:
        """Evict SIMs, devices and cells idle for longer than ``idle_evict_s``."""
        horizon = now - self.idle_evict_s
        stale = [k for k, s in self.sims.items() if s.last < horizon]
        sims = self.sims
        for k in stale:
            sims.pop(k).flags |= EVICTED
        self.evicted_sims += len(stale)
        stale = [k for k, d in self.imeis.items() if self._device_last(d) < horizon]
        blocks, blocks2 = self._blocks, self._blocks2
        for k in stale:
            del self.imeis[k]
            h = hash(k[:12])
            slot = h & _BLOCK_MASK
            if blocks[slot] != 255:
                blocks[slot] -= 1
            slot = (h >> _BLOCK_SHIFT) & _BLOCK_MASK
            if blocks2[slot] != 255:
                blocks2[slot] -= 1
        self.evicted_imeis += len(stale)
        stale = [k for k, c in self.cells.items() if c.last < horizon]
        for k in stale:
            del self.cells[k]
        self.evicted_cells += len(stale)

    def evict_oldest(self, n: int) -> None:
        """Hard cap: drop the ``n`` SIMs idle the longest."""
        victims = sorted(self.sims.items(), key=lambda kv: kv[1].last)[:n]
        for k, st in victims:
            del self.sims[k]
            st.flags |= EVICTED
        self.evicted_sims += len(victims)

    def counters(self) -> dict[str, int]:
        return {"sims": len(self.sims), "imeis": len(self.imeis), "cells": len(self.cells),
                "evicted_sims": self.evicted_sims, "evicted_imeis": self.evicted_imeis,
                "evicted_cells": self.evicted_cells, "duplicates": self.duplicates}
