"""Group evidence no device links (cohort.py): attach cohorts on a cell, their excess
over the cell's attach rate, parallel dialling, local call links; the group tell and
the detector's early judging on it."""

from __future__ import annotations

import random

from edge.config import CallPlaneSection
from edge.records import BaseStationEvent
from edge.telecom.callplane.cohort import CohortTables, group_tell
from edge.telecom.callplane.detector import CallPlaneDetector
from edge.telecom.callplane.features import COHORT_FEATURES, FEATURES
from edge.telecom.callplane.state import GROUP, EntityTables

T0 = 1_767_225_600.0
CELL = "46000-1234-5678"


def ev(ts: float, type_: str, imsi: str, **kw: object) -> BaseStationEvent:
    return BaseStationEvent(ts, type_, imsi, **kw)  # type: ignore[arg-type]


class Site:
    def __init__(self) -> None:
        self.t = EntityTables()
        self.c = CohortTables()

    def attach(self, ts: float, imsi: str, imei: str, cell: str = CELL) -> None:
        st = self.t.add(ev(ts, "attach", imsi, imei=imei, cell=cell, auth_ms=60.0))
        assert st is not None
        self.c.on_attach(ts, cell, imsi)

    def call(self, ts: float, imsi: str, imei: str, peer: str, dur: float = 40.0,
             direction: str = "mo", msisdn: str | None = None) -> None:
        cid = f"{imsi}-{ts}"
        self.t.add(ev(ts, "call_start", imsi, imei=imei, cell=CELL, dir=direction,
                      peer=peer, call_id=cid, msisdn=msisdn))
        self.t.add(ev(ts + 5 + dur, "call_end", imsi, imei=imei, cell=CELL, dir=direction,
                      peer=peer, call_id=cid, duration_s=dur, msisdn=msisdn))

    def feats(self, imsi: str, now: float) -> dict[str, float]:
        x = self.c.features(imsi, self.t.sims[imsi], self.t, now)
        return dict(zip(COHORT_FEATURES, x, strict=True))


def _tell(f: dict[str, float]) -> bool:
    return group_tell(f["cohort_sims"], f["cohort_excess_z"], f["cohort_dialers"],
                      f["cohort_concurrent_mo"])


def _background(site: Site, rng: random.Random, n: int, t_from: float, t_to: float,
                dial_share: float) -> None:
    """People attaching at random over a period; some of them call out later."""
    for i in range(n):
        imsi = f"46001{i:010d}"
        ts = rng.uniform(t_from, t_to)
        site.attach(ts, imsi, f"35{rng.randint(0, 10**12):012d}")
        if rng.random() < dial_share:
            site.call(ts + rng.uniform(60, 1800), imsi, f"35{i:012d}", f"8613{i:09d}")


def test_box_powering_up_on_a_quiet_cell_is_a_group() -> None:
    rng = random.Random(1)
    site = Site()
    _background(site, rng, 60, T0, T0 + 7200, 0.5)  # one attach every two minutes
    ports = [f"46002{i:010d}" for i in range(8)]
    on = T0 + 3600
    for k, imsi in enumerate(ports):  # random phone IMEIs, local fast SIMs
        site.attach(on + rng.uniform(0, 40), imsi, f"86{rng.randint(0, 10**12):012d}")
        for j in range(6):  # dialling strangers in parallel
            site.call(on + 60 + j * 300 + k * 7, imsi, "x", f"8615{k}{j:08d}", dur=90.0)
    f = site.feats(ports[0], on + 2000)
    assert f["cohort_sims"] >= 8 and f["cohort_excess_z"] >= 3
    assert f["cohort_dialers"] == 8 and f["cohort_concurrent_mo"] >= 4
    assert _tell(f)


def test_a_cell_restart_crowd_and_a_busy_hour_are_not_groups() -> None:
    rng = random.Random(2)
    site = Site()
    # A busy hour: an attach every few seconds, most of them dialling afterwards.
    _background(site, rng, 900, T0, T0 + 3600, 0.8)
    busy = next(iter(site.t.sims))
    f = site.feats(busy, T0 + 3700)
    assert f["cohort_excess_z"] < 3 and not _tell(f)
    # A restart: 300 phones re-attach within 20 s, a tenth of them call out.
    crowd = [f"46003{i:010d}" for i in range(300)]
    for i, imsi in enumerate(crowd):
        site.attach(T0 + 5000 + rng.uniform(0, 20), imsi, f"35{i + 10**6:012d}")
        if i % 10 == 0:
            site.call(T0 + 5100 + i, imsi, "x", f"8616{i:09d}")
    f = site.feats(crowd[0], T0 + 5600)
    assert f["cohort_excess_z"] > 3 and f["cohort_dialers"] < f["cohort_sims"] / 2
    assert not _tell(f)


