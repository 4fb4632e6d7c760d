"""Per-entity state (windows, eviction, duplicates, late events) and feature values."""

from __future__ import annotations

import pytest

from edge.records import BaseStationEvent
from edge.telecom.callplane.features import INDEX, SIM_FEATURES, sim_features
from edge.telecom.callplane.rules import certain
from edge.telecom.callplane.state import MAX_EVENTS, EntityTables

T0 = 1_767_225_600.0
A = "460001111111111"
B = "460002222222222"
PHONE = "35123456000011"
MODULE = "86220004000012"


def ev(ts: float, type_: str, imsi: str = A, **kw: object) -> BaseStationEvent:
    return BaseStationEvent(ts, type_, imsi, **kw)  # type: ignore[arg-type]


def call(tables: EntityTables, ts: float, peer: str, *, imsi: str = A, imei: str = PHONE,
         direction: str = "mo", dur: float = 30.0, cid: str | None = None,
         cell: str = "46000-1-1") -> None:
    cid = cid or f"{imsi}-{ts}"
    tables.add(ev(ts, "call_start", imsi, imei=imei, dir=direction, peer=peer, call_id=cid,
                  cell=cell))
    tables.add(ev(ts + 5 + dur, "call_end", imsi, imei=imei, dir=direction, peer=peer,
                  call_id=cid, duration_s=dur, cell=cell))


def f(x: list[float], name: str) -> float:
    return x[INDEX[name]]


def test_windows_counts_and_ratios() -> None:
    t = EntityTables()
    # 20 outgoing calls over 5 h to distinct numbers, one every 15 min; 2 received.
    for i in range(20):
        call(t, T0 + i * 900, f"86139{i:08d}", dur=20.0 + i)
    call(t, T0 + 100, "8613700000000", direction="mt")
    call(t, T0 + 200, "8613700000001", direction="mt")
    t.add(ev(T0 + 300, "sms", dir="mt", peer="8613700000000"))
    t.add(ev(T0 + 400, "data", bytes=10))
    t.add(ev(T0 + 10, "attach", imei=PHONE, auth_ms=40.0))
    t.add(ev(T0 + 20, "attach", imei=PHONE, auth_ms=60.0))
    now = T0 + 19 * 900 + 60
    x = sim_features(t.sims[A], t, now, utc_offset_h=0)
    assert len(x) == len(SIM_FEATURES)
    assert f(x, "mo_24h") == 20 and f(x, "mt_24h") == 2
    assert f(x, "mo_1h") == 4 and f(x, "mo_15m") == 1
    assert f(x, "mo_share") == pytest.approx(20 / 22)
    assert f(x, "distinct_peer_ratio") == 1.0
    assert f(x, "answer_ratio") == 1.0
    assert f(x, "dur_median_s") == pytest.approx(29.5)
    assert f(x, "sms_24h") == 1 and f(x, "data_24h") == 1
    assert f(x, "gap_median_s") == 900 and f(x, "gap_cv") == pytest.approx(0.0)
    assert f(x, "attaches_24h") == 2 and f(x, "auth_mean_ms") == 50
    assert f(x, "active_hours") == 5
    assert f(x, "night_share") == 1.0  # 00:00-04:45 UTC with offset 0
    assert f(x, "module_tac") == 0 and f(x, "imeis_per_imsi") == 1
    # the 24 h window slides: a day later only what happened since remains
    call(t, T0 + 86400 + 19000, "8613999999999")
    x2 = sim_features(t.sims[A], t, T0 + 86400 + 20000, utc_offset_h=0)
    assert f(x2, "mo_24h") == 1 and f(x2, "mt_24h") == 0 and f(x2, "sms_24h") == 0


def test_known_peers_and_prefix_spread() -> None:
    t = EntityTables()
    for i in range(10):
        call(t, T0 + i * 60, "8613800000001")  # the same friend ten times
    call(t, T0 + 900, "8613800000001", direction="mt")
    x = sim_features(t.sims[A], t, T0 + 1000)
    assert f(x, "distinct_peer_ratio") == pytest.approx(0.1)
    assert f(x, "known_peer_share") == pytest.approx(1.9)  # repeats + calls back
    assert f(x, "prefix_spread") == pytest.approx(0.1)


def test_sim_bank_rotation_features_and_rule() -> None:
    t = EntityTables()
    sims = [f"4600033333333{i:02d}" for i in range(5)]
    for k, imsi in enumerate(sims):  # five SIMs take turns in one module
        t.add(ev(T0 + k * 1200, "attach", imsi, imei=MODULE, auth_ms=900.0 + 100 * k))
        for j in range(6):
            call(t, T0 + k * 1200 + 60 + j * 120, f"8615{k}{j:08d}", imsi=imsi, imei=MODULE)
    x = sim_features(t.sims[sims[-1]], t, T0 + 6500)
    assert f(x, "max_imsis_per_imei") == 5 and f(x, "module_tac") == 1
    assert f(x, "block_imsis") == 5 and f(x, "device_mo_per_sim") == 6
    hit = certain(x)  # a SIM bank swapping cards in one port
    assert hit is not None and hit.name == "sim_bank_swap"
    assert f(x, "slow_attach_only") == 1 and f(x, "block_slow_share") == 1


