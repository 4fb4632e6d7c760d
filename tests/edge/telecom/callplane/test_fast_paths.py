"""The call plane's shortcuts give exactly what the plain computations give: the cell
window's membership test by packed hashes (collisions confirmed by the IMSI), the
devices-per-block counts that spare the 100 serial probes, the cheap pre-checks of
the group tell, the cohort members' states kept with their attaches and the dialer
scan that stops at an incoming call."""

from __future__ import annotations

import random

import pytest

from edge.records import BaseStationEvent
from edge.telecom.callplane import cohort as cohort_mod
from edge.telecom.callplane import state as state_mod
from edge.telecom.callplane.cohort import CohortTables, dialer_calls, group_tell
from edge.telecom.callplane.features import recent_calls
from edge.telecom.callplane.state import EVICTED, EntityTables

T0 = 1_767_225_600.0
CELLS = ("46000-1-1", "46000-1-2")


def _site(rng: random.Random, states: bool = False
          ) -> tuple[EntityTables, CohortTables, list[str]]:
    """Two cells: a background of people, a crowd re-attaching at once (a tenth of it
    dialling), and an eight-port box powering up and dialling in parallel.
    ``states``: attaches noted with the SIM's state, as the detector notes them."""
    t, c = EntityTables(), CohortTables()
    imsis: list[str] = []

    def attach(ts: float, imsi: str, imei: str, cell: str) -> None:
        st = t.add(BaseStationEvent(ts, "attach", imsi, imei=imei, cell=cell, auth_ms=60.0))
        c.on_attach(ts, cell, imsi, st if states else None)
        imsis.append(imsi)

    def call(ts: float, imsi: str, peer: str, cell: str, direction: str = "mo") -> None:
        for typ, at, dur in (("call_start", ts, None), ("call_end", ts + 95, 90.0)):
            t.add(BaseStationEvent(at, typ, imsi, cell=cell, dir=direction, peer=peer,
                                   call_id=f"{imsi}{ts}", duration_s=dur))

    for i in range(400):
        cell = CELLS[i % 2]
        ts = T0 + rng.uniform(0, 7200)
        attach(ts, f"46001{i:010d}", f"35{rng.randint(0, 10**12):012d}", cell)
        if rng.random() < 0.4:
            call(ts + rng.uniform(30, 900), f"46001{i:010d}", f"8613{i:09d}", cell,
                 rng.choice(("mo", "mt")))
    for i in range(150):  # a restart of cell 0
        imsi = f"46003{i:010d}"
        attach(T0 + 3000 + rng.uniform(0, 20), imsi, f"35{i + 10**6:012d}", CELLS[0])
        if i % 10 == 0:
            call(T0 + 3100 + i, imsi, f"8616{i:09d}", CELLS[0])
    for k in range(8):  # the box, on cell 1, its ports re-attaching on cell 0 later
        imsi = f"46002{k:010d}"
        attach(T0 + 3600 + rng.uniform(0, 40), imsi, f"86{rng.randint(0, 10**12):012d}",
               CELLS[1])
        for j in range(5):
            call(T0 + 3700 + j * 300 + k * 7, imsi, f"8615{k}{j:08d}", CELLS[1])
        attach(T0 + 5400 + k, imsi, f"86{k:012d}", CELLS[0])
    return t, c, sorted(set(imsis))


def _cohort_features(seed: int) -> list[list[float]]:
    t, c, imsis = _site(random.Random(seed))
    return [c.features(imsi, t.sims[imsi], t, now) for now in (T0 + 3400, T0 + 5500,
                                                                  T0 + 7300)
            for imsi in imsis]