def test_no_attach_seen_means_no_cohort_and_links_count_judged_locals() -> None:
    site = Site()
    a, b, c = "460040000000001", "460040000000002", "460040000000003"
    site.call(T0, a, "35000000000011", "8613100000002", msisdn="8613100000001")
    site.call(T0 + 100, b, "35000000000029", "8613100000001", msisdn="8613100000002")
    site.call(T0 + 200, c, "35000000000037", "8613100000001", msisdn="8613100000003")
    f = site.feats(a, T0 + 300)
    assert f["cohort_sims"] == 1 and f["cohort_excess_z"] == 0 and f["local_links"] == 0
    for imsi in (b, c):
        site.c.note_judged(imsi, site.t.sims[imsi].number)
    # a called b (b is judged); c called a, but a is not judged yet
    assert site.feats(a, T0 + 300)["local_links"] == 1
    assert site.feats(c, T0 + 300)["local_links"] == 0  # a is not judged
    site.c.note_judged(a, site.t.sims[a].number)
    assert site.feats(c, T0 + 300)["local_links"] == 1


def test_detector_judges_a_group_early_and_sweeps_old_attaches() -> None:
    det = CallPlaneDetector(CallPlaneSection(rules_only=True, early_min_calls=1),
                            None, alerts=False)
    rows: list[tuple[str, list[float]]] = []
    det.on_scored = lambda imsi, ts, x: rows.append((imsi, x))
    rng = random.Random(3)
    on = T0 + 3600
    ports = [f"46005{i:010d}" for i in range(6)]
    for imsi in ports:
        det.feed(ev(on + rng.uniform(0, 30), "attach", imsi,
                    imei=f"86{rng.randint(0, 10**12):012d}", cell=CELL, auth_ms=70.0))
    events = []
    for k, imsi in enumerate(ports):
        for j in range(3):
            ts = on + 120 + j * 200 + k * 5
            cid = f"{imsi}-{j}"
            events.append(ev(ts, "call_start", imsi, cell=CELL, dir="mo",
                             peer=f"8617{k}{j:07d}", call_id=cid))
            events.append(ev(ts + 150, "call_end", imsi, cell=CELL, dir="mo",
                             peer=f"8617{k}{j:07d}", call_id=cid, duration_s=140.0))
    for e in sorted(events, key=lambda e: e.ts):
        det.feed(e)
        det.tick(e.ts)
    det.flush(on + 2000)
    judged = {imsi for imsi, _ in rows}
    # three calls each, under min_calls: judged only because their cohort is a group
    assert judged and judged <= set(ports)
    assert any(det.tables.sims[p].flags & GROUP for p in ports)
    x = rows[-1][1]
    assert len(x) == len(FEATURES)
    det.cohort.sweep(on + 8 * 3600)
    assert not det.cohort.cells


def test_calls_between_the_cohorts_own_sims_are_not_incoming() -> None:
    """A box's ports calling each other (to look human) stay dialers; a call in from
    outside the cohort makes the callee no dialer."""
    rng = random.Random(4)
    site = Site()
    _background(site, rng, 60, T0, T0 + 7200, 0.3)
    ports = [f"46006{i:010d}" for i in range(6)]
    nums = [f"86131{i:08d}" for i in range(6)]
    on = T0 + 3600
    for imsi in ports:
        site.attach(on + rng.uniform(0, 30), imsi, f"86{rng.randint(0, 10**12):012d}")
    for k, imsi in enumerate(ports):
        for j in range(4):
            site.call(on + 60 + j * 300 + k * 7, imsi, "x", f"8618{k}{j:07d}", dur=120.0,
                      msisdn=nums[k])
    # port 0 calls port 1: the callee's side carries port 0's number
    site.call(on + 1500, ports[0], "x", nums[1], msisdn=nums[0])
    site.call(on + 1501, ports[1], "x", nums[0], direction="mt", msisdn=nums[1])
    f = site.feats(ports[2], on + 1800)
    assert f["cohort_dialers"] == 6 and _tell(f)
    site.call(on + 1600, ports[3], "x", "8613999999999", direction="mt", msisdn=nums[3])
    assert site.feats(ports[2], on + 1800)["cohort_dialers"] == 5


def test_links_on_the_sims_own_cell_are_counted_apart() -> None:
    site = Site()
    a, b, c = "460070000000001", "460070000000002", "460070000000003"
    na, nb, nc = "8613200000001", "8613200000002", "8613200000003"
    site.call(T0, a, "35000000000011", nb, msisdn=na)
    site.call(T0 + 10, a, "35000000000011", nc, msisdn=na)
    site.call(T0 + 20, b, "35000000000029", "8613999000000", msisdn=nb)  # on CELL too
    site.t.add(ev(T0 + 30, "call_start", c, imei="35000000000037", cell="46000-9-9",
                  dir="mo", peer="8613999000001", call_id="c1", msisdn=nc))
    for imsi in (b, c):
        site.c.note_judged(imsi, site.t.sims[imsi].number)
    f = site.feats(a, T0 + 300)
    assert f["local_links"] == 2 and f["link_cell_sims"] == 1
