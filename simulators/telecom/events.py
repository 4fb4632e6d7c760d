"""Seeded base-station event generator (field-formats 1b) with a truth file.

A site's subscribers (ordinary users and hard negatives) and SIM-boxes at four levels
of evasion share the cells; events come out ordered by event time, streamed hour by
hour so memory stays flat however long the simulated period.

Every entity draws its own behaviour parameters from persona ranges, and the
``heldout`` profile draws from *different* ranges than ``train``, so a model trained
on one is evaluated on behaviour it has not seen exactly. No single artefact (IMSI
prefix, exact duration, a fixed rate) separates boxes from people.

Personas (label ``normal``): ordinary, call_centre, sales_rep, taxi, elderly (calls
out only), iot (data module with a module TAC), dual_sim (two SIMs on two consecutive
IMEIs), roamer (foreign IMSI, slow authentication).
SIM-boxes (label ``simbox``), evasion levels:
- ``naive``: one SIM per port, consecutive module IMEIs, calls around the clock;
- ``rotation``: a SIM bank rotates a larger pool of SIMs through the ports, whose
  IMEIs are rewritten to phone TACs; slow, variable authentication at every insertion;
- ``human``: sticky rewritten IMEI per SIM, day-time pattern, boxes call each other,
  some SMS, data and incoming calls;
- ``low_slow``: rotation plus a per-SIM call rate under per-SIM thresholds.

The truth file lists every SIM (label, persona, evasion, device, IMEIs, the time from
which the evidence is there) and every device. Evidence time for a box SIM is defined
as the start of its ``EVIDENCE_CALLS``-th outgoing call: before that, no detector
working per SIM can tell it from a person having a busy hour.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from edge.telecom.callplane.tacs import MODULE_TACS

EVIDENCE_CALLS = 10
EVASION_LEVELS = ("naive", "rotation", "human", "low_slow")

# Hourly activity profile of ordinary people (fraction of peak), hour 0..23 (local).
_DIURNAL = [0.05, 0.03, 0.02, 0.02, 0.03, 0.08, 0.25, 0.55, 0.8, 0.9, 0.95, 0.9,
            0.85, 0.9, 0.95, 0.9, 0.9, 0.95, 1.0, 0.95, 0.8, 0.6, 0.35, 0.15]
_ROAMER_MCCMNC = ("45400", "45406", "31026", "23415", "50212", "52001", "44010", "45005")
_LOCAL_MCCMNC = ("46000", "46001", "46002", "46011")

# Persona parameter ranges per profile: name -> (lo, hi). Held-out ranges overlap the
# training ones only in part.
_R: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    "train": {
        "ordinary": {"mo": (0.2, 1.6), "mt": (0.2, 1.4), "sms": (0.1, 1.5), "data": (0.5, 6),
                     "ans": (0.65, 0.92), "dur": (40, 150), "dsig": (0.7, 1.2)},
        "call_centre": {"mo": (6, 22), "mt": (0.2, 2.0), "sms": (0.0, 0.3), "data": (0, 1),
                        "ans": (0.3, 0.65), "dur": (45, 160), "dsig": (0.5, 1.0)},
        "sales_rep": {"mo": (2, 7), "mt": (0.8, 3), "sms": (0.2, 1.5), "data": (1, 6),
                      "ans": (0.5, 0.85), "dur": (60, 240), "dsig": (0.6, 1.1)},
        "taxi": {"mo": (0.8, 3), "mt": (1.5, 5), "sms": (0.1, 1), "data": (3, 10),
                 "ans": (0.7, 0.95), "dur": (20, 70), "dsig": (0.5, 0.9)},
        "elderly": {"mo": (0.1, 0.8), "mt": (0.0, 0.0), "sms": (0, 0), "data": (0, 0),
                    "ans": (0.55, 0.9), "dur": (60, 300), "dsig": (0.6, 1.1)},
        "naive": {"mo": (8, 26), "ans": (0.25, 0.6), "dur": (18, 60), "dsig": (0.3, 0.8),
                  "auth": (40, 220)},
        "rotation": {"mo": (4, 14), "ans": (0.25, 0.6), "dur": (18, 70), "dsig": (0.3, 0.9),
                     "auth": (300, 1800)},
        "human": {"mo": (2.5, 8), "ans": (0.35, 0.7), "dur": (25, 100), "dsig": (0.5, 1.0),
                  "auth": (250, 1500)},
        "low_slow": {"mo": (0.8, 2.5), "ans": (0.3, 0.65), "dur": (20, 80),
                     "dsig": (0.4, 1.0), "auth": (300, 1800)},
    },
    "heldout": {
        "ordinary": {"mo": (0.15, 2.0), "mt": (0.15, 1.6), "sms": (0.05, 2.0), "data": (0.3, 8),
                     "ans": (0.6, 0.95), "dur": (30, 180), "dsig": (0.6, 1.3)},
        "call_centre": {"mo": (8, 28), "mt": (0.1, 1.5), "sms": (0.0, 0.2), "data": (0, 0.6),
                        "ans": (0.25, 0.6), "dur": (35, 130), "dsig": (0.4, 0.9)},
        "sales_rep": {"mo": (3, 9), "mt": (0.5, 2.5), "sms": (0.1, 1.2), "data": (0.5, 5),
                      "ans": (0.45, 0.8), "dur": (50, 200), "dsig": (0.5, 1.0)},
        "taxi": {"mo": (1, 4), "mt": (1, 4), "sms": (0.05, 0.8), "data": (2, 12),
                 "ans": (0.65, 0.95), "dur": (15, 60), "dsig": (0.4, 0.9)},
        "elderly": {"mo": (0.1, 1.0), "mt": (0.0, 0.0), "sms": (0, 0), "data": (0, 0),
                    "ans": (0.5, 0.9), "dur": (50, 350), "dsig": (0.5, 1.2)},
        "naive": {"mo": (6, 32), "ans": (0.2, 0.65), "dur": (15, 75), "dsig": (0.25, 0.9),
                  "auth": (35, 260)},
        "rotation": {"mo": (3, 16), "ans": (0.2, 0.65), "dur": (15, 85), "dsig": (0.3, 1.0),
                     "auth": (250, 2200)},
        "human": {"mo": (2, 9), "ans": (0.3, 0.75), "dur": (20, 120), "dsig": (0.4, 1.1),
                  "auth": (200, 1800)},
        "low_slow": {"mo": (0.6, 2.2), "ans": (0.25, 0.7), "dur": (15, 90),
                     "dsig": (0.4, 1.1), "auth": (250, 2200)},
    },
}

# Share of the non-box subscribers per persona (the rest are ordinary); dual_sim
# counts SIMs (two per person).
_MIX = {"call_centre": 0.015, "sales_rep": 0.02, "taxi": 0.02, "elderly": 0.03,
        "iot": 0.03, "dual_sim": 0.02, "roamer": 0.015}


@dataclass
class EventSimConfig:
    seed: int = 1
    start_ts: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    hours: float = 24.0
    subscribers: int = 2000
    simbox_devices: int = 3
    """Boxes, spread round-robin over ``evasion`` levels."""
    ports_per_device: int = 8
    """Mean ports per box (each box draws 0.5x..1.5x, at least 2)."""
    evasion: tuple[str, ...] = EVASION_LEVELS
    profile: str = "train"
    """Parameter ranges: ``train`` or ``heldout``."""
    mcc_mnc: str = "46000"
    cells: int = 12
    utc_offset_h: int = 8
    """Local time of the site (activity profiles follow local hours)."""


@dataclass
class _Behav:
    mo: float = 0.0
    mt: float = 0.0
    sms: float = 0.0
    data: float = 0.0
    ans: float = 0.8
    dur_mu: float = 4.0
    dur_sig: float = 1.0
    hours: str = "diurnal"  # diurnal | work | flat | day
    p_contact: float = 0.8
    handover: float = 0.05
    auth_mu: float = 35.0
    auth_sd: float = 8.0
    reattach: float = 0.05
    peer_prefixes: list[str] | None = None


@dataclass
class _Sub:
    imsi: str
    imei: str
    msisdn: str
    persona: str
    label: str
    b: _Behav
    cells: list[str]
    contacts: list[str] = field(default_factory=list)
    device: str | None = None
    evasion: str | None = None
    imeis: set[str] = field(default_factory=set)
    mo_count: int = 0
    evidence_ts: float | None = None
    first_ts: float | None = None
    first_mo_ts: float | None = None
    start_h: int = 0


@dataclass
class _Box:
    name: str
    level: str
    cell: str
    port_imeis: list[str]
    pool: list[_Sub]
    start_h: int
    rotate: bool
    dwell: list[int] = field(default_factory=list)
    in_port: list[_Sub | None] = field(default_factory=list)
    queue: list[_Sub] = field(default_factory=list)


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def _imei_from(tac: str, serial: int) -> str:
    body = tac + f"{serial % 1_000_000:06d}"
    return body + _luhn_digit(body)


class EventSimulator:
    """Builds the site from the config; :meth:`events` streams its events."""

    def __init__(self, cfg: EventSimConfig) -> None:
        if cfg.profile not in _R:
            raise ValueError(f"unknown profile {cfg.profile!r}")
        self.cfg = cfg
        self.ranges = _R[cfg.profile]
        self.rng = random.Random(cfg.seed)
        r = self.rng
        self.auth_missing = r.uniform(0.0, 0.5)  # share of attaches without auth_ms
        self.cell_ids = [f"{cfg.mcc_mnc}-{r.randint(1000, 9999)}-{r.randint(1000, 65000)}"
                         for _ in range(cfg.cells)]
        # A world of phone TACs (shared by people and by boxes that rewrite IMEIs).
        self.phone_tacs = [f"{r.choice(('35', '86', '01'))}{r.randint(0, 999999):06d}"
                           for _ in range(300)]
        self.module_tacs = sorted(MODULE_TACS)
        self.region_prefixes = [f"861{r.randint(30, 99)}{r.randint(0, 99):02d}"
                                for _ in range(400)]
        self.subs: list[_Sub] = []
        self.boxes: list[_Box] = []
        self._seq = 0
        self._call_no = 0
        self._build_people()
        self._build_boxes()
        self._by_msisdn = {s.msisdn: s for s in self.subs if s.label == "simbox"}

    # -- building the site
    def _u(self, persona: str, key: str) -> float:
        lo, hi = self.ranges[persona][key]
        return self.rng.uniform(lo, hi)

    def _phone_imei(self) -> str:
        return _imei_from(self.rng.choice(self.phone_tacs), self.rng.randint(0, 999_999))

    def _imsi(self, mccmnc: str | None = None) -> str:
        r = self.rng
        mm = mccmnc or r.choice(_LOCAL_MCCMNC)
        return mm + f"{r.randint(0, 10 ** (15 - len(mm)) - 1):0{15 - len(mm)}d}"

    def _number(self, prefix: str | None = None) -> str:
        r = self.rng
        p = prefix or r.choice(self.region_prefixes)
        return p + f"{r.randint(0, 10 ** (13 - len(p)) - 1):0{13 - len(p)}d}"

    def _person(self, persona: str, imei: str | None = None,
                mccmnc: str | None = None) -> _Sub:
        r = self.rng
        b = _Behav()
        key = "ordinary" if persona in ("dual_sim", "roamer") else persona
        if persona != "iot":
            for k in ("mo", "mt", "sms", "data", "ans"):
                setattr(b, k, self._u(key, k))
            b.dur_mu = math.log(self._u(key, "dur"))
            b.dur_sig = self._u(key, "dsig")
        b.auth_mu = r.uniform(18, 130)
        b.auth_sd = b.auth_mu * r.uniform(0.1, 0.5)
        b.reattach = r.uniform(0.02, 0.2)
        n_cells = r.randint(1, 4)
        if persona == "call_centre":
            b.hours, b.p_contact, n_cells = "work", 0.05, 1
            b.peer_prefixes = r.sample(self.region_prefixes, r.randint(1, 12))
        elif persona == "sales_rep":
            b.hours, b.p_contact, n_cells = "day", r.uniform(0.2, 0.6), r.randint(4, 10)
            b.handover = r.uniform(0.3, 1.5)
        elif persona == "taxi":
            b.hours, b.p_contact, n_cells = r.choice(("day", "flat")), 0.5, r.randint(6, 12)
            b.handover = r.uniform(0.8, 3.0)
        elif persona == "elderly":
            b.hours, b.p_contact, n_cells = "day", r.uniform(0.85, 1.0), 1
            b.handover = 0.0
        elif persona == "iot":
            b.hours, n_cells = "flat", 1
            b.data = r.uniform(0.5, 12)
            b.sms = r.uniform(0.0, 0.1)
            b.auth_mu = r.uniform(40, 140)
            b.auth_sd = b.auth_mu * r.uniform(0.1, 0.3)
        elif persona == "roamer":
            b.auth_mu = r.uniform(200, 900)
            b.auth_sd = b.auth_mu * r.uniform(0.15, 0.5)
            b.mo *= r.uniform(0.3, 1.0)
            b.p_contact = r.uniform(0.5, 0.9)
        else:
            b.p_contact = r.uniform(0.6, 0.95)
            b.handover = r.uniform(0.0, 0.4)
        cells = r.sample(self.cell_ids, k=min(n_cells, len(self.cell_ids)))
        if imei is None:
            tac = r.choice(self.module_tacs) if persona == "iot" else r.choice(self.phone_tacs)
            imei = _imei_from(tac, r.randint(0, 999_999))
        n_contacts = r.randint(2, 8) if persona == "elderly" else r.randint(5, 60)
        contacts = [self._number() for _ in range(n_contacts)]
        return _Sub(self._imsi(mccmnc), imei, self._number("861" + str(r.randint(30, 99))),
                    persona, "normal", b, cells, contacts, imeis={imei})

    def _build_people(self) -> None:
        cfg, r = self.cfg, self.rng
        n = max(0, cfg.subscribers - self._box_sim_budget())
        counts = {p: int(round(n * share)) for p, share in _MIX.items()}
        people: list[_Sub] = []
        for persona, k in counts.items():
            if persona == "dual_sim":
                for _ in range(k // 2):
                    tac, serial = r.choice(self.phone_tacs), r.randint(0, 999_990)
                    a = self._person("dual_sim", _imei_from(tac, serial))
                    b = self._person("dual_sim", _imei_from(tac, serial + 1))
                    b.cells = list(a.cells)
                    b.b.mo *= r.uniform(0.1, 0.8)  # the second SIM is the quieter one
                    people += [a, b]
            elif persona == "roamer":
                people += [self._person("roamer", mccmnc=r.choice(_ROAMER_MCCMNC))
                           for _ in range(k)]
            else:
                people += [self._person(persona) for _ in range(k)]
        while len(people) < n:
            people.append(self._person("ordinary"))
        self.subs.extend(people[:n] if len(people) > n else people)

    def _box_sim_budget(self) -> int:
        # Rough count of box SIMs, so ``subscribers`` stays close to the total.
        return self.cfg.simbox_devices * self.cfg.ports_per_device * 2

    def _build_boxes(self) -> None:
        cfg, r = self.cfg, self.rng
        hours = max(1, int(math.ceil(cfg.hours)))
        for d in range(cfg.simbox_devices):
            level = cfg.evasion[d % len(cfg.evasion)]
            rg = self.ranges[level]
            ports = max(2, int(round(cfg.ports_per_device * r.uniform(0.5, 1.5))))
            cell = r.choice(self.cell_ids)
            if level == "naive":
                tac, serial = r.choice(self.module_tacs), r.randint(0, 999_000)
                port_imeis = [_imei_from(tac, serial + i) for i in range(ports)]
            else:  # rewritten to phone TACs, not consecutive
                port_imeis = [self._phone_imei() for _ in range(ports)]
            rotate = level in ("rotation", "low_slow")
            pool_n = int(round(ports * r.uniform(1.5, 3.5))) if rotate else ports
            hours_on = "flat" if level in ("naive", "rotation") else (
                "day" if level == "human" else r.choice(("flat", "day", "diurnal")))
            pool: list[_Sub] = []
            auth_mu = r.uniform(*rg["auth"])
            for i in range(pool_n):
                b = _Behav(mo=r.uniform(*rg["mo"]), ans=r.uniform(*rg["ans"]),
                           dur_mu=math.log(r.uniform(*rg["dur"])),
                           dur_sig=r.uniform(*rg["dsig"]), hours=hours_on, p_contact=0.0,
                           handover=0.0, auth_mu=auth_mu * r.uniform(0.7, 1.3),
                           auth_sd=auth_mu * r.uniform(0.2, 0.7), reattach=r.uniform(0.05, 0.4))
                if level == "human":
                    b.mt = r.uniform(0.2, 1.0)  # box-to-box calls arrive as mt
                    b.sms = r.uniform(0.05, 0.4)
                    b.data = r.uniform(0.0, 0.6)
                    b.p_contact = r.uniform(0.1, 0.3)  # calls to sibling SIMs
                elif level == "low_slow":
                    b.mt = r.uniform(0.0, 0.15)
                imei = port_imeis[i] if i < ports and not rotate else (
                    self._phone_imei() if level == "human" else port_imeis[i % ports])
                s = _Sub(self._imsi(), imei, self._number("861" + str(r.randint(30, 99))),
                         f"simbox_{level}", "simbox", b, [cell], [], device=f"box-{d}",
                         evasion=level)
                pool.append(s)
            start_h = r.randint(0, max(0, min(hours - 1, int(hours * 0.3))))
            box = _Box(f"box-{d}", level, cell, port_imeis, pool, start_h, rotate,
                       dwell=[0] * ports, in_port=[None] * ports, queue=list(pool))
            r.shuffle(box.queue)
            self.boxes.append(box)
            self.subs.extend(pool)
        # Human boxes call their sibling SIMs: those are their "contacts".
        for box in self.boxes:
            if box.level == "human":
                nums = [s.msisdn for s in box.pool]
                for s in box.pool:
                    s.contacts = [n for n in nums if n != s.msisdn] or [self._number()]

    # -- truth
    def truth(self) -> dict[str, Any]:
        sims = {}
        for s in self.subs:
            sims[s.imsi] = {"label": s.label, "persona": s.persona, "evasion": s.evasion,
                            "device": s.device, "imeis": sorted(s.imeis),
                            "first_ts": s.first_ts, "first_mo_ts": s.first_mo_ts,
                            "evidence_ts": s.evidence_ts}
        devices = {}
        for box in self.boxes:
            ev = [s.evidence_ts for s in box.pool if s.evidence_ts is not None]
            imeis = sorted({i for s in box.pool for i in s.imeis})
            devices[box.name] = {"evasion": box.level, "imsis": [s.imsi for s in box.pool],
                                 "imeis": imeis, "evidence_ts": min(ev) if ev else None}
        cfg = asdict(self.cfg)
        cfg["evasion"] = list(self.cfg.evasion)
        return {"generator": "edge-sim events", "evidence_calls": EVIDENCE_CALLS,
                "config": cfg, "sims": sims, "devices": devices}

    # -- event generation
    def events(self) -> Iterator[dict[str, Any]]:
        """Events in ascending ts order."""
        cfg, r = self.cfg, self.rng
        heap: list[tuple[float, int, dict[str, Any]]] = []
        hours = int(math.ceil(cfg.hours))
        end_ts = cfg.start_ts + cfg.hours * 3600
        people = [s for s in self.subs if s.label == "normal"]
        for sub in people:  # phones are on at the start
            self._attach(heap, sub, cfg.start_ts + r.uniform(0, 600))
        for h in range(hours):
            t0 = cfg.start_ts + h * 3600
            hod = int(((t0 // 3600) + cfg.utc_offset_h) % 24)
            for sub in people:
                self._hour(heap, sub, t0, hod, t0)
            for box in self.boxes:
                self._box_hour(heap, box, h, t0, hod)
            limit = min(t0 + 3600, end_ts)
            while heap and heap[0][0] < limit:
                yield heapq.heappop(heap)[2]
        while heap:
            ts, _, ev = heapq.heappop(heap)
            if ts <= end_ts + 3600:
                yield ev

    def _push(self, heap: list[Any], ts: float, ev: dict[str, Any]) -> None:
        ev["ts"] = round(ts, 3)
        self._seq += 1
        heapq.heappush(heap, (ev["ts"], self._seq, ev))

    def _attach(self, heap: list[Any], sub: _Sub, ts: float) -> None:
        b = sub.b
        r = self.rng
        auth = max(5.0, r.gauss(b.auth_mu, b.auth_sd))
        if r.random() < 0.04:  # congestion, a slow HSS: anyone's attach can be slow
            auth *= r.uniform(3, 12)
        if sub.first_ts is None or ts < sub.first_ts:
            sub.first_ts = round(ts, 3)
        ev: dict[str, Any] = {"type": "attach", "imsi": sub.imsi, "imei": sub.imei,
                              "cell": sub.cells[0]}
        # Not every base station reports the authentication round trip.
        if r.random() >= self.auth_missing:
            ev["auth_ms"] = round(auth, 1)
        self._push(heap, ts, ev)

    def _box_hour(self, heap: list[Any], box: _Box, h: int, t0: float, hod: int) -> None:
        r = self.rng
        if h < box.start_h:
            return
        for p in range(len(box.port_imeis)):
            cur = box.in_port[p]
            if cur is None or (box.rotate and box.dwell[p] <= 0):
                if cur is not None:
                    box.queue.append(cur)
                nxt = box.queue.pop(0)
                box.in_port[p] = nxt
                box.dwell[p] = r.randint(1, 3)
                if box.rotate:
                    nxt.imei = box.port_imeis[p]
                nxt.imeis.add(nxt.imei)
                t_in = t0 + r.uniform(0, 300)
                self._attach(heap, nxt, t_in)
                self._hour(heap, nxt, t0, hod, t_in + 5)
            else:
                if r.random() < cur.b.reattach:
                    self._attach(heap, cur, t0 + r.uniform(0, 3600))
                self._hour(heap, cur, t0, hod, t0)
            box.dwell[p] -= 1

    def _factor(self, hours: str, hod: int) -> float:
        if hours == "flat":
            return 1.0
        if hours == "work":
            return 1.0 if 9 <= hod < 18 else 0.03
        if hours == "day":
            return 1.0 if 8 <= hod < 21 else 0.04
        return _DIURNAL[hod]

    def _hour(self, heap: list[Any], sub: _Sub, t0: float, hod: int, t_from: float) -> None:
        r = self.rng
        b = sub.b
        f = self._factor(b.hours, hod)
        span = t0 + 3600 - t_from
        if span <= 0:
            return
        cell = sub.cells[0] if len(sub.cells) == 1 or r.random() < 0.6 else r.choice(sub.cells)
        # People on the move (sales reps, taxis) change cells within the hour.
        mobile = len(sub.cells) > 2 and b.handover >= 0.3
        cells = sub.cells
        if sub.label == "normal" and r.random() < b.reattach * f:
            self._attach(heap, sub, t_from + r.uniform(0, span))
        mo_times = sorted(t_from + r.uniform(0, span) for _ in range(_poisson(r, b.mo * f)))
        box = sub.label == "simbox"
        for ts in mo_times:
            if sub.contacts and r.random() < b.p_contact:
                peer = r.choice(sub.contacts)
            elif b.peer_prefixes:
                peer = self._number(r.choice(b.peer_prefixes))
            else:
                peer = self._number()
            sub.mo_count += 1
            if sub.mo_count == 1:
                sub.first_mo_ts = round(ts, 3)
            if box and sub.mo_count == EVIDENCE_CALLS:
                sub.evidence_ts = round(ts, 3)
            self._call(heap, sub, ts, "mo", peer, r.choice(cells) if mobile else cell)
            sibling = self._by_msisdn.get(peer) if box else None
            if sibling is not None:  # box-to-box call: the sibling receives it
                self._call(heap, sibling, ts + r.uniform(0.5, 2.0), "mt", sub.msisdn,
                           sibling.cells[0])
        if not box or sub.evasion != "human":  # human boxes' mt come from siblings
            for _ in range(_poisson(r, b.mt * f)):
                src = r.choice(sub.contacts) if sub.contacts else self._number()
                self._call(heap, sub, t_from + r.uniform(0, span), "mt", src,
                           r.choice(cells) if mobile else cell)
        for _ in range(_poisson(r, b.sms * f)):
            peer = r.choice(sub.contacts) if sub.contacts else self._number()
            ev = {"type": "sms", "imsi": sub.imsi, "imei": sub.imei,
                  "cell": r.choice(cells) if mobile else cell,
                  "dir": r.choice(("mo", "mt")), "peer": peer}
            if r.random() < 0.9:
                ev["msisdn"] = sub.msisdn
            self._push(heap, t_from + r.uniform(0, span), ev)
        for _ in range(_poisson(r, b.data * f)):
            self._push(heap, t_from + r.uniform(0, span),
                       {"type": "data", "imsi": sub.imsi, "imei": sub.imei,
                        "cell": r.choice(cells) if mobile else cell,
                        "bytes": int(r.lognormvariate(12, 1.5))})
        n_ho = _poisson(r, b.handover * f) if mobile else int(
            len(cells) > 1 and r.random() < min(1.0, b.handover * f))
        for _ in range(n_ho):
            src, tgt = r.sample(cells, 2)
            self._push(heap, t_from + r.uniform(0, span),
                       {"type": "handover", "imsi": sub.imsi, "imei": sub.imei,
                        "cell": src, "target_cell": tgt})

    def _call(self, heap: list[Any], sub: _Sub, ts: float, direction: str, peer: str,
              cell: str) -> None:
        r = self.rng
        self._call_no += 1
        if sub.first_ts is None:
            sub.first_ts = round(ts, 3)
        call_id = f"c{self.cfg.seed}-{self._call_no}"
        common = {"imsi": sub.imsi, "imei": sub.imei, "cell": cell, "dir": direction,
                  "peer": peer, "call_id": call_id}
        if r.random() < 0.9:
            common["msisdn"] = sub.msisdn
        self._push(heap, ts, {"type": "call_start", **common})
        b = sub.b
        answered = r.random() < b.ans
        if answered:
            dur = round(max(1.0, r.lognormvariate(b.dur_mu, b.dur_sig)), 1)
            ring = r.uniform(3, 15)
            cause = "normal"
        else:
            dur, ring = 0.0, r.uniform(12, 45)
            cause = r.choice(("no_answer", "busy", "no_answer", "failed"))
        self._push(heap, ts + ring + dur,
                   {"type": "call_end", **common, "duration_s": dur, "cause": cause})


def _poisson(r: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, int(round(r.gauss(lam, math.sqrt(lam)))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= r.random()
        if p <= limit:
            return k
        k += 1


def write_events(cfg: EventSimConfig, out: Path | IO[bytes], truth: Path | None = None,
                 max_events: int | None = None) -> int:
    """Write events as JSONL (and the truth file as JSON); returns the event count."""
    sim = EventSimulator(cfg)
    n = 0
    fh: IO[bytes] = open(out, "wb") if isinstance(out, Path) else out  # noqa: SIM115
    try:
        dumps = orjson.dumps
        buf: list[bytes] = []
        for ev in sim.events():
            buf.append(dumps(ev))
            n += 1
            if len(buf) >= 8192:
                fh.write(b"\n".join(buf) + b"\n")
                buf.clear()
            if max_events is not None and n >= max_events:
                break
        if buf:
            fh.write(b"\n".join(buf) + b"\n")
    finally:
        if isinstance(out, Path):
            fh.close()
    if truth is not None:
        truth.write_bytes(orjson.dumps(sim.truth(), option=orjson.OPT_INDENT_2))
    return n
