"""The base-station event simulator: seeded, ordered, valid events and a truth file."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import orjson
import pytest

from drivers.events.decoder import EventDecoder
from edge.records import BaseStationEvent
from simulators.telecom.events import (
    EVASION_LEVELS,
    EVIDENCE_CALLS,
    NORMAL_FAMILIES,
    EventSimConfig,
    EventSimulator,
    write_events,
)


def _gen(**kw: object) -> tuple[list[dict], dict]:
    sim = EventSimulator(EventSimConfig(**kw))  # type: ignore[arg-type]
    return list(sim.events()), sim.truth()


@pytest.fixture(scope="module")
def day() -> tuple[list[dict], dict]:
    return _gen(seed=3, subscribers=1200, simbox_devices=8, ports_per_device=6, hours=8)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    cfg = EventSimConfig(seed=11, subscribers=300, simbox_devices=4, hours=3)
    a, b = io.BytesIO(), io.BytesIO()
    write_events(cfg, a)
    write_events(cfg, b)
    assert a.getvalue() == b.getvalue() and len(a.getvalue()) > 1000
    c = io.BytesIO()
    write_events(EventSimConfig(seed=12, subscribers=300, simbox_devices=4, hours=3), c)
    assert c.getvalue() != a.getvalue()


def test_events_ordered_and_decodable(day: tuple[list[dict], dict]) -> None:
    events, _ = day
    ts = [e["ts"] for e in events]
    assert ts == sorted(ts)
    dec = EventDecoder("sim")
    for i, e in enumerate(events, 1):
        assert isinstance(dec.decode_line(orjson.dumps(e), i), BaseStationEvent)
    assert dec.malformed == 0


def test_truth_covers_personas_levels_and_evidence(day: tuple[list[dict], dict]) -> None:
    events, truth = day
    personas = Counter(t["persona"] for t in truth["sims"].values())
    for p in NORMAL_FAMILIES:
        assert personas[p] > 0, p
    assert {t["family"] for t in truth["sims"].values()} == set(NORMAL_FAMILIES) | set(
        EVASION_LEVELS)
    levels = {t["evasion"] for t in truth["sims"].values() if t["label"] == "simbox"}
    assert levels == set(EVASION_LEVELS)
    assert {d["evasion"] for d in truth["devices"].values()} == set(EVASION_LEVELS)
    # Evidence time = start of the EVIDENCE_CALLS-th outgoing call of that SIM.
    mo: dict[str, list[float]] = {}
    for e in events:
        if e["type"] == "call_start" and e["dir"] == "mo":
            mo.setdefault(e["imsi"], []).append(e["ts"])
    checked = 0
    for imsi, t in truth["sims"].items():
        if t["label"] != "simbox":
            assert t["evidence_ts"] is None
            continue
        calls = sorted(mo.get(imsi, []))
        if len(calls) >= EVIDENCE_CALLS:
            assert t["evidence_ts"] == pytest.approx(calls[EVIDENCE_CALLS - 1], abs=1e-3)
            checked += 1
        else:
            assert t["evidence_ts"] is None
    assert checked >= 10


def test_evasion_shapes(day: tuple[list[dict], dict]) -> None:
    events, truth = day
    sims = truth["sims"]
    imsis_per_imei: dict[str, set[str]] = {}
    mt_by_level: Counter[str] = Counter()
    for e in events:
        t = sims[e["imsi"]]
        if t["label"] != "simbox":
            continue
        imsis_per_imei.setdefault(e["imei"], set()).add(e["imsi"])
        if e["type"] == "call_start" and e["dir"] == "mt":
            mt_by_level[t["evasion"]] += 1
    rot = [i for i, s in imsis_per_imei.items()
           if any(sims[x]["evasion"] in ("rotation", "low_slow") for x in s)]
    assert max(len(imsis_per_imei[i]) for i in rot) >= 2  # SIM-bank rotation
    assert mt_by_level["human"] > 0
    # naive boxes: mostly consecutive IMEIs of one TAC (a port each)
    consecutive = 0
    for dev in truth["devices"].values():
        imeis = sorted(dev["imeis"])
        if dev["evasion"] == "naive" and len(imeis) >= 2 and all(
                i[:8] == imeis[0][:8] for i in imeis) and all(
                int(b[8:14]) - int(a[8:14]) == 1 for a, b in zip(imeis, imeis[1:], strict=False)):
            consecutive += 1
    assert consecutive >= 1


def test_box_sizes_span_one_to_thirty_two_ports() -> None:
    sizes = []
    for seed in range(4):
        sim = EventSimulator(EventSimConfig(seed=seed, subscribers=100, simbox_devices=30,
                                            hours=2))
        sizes += [len(b.port_imeis) for b in sim.boxes]
    assert min(sizes) == 1 and max(sizes) == 32
    assert sum(1 for p in sizes if p > 12) >= len(sizes) // 5


def test_dual_sim_consecutive_imeis(day: tuple[list[dict], dict]) -> None:
    _, truth = day
    imeis = sorted(t["imeis"][0] for t in truth["sims"].values() if t["persona"] == "dual_sim")
    serials = {i[:14] for i in imeis}
    pairs = sum(1 for i in serials if f"{int(i) + 1:014d}" in serials)
    assert pairs >= len(imeis) // 2 - 1


def test_heldout_profile_differs() -> None:
    a, _ = _gen(seed=5, subscribers=300, simbox_devices=2, hours=2, profile="train")
    b, _ = _gen(seed=5, subscribers=300, simbox_devices=2, hours=2, profile="heldout")
    assert a != b
    with pytest.raises(ValueError):
        EventSimulator(EventSimConfig(profile="nope"))


def test_no_constant_box_durations(day: tuple[list[dict], dict]) -> None:
    events, truth = day
    durs = [e["duration_s"] for e in events if e["type"] == "call_end"
            and truth["sims"][e["imsi"]]["label"] == "simbox" and e["duration_s"] > 0]
    assert len(set(durs)) > len(durs) // 3


def test_train_and_heldout_bands_never_share_a_value() -> None:
    """Each continuous parameter range is cut into six bands: train draws from 1, 3,
    5 and heldout from 2, 4, 6."""
    lo, hi = 10.0, 70.0
    tr = EventSimulator(EventSimConfig(seed=1, subscribers=20, simbox_devices=0))
    ho = EventSimulator(EventSimConfig(seed=1, subscribers=20, simbox_devices=0,
                                       profile="heldout"))
    a = [int((tr._band(lo, hi) - lo) // 10) for _ in range(2000)]
    b = [int((ho._band(lo, hi) - lo) // 10) for _ in range(2000)]
    assert set(a) == {0, 2, 4} and set(b) == {1, 3, 5}


def test_simulator_imports_nothing_from_the_detectors() -> None:
    src = (Path(__file__).resolve().parents[3] / "simulators" / "telecom" / "events.py"
           ).read_text("utf-8")
    assert "from edge" not in src and "import edge" not in src


def test_hard_negatives_and_new_box_shapes() -> None:
    events, truth = _gen(seed=11, subscribers=6000, simbox_devices=12, hours=24)
    sims = truth["sims"]
    per_imei: dict[str, set[str]] = {}
    calls: Counter[str] = Counter()
    bypass_durs: list[float] = []
    for e in events:
        fam = sims[e["imsi"]]["family"]
        per_imei.setdefault(e["imei"], set()).add(e["imsi"])
        if e["type"] == "call_start" and e["dir"] == "mo":
            calls[fam] += 1
        if e["type"] == "call_end" and fam == "bypass" and e["duration_s"] > 0:
            bypass_durs.append(e["duration_s"])
    # A phone shop's handset carries many new SIMs, which then move to their own phones.
    shop = [s for s in per_imei.values() if any(sims[x]["family"] == "phone_shop" for x in s)]
    assert max(len(s) for s in shop) >= 5
    assert any(len(t["imeis"]) == 2 for t in sims.values() if t["family"] == "phone_shop")
    # Normal SIMs sharing a phone (SIM swaps): a person's handset carrying 2 SIMs.
    assert any(len(s) >= 2 and all(sims[x]["label"] == "normal" for x in s)
               and not any(sims[x]["family"] == "phone_shop" for x in s)
               for s in per_imei.values())
    assert calls["iot_voice"] > 0 and calls["call_centre"] > 0
    # Bypass boxes carry conversations (minutes), not a box's short calls.
    assert sorted(bypass_durs)[len(bypass_durs) // 2] > 60
    # Some low-and-slow boxes keep one phone IMEI per SIM, whatever port it is in.
    sticky = []
    for seed in range(6):
        sim = EventSimulator(EventSimConfig(seed=seed, subscribers=100, simbox_devices=12,
                                            hours=2))
        sticky += [b for b in sim.boxes if b.level == "low_slow" and b.sticky_imei]
    assert sticky and all(len({s.imei for s in b.pool}) == len(b.pool) for b in sticky)
