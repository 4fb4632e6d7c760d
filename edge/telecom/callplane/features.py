"""Per-SIM feature vector over sliding windows (15 min, 1 h, 24 h) of event time.

In: a :class:`~edge.telecom.callplane.state.SimState`, the entity tables (for the
device-level aggregates) and ``now``. Out: a list of floats in :data:`FEATURES` order,
the model's input contract (models/callplane/model.json lists the same names).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from statistics import median
from typing import Final

from edge.telecom.callplane.state import (
    ATTACH,
    DATA,
    FAST_SEEN,
    HANDOVER,
    LUHN_BAD,
    MO_END,
    MO_START,
    MT_START,
    SLOW_SEEN,
    SMS_MO,
    SMS_MT,
    EntityTables,
    SimState,
)
from edge.telecom.callplane.tacs import is_module_tac

SIM_FEATURES: tuple[str, ...] = (
    "mo_15m", "mo_1h", "mo_24h", "mt_24h", "mo_share", "distinct_peer_ratio",
    "prefix_spread", "known_peer_share", "answer_ratio", "dur_median_s", "dur_cv",
    "sms_24h", "data_24h", "cells_24h", "handovers_24h", "active_hours", "night_share",
    "gap_median_s", "gap_cv", "imeis_per_imsi", "max_imsis_per_imei", "block_imsis",
    "module_tac", "attaches_24h", "auth_mean_ms", "auth_cv", "device_mo_per_sim",
    "luhn_bad", "slow_attach_only", "block_concurrent_mo", "block_mo_share",
    "block_slow_share", "block_luhn_bad_share", "returned_share",
)
"""What :func:`sim_features` computes from the SIM and its devices."""
COHORT_FEATURES: tuple[str, ...] = ("cohort_sims", "cohort_excess_z", "cohort_dialers",
                                    "cohort_concurrent_mo", "local_links", "link_cell_sims")
"""Group evidence no device links, computed by :mod:`edge.telecom.callplane.cohort`."""
FEATURES: tuple[str, ...] = SIM_FEATURES + COHORT_FEATURES
"""The model's input: the SIM's vector, then its cohort's."""
BLOCK_WINDOW_S: Final = 3600.0  # the device-level view looks at the SIMs' last hour
MAX_BLOCK_SIMS: Final = 64
INDEX: Final = {name: i for i, name in enumerate(FEATURES)}