def test_window_membership_by_hash_confirms_collisions(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    plain = _cohort_features(11)
    # Every IMSI packed to the same 4 bytes: each hit must be confirmed by the IMSI
    # itself, and the result is the same.
    monkeypatch.setattr(cohort_mod, "_pack_h", lambda h: b"\x01" * 4)
    assert _cohort_features(11) == plain
    assert any(x[0] >= 8 for x in plain) and any(x[0] == 1 for x in plain)


def test_may_tell_never_hides_a_group() -> None:
    t, c, imsis = _site(random.Random(12))
    told = 0
    for now in (T0 + 3400, T0 + 4500, T0 + 5000, T0 + 6000, T0 + 7300):
        for imsi in imsis:
            st = t.sims[imsi]
            x = c.features(imsi, st, t, now)
            tell = group_tell(x[0], x[1], x[2], x[3])
            if not c.may_tell(imsi, st, t, now):
                assert not tell, (imsi, now, x)
            told += tell
    assert told  # the box is a group at some point


NOWS = (T0 + 3400, T0 + 4500, T0 + 5000, T0 + 5500, T0 + 6000, T0 + 7300)


@pytest.mark.parametrize("states", [False, True])
def test_tells_is_the_group_tell_of_the_features(states: bool) -> None:
    t, c, imsis = _site(random.Random(13), states)
    told = 0
    for now in NOWS:
        for imsi in imsis:
            st = t.sims[imsi]
            x = c.features(imsi, st, t, now)
            tell = group_tell(x[0], x[1], x[2], x[3])
            assert c.tells(imsi, st, t, now) == tell, (imsi, now, x)
            told += tell
    assert told


def test_dialer_scan_agrees_with_recent_calls() -> None:
    t, _, imsis = _site(random.Random(14))
    # SIMs calling out and receiving, in both orders (the scan runs from the end)
    for k, dirs in enumerate((("mo", "mt"), ("mt", "mo"), ("mo", "mo"))):
        for j, d in enumerate(dirs):
            ts = T0 + 5200 + 100 * j
            for typ, at, dur in (("call_start", ts, None), ("call_end", ts + 50, 45.0)):
                t.add(BaseStationEvent(at, typ, imsis[k], cell=CELLS[0], dir=d,
                                       peer="8613900000001", call_id=f"x{k}{j}",
                                       duration_s=dur))
    kinds = set()
    for now in NOWS:
        for span in (600.0, 3600.0):
            for imsi in imsis:
                st = t.sims[imsi]
                plain: list[tuple[float, float]] = [(0.0, 1.0)]
                mo, mt = recent_calls(st, now - span, now, plain)
                got: list[tuple[float, float]] = [(0.0, 1.0)]
                dialer = dialer_calls(st, now - span, now, got)
                assert dialer == bool(mo and not mt)
                assert got == (plain if dialer else [(0.0, 1.0)])
                kinds.add((dialer, bool(mo), bool(mt)))
    assert {(True, True, False), (False, True, True), (False, False, True),
            (False, False, False)} <= kinds


def test_members_states_give_the_table_s_answers_after_evictions() -> None:
    t, c, imsis = _site(random.Random(15), states=True)
    # Evict a third of the SIMs (marked), bring half of those back with new states.
    gone = imsis[::3]
    for imsi in gone:
        t.sims.pop(imsi).flags |= EVICTED
    for imsi in gone[::2]:
        t.add(BaseStationEvent(T0 + 5300, "call_start", imsi, cell=CELLS[0], dir="mo",
                               peer="8613900000000", call_id=imsi))
    plain = CohortTables()
    plain.cells = {k: cohort_mod._CellAttaches() for k in c.cells}
    for k, ca in c.cells.items():
        p = plain.cells[k]
        p.ts, p.imsi, p.h = ca.ts, ca.imsi, ca.h
        p.st = [None] * len(ca.st)
    for now in NOWS:
        for imsi in imsis:
            st = t.sims.get(imsi)
            if st is None:
                continue
            assert c.features(imsi, st, t, now) == plain.features(imsi, st, t, now)
            assert c.may_tell(imsi, st, t, now) == plain.may_tell(imsi, st, t, now)


def _plain_block(t: EntityTables, imei: str) -> list[str]:
    return [k for k in (imei[:12] + f"{j:02d}" for j in range(100)) if k in t.imeis]


def _plain_neighbours(t: EntityTables, imei: str) -> bool:
    body = imei[:14]
    serial, tac = int(body[8:]), body[:8]
    near = [f"{tac}{serial + d:06d}" in t.imeis for d in (-1, 1, -2, 2)]
    return sum(near[:2]) > 0 and sum(near) >= 2


@pytest.mark.parametrize("mask", [state_mod._BLOCK_MASK, 0])
def test_block_counts_spare_probes_and_agree(monkeypatch: pytest.MonkeyPatch,
                                            mask: int) -> None:
    # mask 0: every block in one slot, which saturates at 255 and stays there
    monkeypatch.setattr(state_mod, "_BLOCK_MASK", mask)
    rng = random.Random(5)
    t = EntityTables(idle_evict_s=3600.0)
    imeis: list[str] = []
    kept: list[tuple[str, str]] = []
    for i in range(600):
        if rng.random() < 0.3:  # a batch of consecutive devices (boxes, dual-SIM)
            tac, base = f"8612{rng.randint(0, 9999):04d}", rng.randint(0, 10**6 - 10)
            group = [f"{tac}{base + d:06d}" for d in range(4)]
        else:
            group = [f"35{rng.randint(0, 10**12):012d}"]
        for j, imei in enumerate(group):
            ts = T0 + i * 10 + j
            t.add(BaseStationEvent(ts, "data", f"46009{i:06d}{j:04d}", imei=imei + "7"))
            imeis.append(imei)
            if j % 2:
                kept.append((f"46009{i:06d}{j:04d}", imei + "7"))
    t.add(BaseStationEvent(T0 + 6000, "data", "460090000000000", imei="86120000000009"))

    def agree() -> None:
        for imei in imeis + ["86120000000009", "99999999999999"]:
            assert t.block_imeis(imei) == _plain_block(t, imei)
            assert t.block_imeis(imei + "0") == _plain_block(t, imei)
            assert t.has_neighbours(imei) == _plain_neighbours(t, imei)

    agree()
    for imsi, imei in kept:  # some devices of a block stay, the others go
        t.add(BaseStationEvent(T0 + 6100, "data", imsi, imei=imei))
    t.sweep(T0 + 6500)  # devices idle for an hour go, their counts with them
    assert t.evicted_imeis > 0
    agree()


def test_cells_as_a_flat_list_keep_the_dict_s_answers() -> None:
    """A SIM's cells are a flat list (memory); ``cell_set`` gives what the dict it
    replaced held: first-seen order, last-seen times, the cap, trimming."""
    rng = random.Random(16)
    t = EntityTables()
    names = [f"46000-9-{i}" for i in range(80)]  # more than MAX_PARTNERS
    imsi = "460090000000001"
    cur: str | None = None
    ref: dict[str, float] | None = None  # the dict, as the fold kept it before
    last = ts = T0
    for _ in range(1500):  # fewer than MAX_EVENTS: no trim inside the fold
        ts += rng.choice((1.0, 5.0, 60.0, 30_000.0))
        cell = rng.choice(names[:3] if rng.random() < 0.6 else names)
        t.add(BaseStationEvent(ts, "data", imsi, cell=cell))
        if cell != cur:
            if cur is not None:
                if ref is None:
                    ref = {cur: ts}  # the SIM's last-seen time is already this event's
                if cell in ref or len(ref) < state_mod.MAX_PARTNERS:
                    ref[cell] = ts
            cur = cell
        elif ref is not None:
            ref[cur] = ts
        last = ts
        st = t.sims[imsi]
        if rng.random() < 0.05:
            now = ts + rng.choice((0.0, 86_400.0, 200_000.0))
            st.trim(now)
            if ref is not None and len(ref) > 1:
                horizon = now - state_mod.WINDOW_LONG_S
                for k in [k for k, v in ref.items() if v < horizon]:
                    del ref[k]
        want = ref if ref is not None else {cur: last}
        assert list(st.cell_set().items()) == list(want.items())
        assert st.cell_names() == list(want)


def test_one_imsi_string_per_sim_and_number_sentinel() -> None:
    """What the detector keeps per attach and per device is the SIM table's own IMSI
    string (memory: not each event's copy), and a SIM without an MSISDN has
    ``NO_NUMBER``, which ``note_judged`` skips like the ``None`` it replaced."""
    from edge.config import CallPlaneSection
    from edge.telecom.callplane.detector import CallPlaneDetector

    det = CallPlaneDetector(CallPlaneSection())
    digits = "460070000000001"
    for k in range(3):  # three events, three distinct string objects of one IMSI
        imsi = "".join(reversed(digits[::-1]))
        det.feed(BaseStationEvent(T0 + k, "attach", imsi, imei=f"8612000000000{k}",
                                  cell=CELLS[k % 2], auth_ms=40.0))
    (key,) = det.tables.sims
    st = det.tables.sims[key]
    assert st.imsi is key
    held = [s for ca in det.cohort.cells.values() for s in ca.imsi]
    assert len(held) == 3 and all(s is key for s in held)
    assert all(d is key for d in det.tables.imeis.values())
    assert st.number == state_mod.NO_NUMBER
    det.cohort.note_judged(key, st.number)
    assert det.cohort.numbers == {}
    det.feed(BaseStationEvent(T0 + 5, "data", digits, msisdn="8613800000001"))
    assert st.number == hash("8613800000001")
    det.cohort.note_judged(key, st.number)
    assert det.cohort.numbers == {hash("8613800000001"): key}
