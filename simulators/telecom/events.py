"""Seeded base-station event generator (field-formats 1b) with a truth file.

Ordinary subscribers and SIM-boxes share a site; events come out ordered by event
time, streamed hour by hour so memory stays flat however long the simulated period.
The truth file lists every SIM and device with its label and persona.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

# Hourly activity profile of ordinary people (fraction of peak), hour 0..23.
_DIURNAL = [0.05, 0.03, 0.02, 0.02, 0.03, 0.08, 0.25, 0.55, 0.8, 0.9, 0.95, 0.9,
            0.85, 0.9, 0.95, 0.9, 0.9, 0.95, 1.0, 0.95, 0.8, 0.6, 0.35, 0.15]


@dataclass
class EventSimConfig:
    seed: int = 1
    start_ts: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    hours: float = 24.0
    subscribers: int = 2000
    simbox_devices: int = 3
    ports_per_device: int = 8
    mcc_mnc: str = "46000"
    cells: int = 12


@dataclass
class Persona:
    name: str
    label: str  # "normal" or "simbox"
    mo_per_h: float
    mt_per_h: float
    sms_per_h: float
    data_per_h: float
    answer_p: float
    dur_mu: float  # lognormal mu of call duration (s)
    dur_sigma: float
    diurnal: bool = True
    auth_ms: tuple[float, float] = (35.0, 10.0)
    home_cells: int = 3
    distinct_peers: int = 60


NORMAL = Persona("ordinary", "normal", 0.6, 0.6, 0.8, 3.0, 0.8, math.log(90), 0.9)
SIMBOX = Persona("simbox_naive", "simbox", 18.0, 0.0, 0.0, 0.0, 0.55, math.log(35), 0.35,
                 diurnal=False, auth_ms=(320.0, 180.0), home_cells=1, distinct_peers=10**9)


@dataclass
class _Sub:
    imsi: str
    imei: str
    msisdn: str
    persona: Persona
    cells: list[str]
    contacts: list[str] = field(default_factory=list)
    device: str | None = None


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


class EventSimulator:
    def __init__(self, cfg: EventSimConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        r = self.rng
        self.cell_ids = [f"{cfg.mcc_mnc}-{r.randint(1000, 9999)}-{r.randint(1000, 65000)}"
                         for _ in range(cfg.cells)]
        self.subs: list[_Sub] = []
        self._seq = 0
        self._call_no = 0
        n_box_sims = cfg.simbox_devices * cfg.ports_per_device
        for i in range(max(0, cfg.subscribers - n_box_sims)):
            self.subs.append(self._new_sub(NORMAL, self._imei("35", )))
        for d in range(cfg.simbox_devices):
            base_tac = "86" + f"{r.randint(0, 999999):06d}"
            serial = r.randint(0, 999_000)
            for port in range(cfg.ports_per_device):
                body = base_tac + f"{serial + port:06d}"
                imei = body + _luhn_digit(body)
                sub = self._new_sub(SIMBOX, imei)
                sub.device = f"box-{d}"
                sub.cells = [sub.cells[0]]
                self.subs.append(sub)

    def _imei(self, prefix: str) -> str:
        body = prefix + f"{self.rng.randint(0, 10**12 - 1):012d}"
        return body + _luhn_digit(body)

    def _new_sub(self, persona: Persona, imei: str) -> _Sub:
        r = self.rng
        imsi = self.cfg.mcc_mnc + f"{r.randint(0, 10**10 - 1):010d}"
        msisdn = "861" + f"{r.randint(30, 99)}" + f"{r.randint(0, 10**8 - 1):08d}"
        cells = r.sample(self.cell_ids, k=min(persona.home_cells, len(self.cell_ids)))
        contacts = [self._number() for _ in range(r.randint(5, 40))]
        return _Sub(imsi, imei, msisdn, persona, cells, contacts)

    def _number(self) -> str:
        r = self.rng
        return "861" + f"{r.randint(30, 99)}" + f"{r.randint(0, 10**8 - 1):08d}"

    def truth(self) -> dict[str, Any]:
        sims = {s.imsi: {"label": s.persona.label, "persona": s.persona.name,
                         "imei": s.imei, "device": s.device} for s in self.subs}
        devices: dict[str, list[str]] = {}
        for s in self.subs:
            if s.device:
                devices.setdefault(s.device, []).append(s.imsi)
        return {"generator": "edge-sim events", "config": self.cfg.__dict__,
                "sims": sims, "devices": devices}

    # -- event generation
    def events(self) -> Iterator[dict[str, Any]]:
        """Events in ascending ts order."""
        cfg = self.cfg
        heap: list[tuple[float, int, dict[str, Any]]] = []
        hours = int(math.ceil(cfg.hours))
        end_ts = cfg.start_ts + cfg.hours * 3600
        for sub in self.subs:  # everyone attaches at the start
            self._push(heap, cfg.start_ts + self.rng.uniform(0, 300), self._attach(sub))
        for h in range(hours):
            t0 = cfg.start_ts + h * 3600
            hod = int((t0 // 3600) % 24)
            for sub in self.subs:
                self._hour(heap, sub, t0, hod)
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

    def _attach(self, sub: _Sub) -> dict[str, Any]:
        mu, sd = sub.persona.auth_ms
        return {"type": "attach", "imsi": sub.imsi, "imei": sub.imei, "cell": sub.cells[0],
                "auth_ms": round(max(5.0, self.rng.gauss(mu, sd)), 1)}

    def _hour(self, heap: list[Any], sub: _Sub, t0: float, hod: int) -> None:
        r = self.rng
        p = sub.persona
        f = _DIURNAL[hod] if p.diurnal else 1.0
        cell = sub.cells[0] if len(sub.cells) == 1 or r.random() < 0.6 else r.choice(sub.cells)
        for _ in range(_poisson(r, p.mo_per_h * f)):
            peer = r.choice(sub.contacts) if r.random() < 0.8 and p.label == "normal" \
                else self._number()
            self._call(heap, sub, t0 + r.uniform(0, 3600), "mo", peer, cell)
        for _ in range(_poisson(r, p.mt_per_h * f)):
            self._call(heap, sub, t0 + r.uniform(0, 3600), "mt", r.choice(sub.contacts), cell)
        for _ in range(_poisson(r, p.sms_per_h * f)):
            self._push(heap, t0 + r.uniform(0, 3600),
                       {"type": "sms", "imsi": sub.imsi, "imei": sub.imei, "cell": cell,
                        "msisdn": sub.msisdn, "dir": r.choice(("mo", "mt")),
                        "peer": r.choice(sub.contacts)})
        for _ in range(_poisson(r, p.data_per_h * f)):
            self._push(heap, t0 + r.uniform(0, 3600),
                       {"type": "data", "imsi": sub.imsi, "imei": sub.imei, "cell": cell,
                        "bytes": int(r.lognormvariate(12, 1.5))})
        if len(sub.cells) > 1 and r.random() < 0.1 * f:
            tgt = r.choice(sub.cells)
            if tgt != cell:
                self._push(heap, t0 + r.uniform(0, 3600),
                           {"type": "handover", "imsi": sub.imsi, "imei": sub.imei,
                            "cell": cell, "target_cell": tgt})

    def _call(self, heap: list[Any], sub: _Sub, ts: float, direction: str, peer: str,
              cell: str) -> None:
        r = self.rng
        self._call_no += 1
        call_id = f"c{self.cfg.seed}-{self._call_no}"
        common = {"imsi": sub.imsi, "imei": sub.imei, "msisdn": sub.msisdn, "cell": cell,
                  "dir": direction, "peer": peer, "call_id": call_id}
        self._push(heap, ts, {"type": "call_start", **common})
        answered = r.random() < sub.persona.answer_p
        if answered:
            dur = round(max(1.0, r.lognormvariate(sub.persona.dur_mu, sub.persona.dur_sigma)), 1)
            ring = r.uniform(3, 15)
            cause = "normal"
        else:
            dur, ring = 0.0, r.uniform(15, 40)
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