def test_one_imsi_many_imeis_and_consecutive_block() -> None:
    t = EntityTables()
    call(t, T0, "8613000000001", imei="86220004000010")
    call(t, T0 + 60, "8613000000002", imei="86220004000028")
    call(t, T0 + 120, "8613000000003", imsi=B, imei="86220004000036")
    x = sim_features(t.sims[A], t, T0 + 200)
    assert f(x, "imeis_per_imsi") == 2
    assert f(x, "block_imsis") == 2  # B's module IMEI is in the same block of serials


def test_duplicates_dropped_late_events_kept() -> None:
    t = EntityTables()
    call(t, T0, "8613000000001", cid="x1")
    call(t, T0, "8613000000001", cid="x1")  # exact replay of both events
    t.add(ev(T0 + 50, "data", bytes=5))
    t.add(ev(T0 + 50, "data", bytes=5))
    assert t.duplicates == 3
    call(t, T0 + 100, "8613000000002", cid="x2")
    call(t, T0 + 97, "8613000000003", cid="x3")  # 3 s late
    x = sim_features(t.sims[A], t, T0 + 300)
    assert f(x, "mo_24h") == 3 and f(x, "data_24h") == 1
    assert f(x, "gap_median_s") == pytest.approx(50)  # gaps 97 s and 3 s: sorted by time


def test_idle_eviction_and_hard_cap() -> None:
    t = EntityTables(idle_evict_s=3600, max_sims=1000)
    for i in range(1000):
        t.add(ev(T0 + i, "data", f"46000{i:010d}", imei=f"35{i:012d}", cell="c1"))
    t.add(ev(T0 + 5000, "data", "460009999999999", imei=PHONE, cell="c2"))
    assert len(t.sims) <= 1000 and t.evicted_sims >= 10
    t.sweep(T0 + 5000 + 100)
    assert list(t.sims) == ["460009999999999"]
    assert len(t.imeis) == 1 and not t.cells  # cells are kept for outgoing calls
    assert t.counters()["evicted_imeis"] >= 999


def test_per_sim_arrays_are_bounded() -> None:
    t = EntityTables()
    for i in range(3 * MAX_EVENTS):
        t.add(ev(T0 + i, "call_start", dir="mo", peer=f"86{i:011d}", call_id=str(i)))
    st = t.sims[A]
    assert len(st.e) <= 2 * MAX_EVENTS and st.pq is not None
    assert st.mo_n == len(st.pq) // 2 == len(st.e) // 2


def test_returned_share_counts_calls_back_from_numbers_dialled_before() -> None:
    t = EntityTables()
    for i in range(4):
        call(t, T0 + i * 600, f"86139{i:08d}")
    call(t, T0 + 3000, "8613900000001", direction="mt")  # dialled before: returned
    call(t, T0 + 3100, "8613700000000", direction="mt")  # a stranger
    call(t, T0 + 3200, "8613955555555", direction="mt")  # dialled only afterwards
    call(t, T0 + 3300, "8613955555555")
    x = sim_features(t.sims[A], t, T0 + 3400, utc_offset_h=0)
    assert f(x, "mt_24h") == 3 and f(x, "returned_share") == pytest.approx(1 / 3)
    t2 = EntityTables()
    call(t2, T0, "8613900000009")
    assert f(sim_features(t2.sims[A], t2, T0 + 60, utc_offset_h=0), "returned_share") == 0.0


def test_block_tell_needs_a_sim_that_took_no_call_in_24h() -> None:
    """A batch of consecutive-IMEI phones whose SIMs only dialled out in the last hour
    opens the model's gate for a SIM that took no call all day (75 % of boxes take
    none), not for an agent whose customers called back earlier (a call centre late
    in the day: its last hour is outgoing only)."""
    from edge.telecom.callplane.features import FEATURES
    from edge.telecom.callplane.rules import device_tell

    x = [0.0] * len(FEATURES)
    x[INDEX["imeis_per_imsi"]] = x[INDEX["max_imsis_per_imei"]] = 1.0
    x[INDEX["block_imsis"]] = 12.0
    x[INDEX["block_mo_share"]] = 1.0
    x[INDEX["device_mo_per_sim"]] = 40.0
    x[INDEX["mo_24h"]] = 60.0
    assert device_tell(x)
    x[INDEX["mt_24h"]] = 3.0
    assert not device_tell(x)
    x[INDEX["luhn_bad"]] = 1.0  # another device tell still opens it
    assert device_tell(x)