def _cv(xs: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return 0.0
    m = sum(xs) / n
    if m <= 0:
        return 0.0
    var = sum((x - m) ** 2 for x in xs) / (n - 1)
    return math.sqrt(var) / m


def _slow_only(flags: int) -> bool:
    return bool(flags & SLOW_SEEN) and not flags & FAST_SEEN


def pair_calls(starts: list[float], ends: list[float], now: float,
               intervals: list[tuple[float, float]]) -> None:
    """Append (start, end) intervals of one SIM's outgoing calls, from its call starts
    and ends read newest first (both lists are reversed here); a call still open ends
    ``now``. Calls of one SIM do not overlap: the k-th end after a start closes it."""
    starts.reverse()
    ends.reverse()
    j = 0
    n_ends = len(ends)
    for s0 in starts:
        while j < n_ends and ends[j] < s0:
            j += 1
        if j < n_ends:
            intervals.append((s0, ends[j]))
            j += 1
        else:
            intervals.append((s0, now))


def recent_calls(st: SimState, since: float, now: float,
                  intervals: list[tuple[float, float]]) -> tuple[int, int]:
    """Append the SIM's outgoing calls since ``since`` as (start, end) intervals (a
    call still open ends ``now``); returns its (outgoing, incoming) call counts
    over that window. Reads the event array from its end, so the cost is the
    window's events, not the day's."""
    e = st.e
    starts: list[float] = []
    ends: list[float] = []
    mo = mt = 0
    i = len(e) - 2
    while i >= 0 and e[i] >= since:
        code = int(e[i + 1]) & 15
        if code == MO_START:
            starts.append(e[i])
            mo += 1
        elif code == MO_END:
            ends.append(e[i])
        elif code == MT_START:
            mt += 1
        i -= 2
    pair_calls(starts, ends, now, intervals)
    return mo, mt


def concurrency(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end before a start at a tie)."""
    conc = 0
    if intervals:
        points = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
        cur = 0
        for _, d in points:
            cur += d
            if cur > conc:
                conc = cur
    return conc


def block_view(st: SimState, block: set[str], tables: EntityTables,
               now: float) -> tuple[float, float, float, float]:
    """Device-level evidence over the SIMs of the SIM's IMEI block (same IMEI or
    consecutive serials; the SIM itself included): the most outgoing calls in
    progress at one instant in the last hour, the outgoing share of their calls,
    the share of SIMs whose every attach was slow and the share with a bad Luhn
    digit. A single SIM on its own device gives (its own figures)."""
    since = now - BLOCK_WINDOW_S
    intervals: list[tuple[float, float]] = []
    mo = mt = slow = bad = n = 0
    members = [st] + [s2 for k in sorted(block)[:MAX_BLOCK_SIMS]
                      if (s2 := tables.sims.get(k)) is not None and s2 is not st]
    for s2 in members:
        a, b = recent_calls(s2, since, now, intervals)
        mo += a
        mt += b
        n += 1
        slow += _slow_only(s2.flags)
        bad += bool(s2.flags & LUHN_BAD)
    return (float(concurrency(intervals)), mo / (mo + mt) if mo + mt else 0.0, slow / n if n else 0.0,
            bad / n if n else 0.0)


def sim_features(st: SimState, tables: EntityTables, now: float,
                 utc_offset_h: float = 8.0) -> list[float]:
    """The :data:`SIM_FEATURES` vector of one SIM at event time ``now`` (trims its
    state first); the detector appends the cohort's (:data:`COHORT_FEATURES`)."""
    st.trim(now)
    h1, m15 = now - 3600.0, now - 900.0
    e = st.e
    pq: Sequence[int] = st.pq if st.pq is not None else ()
    mo_ts: list[float] = []
    mo_peers: list[int] = []  # hashes of the B-numbers
    mo_prefixes: set[int] = set()
    in_peers: set[int] = set()
    mo_peer_set: set[int] = set()  # B-numbers dialled so far (event order)
    mt = ends = answered = sms = data = ho = att = returned = 0
    durs: list[float] = []
    auths: list[float] = []
    k = 0  # position in pq: one pair per peer event, in event order
    for i in range(0, len(e), 2):
        iv = int(e[i + 1])
        code = iv & 15
        if code == MO_START:
            mo_ts.append(e[i])
            mo_peers.append(pq[k])
            mo_peer_set.add(pq[k])
            mo_prefixes.add(pq[k + 1])
            k += 2
        elif code == MO_END:
            ends += 1
            d = (iv >> 4) / 10.0
            if d > 0:
                answered += 1
                durs.append(d)
        elif code == MT_START:
            mt += 1
            p = pq[k]
            if p in mo_peer_set:  # a number this SIM had dialled calls back
                returned += 1
            in_peers.add(p)
            k += 2
        elif code == SMS_MO or code == SMS_MT:
            sms += 1
            in_peers.add(pq[k])
            k += 2
        elif code == DATA:
            data += 1
        elif code == HANDOVER:
            ho += 1
        elif code == ATTACH:
            att += 1
            if iv >= 0:
                auths.append((iv >> 4) / 10.0)
    mo = len(mo_ts)
    mo_ts.sort()
    mo_1h = mo - bisect_left(mo_ts, h1)
    mo_15m = mo - bisect_left(mo_ts, m15)
    n_distinct = len(set(mo_peers))
    known = sum(1 for p in mo_peers if p in in_peers)
    # repeat calls to the same number also count as "known" (people call people again)
    repeats = mo - n_distinct

    off = utc_offset_h * 3600.0
    hours = {int((x + off) // 3600) for x in mo_ts}
    night = sum(1 for x in mo_ts if ((x + off) % 86400.0) < 6 * 3600.0)
    gaps = [b - a for a, b in zip(mo_ts, mo_ts[1:], strict=False)]

    imeis = st.imei_set()
    horizon = now - 24 * 3600.0
    max_imsis = 0
    block: set[str] = set()
    for imei in imeis:
        max_imsis = max(max_imsis, len(tables.device_imsis(imei, horizon)))
        for sib in tables.block_imeis(imei):
            block.update(tables.device_imsis(sib, horizon))
    dev_mo = 0.0
    conc, bshare, bslow, bbad = block_view(st, block, tables, now)
    if len(block) > 1:
        tot = 0
        for imsi in block:
            s2 = tables.sims.get(imsi)
            if s2 is not None:
                tot += s2.mo_n
        dev_mo = tot / len(block)
    else:
        dev_mo = float(mo)

    return [
        float(mo_15m), float(mo_1h), float(mo), float(mt),
        mo / (mo + mt) if mo + mt else 0.0,
        n_distinct / mo if mo else 0.0,
        len(mo_prefixes) / mo if mo else 0.0,
        (known + repeats) / mo if mo else 0.0,
        answered / ends if ends else 0.0,
        median(durs) if durs else 0.0,
        _cv(durs),
        float(sms), float(data), float(len(st.cell_set())), float(ho),
        float(len(hours)),
        night / mo if mo else 0.0,
        median(gaps) if gaps else 0.0,
        _cv(gaps),
        float(len(imeis)), float(max_imsis), float(max(1, len(block))),
        1.0 if any(is_module_tac(i) for i in imeis) else 0.0,
        float(att),
        sum(auths) / len(auths) if auths else -1.0,
        _cv(auths),
        dev_mo,
        1.0 if st.flags & LUHN_BAD else 0.0,
        1.0 if _slow_only(st.flags) else 0.0,
        conc, bshare, bslow, bbad,
        returned / mt if mt else 0.0,
    ]
