"""Blind base-station event generator: `python -m simulators.blind.events`.

Writes ``events.jsonl`` (field-formats.md section 1b: one JSON object a line, ordered by
``ts``) and ``truth.json`` (per IMSI: class ``simbox``/``normal``, family, device) for one
site and a window of hours. Written only from docs/field-formats.md 1b, docs/domain.md,
the seeds and public knowledge (see README.md beside this file); it shares no code and
no parameters with the project's own simulator.

Everything is drawn from one seed: the site (operator, cells), the firmware's quirks
(number formats, IMEISV, key order, duplicates, unknown types and fields, whether
``call_end`` repeats ``dir``/``peer``) and each population's parameters, so two seeds
differ in more than noise.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DAY = 86400.0
LOCAL_OFFSET_S = 8 * 3600  # the site runs on China Standard Time

OPERATORS: dict[str, dict[str, Any]] = {
    "cmcc": {
        "mccmnc": "46000",
        "imsi_mnc": ["00", "02", "07", "08"],
        "prefixes": ["134", "135", "136", "137", "138", "139", "147", "150", "151", "152",
                     "157", "158", "159", "178", "182", "183", "184", "187", "188", "198"],
        "iot": ["1064", "1440"],
    },
    "unicom": {
        "mccmnc": "46001",
        "imsi_mnc": ["01", "06", "09"],
        "prefixes": ["130", "131", "132", "155", "156", "166", "175", "176", "185", "186"],
        "iot": ["1064", "1460"],
    },
    "telecom": {
        "mccmnc": "46011",
        "imsi_mnc": ["03", "11"],
        "prefixes": ["133", "153", "173", "177", "180", "181", "189", "191", "199"],
        "iot": ["1064", "1410"],
    },
}
NATIONAL_PREFIXES = sorted({p for o in OPERATORS.values() for p in o["prefixes"]})
MVNO_PREFIXES = ["170", "171", "162", "165", "167"]
AREA_CODES = ["10", "21", "22", "23", "20", "755", "571", "27", "28", "29", "25", "24",
              "512", "769", "757", "532", "351", "371", "731", "591"]
SERVICE_NUMBERS = ["10086", "10010", "10000", "95588", "95533", "95555", "12345", "95599",
                   "95566", "12306", "95511", "114"]
# (MCC, MNC, country code, national significant number length) of inbound roamers
ROAMING = [("454", "00", "852", 8), ("454", "06", "852", 8), ("455", "00", "853", 8),
           ("466", "92", "886", 9), ("452", "04", "84", 9), ("520", "03", "66", 9),
           ("510", "10", "62", 10), ("515", "02", "63", 10), ("502", "12", "60", 9),
           ("234", "15", "44", 10), ("262", "01", "49", 11), ("310", "260", "1", 10),
           ("440", "10", "81", 10), ("450", "05", "82", 10), ("250", "01", "7", 10)]

BOX_FAMILIES = ["naive", "simbank", "human", "low_slow", "mobile", "wangiri", "bypass"]
NORMAL_FAMILIES = ["ordinary", "call_centre", "sales", "taxi", "courier", "elderly", "iot",
                   "fixed_wireless", "dual_sim", "roamer", "shop_activation"]


# ---------------------------------------------------------------- small helpers

def luhn_digit(body: str) -> str:
    """The Luhn check digit of a 14-digit IMEI body."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def lognorm(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def zipf_pick(rng: random.Random, items: list[str], s: float) -> str:
    # inverse-power draw without building weights: rank = floor(u^(-1/(s-1))) truncated
    n = len(items)
    if n == 1:
        return items[0]
    while True:
        r = int(rng.paretovariate(max(s - 1.0, 0.15)))
        if 1 <= r <= n:
            return items[r - 1]


def hour_profile(kind: str, rng: random.Random) -> list[float]:
    """24 weights by local hour, jittered per person."""
    if kind == "human":
        base = [0.15, 0.08, 0.04, 0.03, 0.03, 0.06, 0.2, 0.55, 0.9, 1.0, 1.0, 1.05, 1.0,
                0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2, 1.15, 1.0, 0.7, 0.35]
    elif kind == "elderly":
        base = [0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.5, 1.0, 1.2, 1.2, 1.0, 0.8, 0.5, 0.4, 0.8,
                1.0, 1.0, 0.9, 0.8, 0.9, 0.7, 0.3, 0.05, 0.0]
    elif kind == "work":
        base = [0.0] * 7 + [0.1, 0.7, 1.0, 1.0, 0.9, 0.3, 0.5, 1.0, 1.0, 1.0, 0.8, 0.4,
                            0.2, 0.1, 0.05, 0.0, 0.0]
    elif kind == "night":  # night-shift taxi
        base = [1.0, 0.9, 0.7, 0.5, 0.4, 0.5, 0.6, 0.5, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.1, 0.6, 0.9, 1.0, 1.0, 1.0, 1.0]
    elif kind == "flat":
        base = [1.0] * 24
    elif kind == "evening":  # international callers' relatives, bypass traffic
        base = [0.5, 0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.4, 0.6, 0.7, 0.7, 0.7, 0.8, 0.8, 0.8,
                0.8, 0.9, 1.0, 1.2, 1.4, 1.5, 1.4, 1.1, 0.8]
    else:
        raise ValueError(kind)
    return [max(0.0, w * rng.uniform(0.7, 1.3)) for w in base]


def cumulative(weights: list[float]) -> list[float]:
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc)
    return out


# ---------------------------------------------------------------- the feed

@dataclass
class Quirks:
    """What this site's monitoring firmware does with the format's freedoms."""

    ts_decimals: int
    ts_jitter_s: float
    p_msisdn_known: float
    msisdn_on: str  # all | attach_calls | random
    p_msisdn_event: float
    call_end_has_peer: bool
    call_end_has_dir: bool
    p_plus86_mt: float
    p_86_mt: float
    p_plus86_mo: float
    intl_prefix: str
    msisdn_style: str  # bare | 86 | +86
    p_imeisv: float
    p_imei14: float
    dup_share: float
    unknown_type_share: float
    extra_fields: list[str]
    p_extra: float
    key_order: list[str]
    compact: bool
    dur_decimals: int
    auth_decimals: int
    phone_auth_ms: float
    phone_auth_sigma: float
    drop_share: float
    call_id_style: str
    late_share: float
    crlf: bool

    @staticmethod
    def draw(rng: random.Random, late_share: float) -> Quirks:
        keys = ["ts", "type", "imsi", "imei", "msisdn", "cell", "dir", "peer", "call_id",
                "duration_s", "cause", "auth_ms", "bytes", "target_cell"]
        if rng.random() < 0.6:
            rest = keys[3:]
            rng.shuffle(rest)
            keys = keys[:3] + rest
        else:
            rng.shuffle(keys)
        extras = [k for k in ("rat", "rssi_dbm", "seq", "fw", "ta", "lac_tac") if rng.random() < 0.4]
        return Quirks(
            ts_decimals=rng.choice([0, 2, 3, 3, 3, 6]),
            ts_jitter_s=rng.uniform(0.0, 0.4),
            p_msisdn_known=rng.uniform(0.55, 1.0),
            msisdn_on=rng.choice(["all", "attach_calls", "random"]),
            p_msisdn_event=rng.uniform(0.4, 0.95),
            call_end_has_peer=rng.random() < 0.6,
            call_end_has_dir=rng.random() < 0.6,
            p_plus86_mt=rng.uniform(0.0, 0.9),
            p_86_mt=rng.uniform(0.0, 0.2),
            p_plus86_mo=rng.uniform(0.0, 0.3),
            intl_prefix=rng.choice(["+", "00"]),
            msisdn_style=rng.choice(["bare", "bare", "86", "+86"]),
            p_imeisv=rng.uniform(0.0, 0.5),
            p_imei14=rng.uniform(0.0, 0.1),
            dup_share=rng.uniform(0.0, 0.003),
            unknown_type_share=rng.uniform(0.0, 0.006),
            extra_fields=extras,
            p_extra=rng.uniform(0.05, 0.5),
            key_order=keys,
            compact=rng.random() < 0.5,
            dur_decimals=rng.choice([0, 0, 1, 3]),
            auth_decimals=rng.choice([0, 1, 2]),
            phone_auth_ms=rng.uniform(55.0, 260.0),
            phone_auth_sigma=rng.uniform(0.2, 0.5),
            drop_share=rng.uniform(0.0, 0.0015),
            call_id_style=rng.choice(["hex", "cell_counter", "int", "uuid"]),
            late_share=late_share,
            crlf=rng.random() < 0.1,
        )


@dataclass
class Sim:
    imsi: str
    msisdn: str  # national digits (or full international for roamers)
    klass: str  # simbox | normal
    family: str
    device: str
    group: str
    msisdn_known: bool = True
    country: str = "86"
    n_events: int = 0
    n_mo_calls: int = 0
    first_mo_ts: float | None = None
    first_ts: float | None = None
    days: set[int] = field(default_factory=set)
    imei_now: str = ""  # where intra-site calls to this SIM land
    cell_now: str = ""
    calls_by_day: dict[int, int] = field(default_factory=dict)  # a box's own per-SIM cap


class Feed:
    """Collects lines keyed by arrival time and keeps per-SIM truth statistics."""

    def __init__(self, q: Quirks, rng: random.Random, t0: float, t1: float, cells: list[str]):
        self.q, self.rng, self.t0, self.t1 = q, rng, t0, t1
        self.rows: list[tuple[float, int, str]] = []
        self.seq = 0
        self.call_counter = rng.randrange(10_000, 9_000_000)
        self.cells = cells
        self.order = {k: i for i, k in enumerate(q.key_order)}
        self.sep = (",", ":") if q.compact else (", ", ": ")

    def call_id(self, cell: str) -> str:
        self.call_counter += 1
        style = self.q.call_id_style
        if style == "hex":
            return f"{self.rng.getrandbits(64):016x}"
        if style == "uuid":
            h = f"{self.rng.getrandbits(128):032x}"
            return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"
        if style == "cell_counter":
            return f"{cell.rsplit('-', 1)[-1]}-{self.call_counter}"
        return str(self.call_counter)

    def fmt_msisdn(self, sim: Sim) -> str:
        if sim.country != "86":
            return ("+" if self.q.msisdn_style == "+86" else "") + sim.msisdn
        style = self.q.msisdn_style
        if style == "86":
            return "86" + sim.msisdn
        if style == "+86":
            return "+86" + sim.msisdn
        return sim.msisdn

    def fmt_peer(self, num: str, direction: str) -> str:
        """``num`` is canonical: m:<11 digits>, l:<area><local>, s:<short>, i:<cc+nsn>."""
        kind, n = num[0], num[2:]
        r = self.rng.random()
        if kind == "m":
            if direction == "mt":
                if r < self.q.p_plus86_mt:
                    return "+86" + n
                if r < self.q.p_plus86_mt + self.q.p_86_mt:
                    return "86" + n
                return n
            return "+86" + n if r < self.q.p_plus86_mo else n
        if kind == "l":
            if direction == "mt" and r < self.q.p_plus86_mt:
                return "+86" + n
            return "0" + n
        if kind == "i":
            return self.q.intl_prefix + n
        return n

    def emit(self, ts: float, etype: str, sim: Sim, imei: str, cell: str,
             extra: dict[str, object] | None = None) -> None:
        if ts < self.t0 or ts >= self.t1:
            return
        q, rng = self.q, self.rng
        if q.drop_share and rng.random() < q.drop_share:
            return
        sim.n_events += 1
        if sim.first_ts is None or ts < sim.first_ts:
            sim.first_ts = ts
        sim.days.add(int((ts - self.t0) // DAY))
        if etype == "call_start" and extra is not None and extra.get("dir") == "mo":
            sim.n_mo_calls += 1
            if sim.first_mo_ts is None or ts < sim.first_mo_ts:
                sim.first_mo_ts = ts
        t_out = ts + (rng.gauss(0.0, q.ts_jitter_s) if q.ts_jitter_s else 0.0)
        t_out = max(self.t0, t_out)
        rec: dict[str, object] = {
            "ts": int(t_out) if q.ts_decimals == 0 else round(t_out, q.ts_decimals),
            "type": etype, "imsi": sim.imsi, "imei": imei, "cell": cell}
        if sim.msisdn_known:
            on = q.msisdn_on
            if on == "all" or (on == "attach_calls" and etype in ("attach", "call_start", "call_end")) \
                    or (on == "random" and rng.random() < q.p_msisdn_event):
                rec["msisdn"] = self.fmt_msisdn(sim)
        if extra:
            rec.update(extra)
        if q.extra_fields and rng.random() < q.p_extra:
            name = rng.choice(q.extra_fields)
            rec[name] = self._extra_value(name)
        self._push(t_out, rec)
        if q.unknown_type_share and rng.random() < q.unknown_type_share:
            kind = rng.choice(["location_update", "paging", "ussd", "sms_report", "tau"])
            other = {"ts": rec["ts"], "type": kind, "imsi": sim.imsi, "imei": imei, "cell": cell}
            if kind == "ussd":
                other["code"] = rng.choice(["*100#", "*101#", "*133*1#"])
            self._push(t_out + 0.001, other)

    def _extra_value(self, name: str) -> object:
        rng = self.rng
        if name == "rat":
            return rng.choice(["gsm", "umts", "lte", "nr"])
        if name == "rssi_dbm":
            return rng.randint(-115, -55)
        if name == "seq":
            return self.seq
        if name == "fw":
            return "bsmon-3.4.1"
        if name == "ta":
            return rng.randint(0, 63)
        return rng.randint(1, 65535)

    def _push(self, t_out: float, rec: dict[str, object]) -> None:
        order = self.order
        ordered = {k: rec[k] for k in sorted(rec, key=lambda k: order.get(k, 99))}
        line = json.dumps(ordered, separators=self.sep, ensure_ascii=False)
        key = t_out
        if self.q.late_share and self.rng.random() < self.q.late_share:
            key += self.rng.uniform(0.0, 5.0)
        self.seq += 1
        self.rows.append((key, self.seq, line))
        if self.q.dup_share and self.rng.random() < self.q.dup_share:
            self.seq += 1
            self.rows.append((key, self.seq, line))

    def write(self, path: str) -> int:
        self.rows.sort()
        eol = "\r\n" if self.q.crlf else "\n"
        with open(path, "w", encoding="utf-8", newline="") as fh:
            for _, _, line in self.rows:
                fh.write(line)
                fh.write(eol)
        return len(self.rows)


# ---------------------------------------------------------------- the site and its numbers

@dataclass
class World:
    seed: int
    rng: random.Random
    feed: Feed
    q: Quirks
    t0: float
    t1: float
    operator: str
    cells: list[str]
    neighbours: list[str]
    imsis: set[str] = field(default_factory=set)
    msisdns: set[str] = field(default_factory=set)
    sims: list[Sim] = field(default_factory=list)
    phone_tacs: list[str] = field(default_factory=list)
    popular_tacs: list[str] = field(default_factory=list)
    feature_tacs: list[str] = field(default_factory=list)
    module_tacs: list[str] = field(default_factory=list)
    site_numbers: list[Sim] = field(default_factory=list)  # SIMs reachable by intra-site calls
    boxes: list[dict[str, object]] = field(default_factory=list)
    start_weekday: int = 0

    def local_hour(self, t: float) -> float:
        return ((t + LOCAL_OFFSET_S) % DAY) / 3600.0

    def weekday(self, t: float) -> int:
        return (int((t + LOCAL_OFFSET_S) // DAY) + 3) % 7  # 1970-01-01 was a Thursday

    def new_imsi(self, rng: random.Random, mcc_mnc: str | None = None, base: int | None = None) -> str:
        while True:
            if mcc_mnc is None:
                mnc = rng.choice(OPERATORS[self.operator]["imsi_mnc"])
                prefix = "460" + str(mnc)
            else:
                prefix = mcc_mnc
            n = 15 - len(prefix)
            if base is not None:
                msin = str(base % 10**n).zfill(n)
                base += 1
            else:
                msin = digits(rng, n)
            imsi = prefix + msin
            if imsi not in self.imsis:
                self.imsis.add(imsi)
                return imsi

    def new_msisdn(self, rng: random.Random, prefix: str | None = None, iot: bool = False) -> str:
        while True:
            if iot:
                p = rng.choice(OPERATORS[self.operator]["iot"])
                num = p + digits(rng, 13 - len(p))
            else:
                p = prefix or rng.choice(OPERATORS[self.operator]["prefixes"])
                num = p + digits(rng, 11 - len(p))
            if num not in self.msisdns:
                self.msisdns.add(num)
                return num

    def add_sim(self, sim: Sim) -> Sim:
        self.sims.append(sim)
        return sim


def make_imei(rng: random.Random, tac: str, serial: int | None = None, valid: bool = True) -> str:
    body = tac + (str(serial % 1_000_000).zfill(6) if serial is not None else digits(rng, 6))
    return body + (luhn_digit(body) if valid else rng.choice("0123456789"))


def present_imei(rng: random.Random, q: Quirks, imei15: str) -> str:
    """How the firmware shows a device's identity: IMEI, IMEISV or the bare 14 digits."""
    r = rng.random()
    if r < q.p_imeisv:
        return imei15[:14] + f"{rng.randint(0, 99):02d}"
    if r < q.p_imeisv + q.p_imei14:
        return imei15[:14]
    return imei15


def random_mobile(rng: random.Random, mvno_share: float = 0.05) -> str:
    p = rng.choice(MVNO_PREFIXES) if rng.random() < mvno_share else rng.choice(NATIONAL_PREFIXES)
    return "m:" + p + digits(rng, 8)


def random_landline(rng: random.Random) -> str:
    area = rng.choice(AREA_CODES)
    return "l:" + area + digits(rng, 8 if len(area) == 2 else 7)


def random_intl(rng: random.Random) -> str:
    _, _, cc, nsn = rng.choice(ROAMING)
    return "i:" + cc + digits(rng, nsn)


def sms_sender(rng: random.Random) -> str:
    return "s:" + "106" + rng.choice(["9", "5", "8", "0"]) + digits(rng, rng.randint(4, 9))


def num_of(sim: Sim) -> str:
    if sim.country != "86":
        return "i:" + sim.msisdn
    return ("m:" if len(sim.msisdn) == 11 else "s:") + sim.msisdn


# ---------------------------------------------------------------- event primitives

def auth(rng: random.Random, median: float, sigma: float, spike_p: float = 0.0) -> float:
    v = lognorm(rng, median, sigma)
    if spike_p and rng.random() < spike_p:
        v *= rng.uniform(2.0, 8.0)
    return max(8.0, min(v, 30_000.0))


def emit_attach(w: World, sim: Sim, imei: str, t: float, cell: str, auth_ms: float) -> None:
    d = w.q.auth_decimals
    w.feed.emit(t, "attach", sim, imei, cell,
                {"auth_ms": int(round(auth_ms)) if d == 0 else round(auth_ms, d)})


def place_call(w: World, rng: random.Random, sim: Sim, imei: str, t: float, cell: str,
               direction: str, peer: str, answered: bool, dur: float, ring: float,
               cause: str = "no_answer", move_cells: list[str] | None = None,
               peer_sim: Sim | None = None, peer_imei: str = "", peer_cell: str = "",
               peer_answers: bool = True) -> tuple[float, str]:
    """Both lines of one call leg (and the callee's leg if it is at this site).

    Returns (end time, cell at the end)."""
    feed = w.feed
    cid = feed.call_id(cell)
    shown = feed.fmt_peer(peer, direction)
    feed.emit(t, "call_start", sim, imei, cell, {"dir": direction, "peer": shown, "call_id": cid})
    talk = dur if answered else 0.0
    t_end = t + ring + talk
    end_cell = cell
    if move_cells and answered and talk > 20 and rng.random() < min(0.9, talk / 300.0):
        th = t + ring + rng.uniform(0.1, 0.9) * talk
        tgt = rng.choice(move_cells)
        if tgt != cell:
            feed.emit(th, "handover", sim, imei, cell, {"target_cell": tgt})
            end_cell = tgt
    dd = w.q.dur_decimals
    end: dict[str, object] = {
        "call_id": cid,
        "duration_s": (int(round(talk)) if dd == 0 else round(talk, dd)) if answered else 0,
        "cause": "normal" if answered else cause}
    if w.q.call_end_has_dir:
        end["dir"] = direction
    if w.q.call_end_has_peer:
        end["peer"] = shown
    feed.emit(t_end, "call_end", sim, imei, end_cell, end)
    if peer_sim is not None:
        cid2 = feed.call_id(peer_cell)
        t2 = t + rng.uniform(0.3, 2.5)
        shown2 = feed.fmt_peer(num_of(sim), "mt")
        feed.emit(t2, "call_start", peer_sim, peer_imei, peer_cell,
                  {"dir": "mt", "peer": shown2, "call_id": cid2})
        end2: dict[str, object] = {
            "call_id": cid2,
            "duration_s": (int(round(talk)) if dd == 0 else round(talk, dd)) if answered else 0,
            "cause": "normal" if answered else cause}
        if w.q.call_end_has_dir:
            end2["dir"] = "mt"
        if w.q.call_end_has_peer:
            end2["peer"] = shown2
        feed.emit(max(t2, t_end + rng.uniform(-0.2, 0.6)), "call_end", peer_sim, peer_imei,
                  peer_cell, end2)
    return t_end, end_cell


def send_sms(w: World, sim: Sim, imei: str, t: float, cell: str, direction: str, peer: str,
             peer_sim: Sim | None = None, peer_imei: str = "", peer_cell: str = "") -> None:
    w.feed.emit(t, "sms", sim, imei, cell, {"dir": direction, "peer": w.feed.fmt_peer(peer, direction)})
    if peer_sim is not None:
        w.feed.emit(t + w.rng.uniform(0.5, 8.0), "sms", peer_sim, peer_imei, peer_cell,
                    {"dir": "mt", "peer": w.feed.fmt_peer(num_of(sim), "mt")})


def data_session(w: World, sim: Sim, imei: str, t: float, cell: str, nbytes: int) -> None:
    w.feed.emit(t, "data", sim, imei, cell, {"bytes": max(0, int(nbytes))})


def sample_times(w: World, rng: random.Random, per_day: float, profile: list[float],
                 windows: list[tuple[float, float]] | None = None,
                 weekend_factor: float = 1.0) -> list[float]:
    """Poisson times over the window following a local-hour profile."""
    cum = cumulative(profile)
    total = cum[-1]
    if total <= 0:
        return []
    out: list[float] = []
    day0 = math.floor((w.t0 + LOCAL_OFFSET_S) / DAY)
    day1 = math.floor((w.t1 + LOCAL_OFFSET_S) / DAY)
    hours = list(range(24))
    for d in range(day0, day1 + 1):
        midnight = d * DAY - LOCAL_OFFSET_S
        wd = (d + 3) % 7
        lam = per_day * (weekend_factor if wd >= 5 else 1.0)
        n = poisson(rng, lam)
        if n == 0:
            continue
        hs = rng.choices(hours, cum_weights=cum, k=n)
        for h in hs:
            t = midnight + (h + rng.random()) * 3600.0
            if w.t0 <= t < w.t1:
                out.append(t)
    if windows is not None:
        out = [t for t in out if any(a <= t < b for a, b in windows)]
    out.sort()
    return out


def day_windows(w: World, rng: random.Random, start_h: float, end_h: float, jitter_h: float,
                weekdays_only: bool = False) -> list[tuple[float, float]]:
    out = []
    day0 = math.floor((w.t0 + LOCAL_OFFSET_S) / DAY)
    day1 = math.floor((w.t1 + LOCAL_OFFSET_S) / DAY)
    for d in range(day0, day1 + 1):
        if weekdays_only and (d + 3) % 7 >= 5:
            continue
        midnight = d * DAY - LOCAL_OFFSET_S
        a = midnight + (start_h + rng.uniform(-jitter_h, jitter_h)) * 3600
        b = midnight + (end_h + rng.uniform(-jitter_h, jitter_h)) * 3600
        if b > a:
            out.append((a, b))
    return out


# ---------------------------------------------------------------- people

@dataclass
class Habits:
    calls_per_day: float
    mo_share: float
    contacts: list[str]
    zipf_s: float
    p_new_number: float
    new_number: Callable[[random.Random], str]
    answer_p: float
    dur_median: float
    dur_sigma: float
    sms_mt_per_day: float
    sms_mo_per_day: float
    data_per_day: float
    data_median: float
    profile: list[float]
    cells: list[str]
    cell_weights: list[float]
    moving: bool
    presence: list[tuple[float, float]] | None
    attach_every_h: float
    auth_ms: float
    auth_sigma: float
    weekend_factor: float = 1.0
    call_profile: list[float] | None = None
    night_off: bool = False
    min_gap_s: float = 5.0
    intra_share: float = 0.0


def presence_for(w: World, rng: random.Random, kind: str) -> list[tuple[float, float]] | None:
    if kind == "resident":
        if rng.random() < 0.5:
            return None
        # away during the day on weekdays
        away = day_windows(w, rng, 8.5, 18.5, 1.0, weekdays_only=True)
        pres, last = [], w.t0
        for a, b in away:
            if a > last:
                pres.append((last, a))
            last = max(last, b)
        pres.append((last, w.t1))
        return pres
    if kind == "worker":
        return day_windows(w, rng, 8.7, 18.3, 0.8, weekdays_only=rng.random() < 0.8)
    # passer-by: a few short visits
    out = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        a = rng.uniform(w.t0, w.t1)
        out.append((a, a + rng.uniform(300, 7200)))
    return out


def live_person(w: World, rng: random.Random, sim: Sim, imei: str, h: Habits) -> None:
    """An ordinary-ish subscriber: calls, SMS, data, attaches and moves."""
    pres = h.presence
    cells, cw = h.cells, cumulative(h.cell_weights)

    def cell_at() -> str:
        return rng.choices(cells, cum_weights=cw, k=1)[0]

    # attaches: at each presence start (power-on or arrival), then periodically
    starts = [a for a, _ in pres] if pres else [w.t0 + rng.uniform(0, 3600)]
    for a in starts:
        if a <= w.t0:  # already registered when the recording starts; now and then powered on early
            if rng.random() < 0.05:
                emit_attach(w, sim, imei, w.t0 + rng.uniform(0, 4 * 3600), cell_at(),
                            auth(rng, h.auth_ms, h.auth_sigma, 0.02))
            continue
        if True:
            if pres and a > w.t0 and rng.random() < 0.35:
                w.feed.emit(a, "handover", sim, imei, rng.choice(w.neighbours), {"target_cell": cell_at()})
            else:
                emit_attach(w, sim, imei, a + rng.uniform(0, 5), cell_at(), auth(rng, h.auth_ms, h.auth_sigma, 0.02))
    if h.attach_every_h > 0:
        for t in sample_times(w, rng, 24.0 / h.attach_every_h, [1.0] * 24, pres):
            emit_attach(w, sim, imei, t, cell_at(), auth(rng, h.auth_ms, h.auth_sigma, 0.02))
    if h.night_off:
        for a, b in day_windows(w, rng, 22.0, 30.5, 0.7):
            if w.t0 <= a < w.t1:
                w.feed.emit(a, "detach", sim, imei, cell_at())
                emit_attach(w, sim, imei, b, cell_at(), auth(rng, h.auth_ms, h.auth_sigma, 0.02))
    if pres:
        for _, b in pres:
            if b < w.t1 and rng.random() < 0.25:
                if rng.random() < 0.5:
                    w.feed.emit(b, "detach", sim, imei, cell_at())
                else:
                    w.feed.emit(b, "handover", sim, imei, cell_at(), {"target_cell": rng.choice(w.neighbours)})

    # calls, kept from overlapping
    busy_until = 0.0
    recent_mt: list[str] = []
    for t in sample_times(w, rng, h.calls_per_day, h.call_profile or h.profile, pres, h.weekend_factor):
        if h.night_off and (w.local_hour(t) >= 22.5 or w.local_hour(t) < 6.0):
            continue
        t = max(t, busy_until + h.min_gap_s * rng.uniform(0.5, 3.0))
        if t >= w.t1:
            break
        cell = cell_at()
        peer_sim = None
        if rng.random() < h.mo_share:
            direction = "mo"
            if recent_mt and rng.random() < 0.15:
                peer = recent_mt.pop()  # calling back
            elif rng.random() < h.p_new_number:
                peer = h.new_number(rng)
            else:
                peer = zipf_pick(rng, h.contacts, h.zipf_s)
            if h.intra_share and rng.random() < h.intra_share and w.site_numbers:
                peer_sim = rng.choice(w.site_numbers)
                if peer_sim is sim:
                    peer_sim = None
                else:
                    peer = num_of(peer_sim)
            answered = rng.random() < h.answer_p
        else:
            direction = "mt"
            peer = zipf_pick(rng, h.contacts, h.zipf_s) if rng.random() > h.p_new_number * 0.5 \
                else h.new_number(rng)
            answered = rng.random() < 0.82
            if not answered:
                recent_mt.append(peer)
        dur = min(lognorm(rng, h.dur_median, h.dur_sigma), 7200.0)
        if answered:
            ring = rng.uniform(2.0, 18.0)
            cause = "normal"
        else:
            cause = rng.choices(["no_answer", "busy", "failed", "rejected", "unreachable"],
                                weights=[0.55, 0.2, 0.08, 0.12, 0.05])[0]
            ring = rng.uniform(20, 45) if cause == "no_answer" else rng.uniform(0.5, 10)
        p_imei = p_cell = ""
        if peer_sim is not None:
            p_imei, p_cell = (peer_sim.imei_now if peer_sim else ""), (peer_sim.cell_now if peer_sim else "")
            if not p_imei:
                peer_sim = None
        busy_until, _ = place_call(w, rng, sim, imei, t, cell, direction, peer, answered, dur, ring,
                                   cause, cells if h.moving else None, peer_sim, p_imei, p_cell)
    # SMS
    for t in sample_times(w, rng, h.sms_mt_per_day, h.profile, pres):
        peer = sms_sender(rng) if rng.random() < 0.7 else zipf_pick(rng, h.contacts, h.zipf_s)
        send_sms(w, sim, imei, t, cell_at(), "mt", peer)
    for t in sample_times(w, rng, h.sms_mo_per_day, h.profile, pres):
        peer = zipf_pick(rng, h.contacts, h.zipf_s) if rng.random() < 0.85 else "s:" + rng.choice(SERVICE_NUMBERS[:3])
        send_sms(w, sim, imei, t, cell_at(), "mo", peer)
    # data sessions; moving users hand over in some of them
    for t in sample_times(w, rng, h.data_per_day, h.profile, pres):
        c = cell_at()
        data_session(w, sim, imei, t, c, int(lognorm(rng, h.data_median, 1.4)))
        if h.moving and rng.random() < 0.15:
            tgt = cell_at() if rng.random() < 0.7 else rng.choice(w.neighbours)
            if tgt != c:
                w.feed.emit(t + rng.uniform(1, 60), "handover", sim, imei, c, {"target_cell": tgt})


def contact_list(rng: random.Random, n: int, landline_share: float = 0.1) -> list[str]:
    out = []
    for _ in range(max(1, n)):
        r = rng.random()
        if r < landline_share:
            out.append(random_landline(rng))
        elif r < landline_share + 0.02:
            out.append("s:" + rng.choice(SERVICE_NUMBERS))
        else:
            out.append(random_mobile(rng))
    return out


def home_cells(w: World, rng: random.Random, moving: bool) -> tuple[list[str], list[float]]:
    if moving:
        cells = w.cells[:] + rng.sample(w.neighbours, k=min(len(w.neighbours), rng.randint(1, 4)))
        return cells, [rng.uniform(0.3, 1.0) for _ in cells]
    main = rng.choice(w.cells)
    others = [c for c in w.cells if c != main]
    cells = [main] + rng.sample(others, k=min(len(others), rng.randint(0, 2)))
    return cells, [1.0] + [rng.uniform(0.02, 0.25) for _ in cells[1:]]


def new_device(w: World, rng: random.Random, kind: str) -> str:
    tac = {"phone": lambda: rng.choice(w.phone_tacs) if rng.random() > 0.4 else rng.choice(w.popular_tacs),
           "feature": lambda: rng.choice(w.feature_tacs),
           "module": lambda: rng.choice(w.module_tacs)}[kind]()
    return make_imei(rng, tac)


def person_habits(w: World, rng: random.Random, family: str, presence_kind: str) -> tuple[Habits, str]:
    q = w.q
    moving = family in ("sales", "taxi", "courier") or rng.random() < 0.2
    cells, cw = home_cells(w, rng, moving)
    base_auth = q.phone_auth_ms * rng.uniform(0.8, 1.25)
    h = Habits(
        calls_per_day=rng.choice([0.5, 1.5, 3, 5, 8, 12]) * rng.uniform(0.6, 1.5),
        mo_share=rng.uniform(0.35, 0.7),
        contacts=contact_list(rng, int(lognorm(rng, 35, 0.7))),
        zipf_s=rng.uniform(1.3, 2.2),
        p_new_number=rng.uniform(0.03, 0.2),
        new_number=lambda r: random_mobile(r) if r.random() < 0.8 else random_landline(r),
        answer_p=rng.uniform(0.65, 0.9),
        dur_median=rng.uniform(35, 140),
        dur_sigma=rng.uniform(0.9, 1.4),
        sms_mt_per_day=rng.uniform(0.5, 6),
        sms_mo_per_day=rng.choice([0.0, 0.1, 0.5, 2.0]),
        data_per_day=rng.choice([0.0, 8, 20, 40, 80]) * rng.uniform(0.7, 1.3),
        data_median=rng.choice([20_000, 80_000, 300_000, 1_500_000]),
        profile=hour_profile("human", rng),
        cells=cells, cell_weights=cw, moving=moving,
        presence=presence_for(w, rng, presence_kind),
        attach_every_h=rng.uniform(3, 14),
        auth_ms=base_auth, auth_sigma=q.phone_auth_sigma,
        weekend_factor=rng.uniform(0.7, 1.3),
        intra_share=rng.uniform(0.0, 0.12),
    )
    kind = "phone"
    if family == "sales":
        h.calls_per_day = rng.uniform(15, 60)
        h.mo_share = rng.uniform(0.55, 0.8)
        h.contacts = contact_list(rng, rng.randint(80, 400), 0.3)
        h.p_new_number = rng.uniform(0.15, 0.45)
        h.dur_median = rng.uniform(50, 160)
        h.call_profile = hour_profile("work", rng)
        h.presence = None if rng.random() < 0.5 else presence_for(w, rng, "worker")
        h.data_per_day = rng.uniform(20, 80)
        h.weekend_factor = rng.uniform(0.1, 0.5)
    elif family == "taxi":
        night = rng.random() < 0.35
        h.calls_per_day = rng.uniform(12, 45)
        h.mo_share = rng.uniform(0.55, 0.85)
        h.p_new_number = rng.uniform(0.5, 0.85)
        # ride-hailing platforms mask numbers: many calls go to a few virtual numbers
        virtual = ["m:" + rng.choice(["170", "171", "195"]) + digits(rng, 8) for _ in range(rng.randint(3, 12))]
        h.new_number = (lambda vs: (lambda r: r.choice(vs) if r.random() < 0.5 else random_mobile(r)))(virtual)
        h.dur_median = rng.uniform(15, 45)
        h.dur_sigma = rng.uniform(0.6, 1.0)
        h.profile = hour_profile("night" if night else "human", rng)
        h.call_profile = h.profile
        h.data_per_day = rng.uniform(60, 200)
        h.presence = None if rng.random() < 0.4 else (presence_for(w, rng, "passer") or []) + (presence_for(w, rng, "passer") or [])
    elif family == "courier":
        h.calls_per_day = rng.uniform(25, 90)
        h.mo_share = rng.uniform(0.75, 0.95)
        h.p_new_number = rng.uniform(0.7, 0.95)
        h.answer_p = rng.uniform(0.55, 0.8)
        h.dur_median = rng.uniform(12, 35)
        h.dur_sigma = rng.uniform(0.5, 0.9)
        h.call_profile = hour_profile("work", rng)
        h.sms_mo_per_day = rng.uniform(5, 40)  # pick-up notices
        h.data_per_day = rng.uniform(40, 150)
        h.presence = presence_for(w, rng, "worker")
        h.min_gap_s = 20.0
    elif family == "elderly":
        kind = "feature" if rng.random() < 0.8 else "phone"
        h.calls_per_day = rng.uniform(0.5, 5)
        h.mo_share = rng.uniform(0.75, 1.0)  # many only call out
        h.contacts = contact_list(rng, rng.randint(2, 8), 0.3)
        h.zipf_s = rng.uniform(1.8, 3.0)
        h.p_new_number = rng.uniform(0.0, 0.05)
        h.dur_median = rng.uniform(60, 300)
        h.sms_mo_per_day = 0.0
        h.sms_mt_per_day = rng.uniform(0.1, 1.5)
        h.data_per_day = 0.0 if kind == "feature" else rng.uniform(0, 5)
        h.profile = hour_profile("elderly", rng)
        h.moving = False
        h.cells, h.cell_weights = home_cells(w, rng, False)
        h.presence = None
        h.night_off = rng.random() < 0.5
        h.auth_ms *= rng.uniform(1.0, 1.6)  # old SIM cards compute slowly
        h.answer_p = rng.uniform(0.55, 0.85)
    elif family == "roamer":
        mcc, mnc, cc, nsn = rng.choice(ROAMING)
        sim_home = (mcc, mnc, cc, nsn)
        h.contacts = ["i:" + cc + digits(rng, nsn) for _ in range(rng.randint(3, 25))] + contact_list(rng, rng.randint(0, 6))
        h.new_number = lambda r: random_mobile(r) if r.random() < 0.6 else "l:" + r.choice(AREA_CODES) + digits(r, 7)
        h.mo_share = rng.uniform(0.5, 0.9)
        h.auth_ms = base_auth + lognorm(rng, rng.uniform(150, 900), 0.4)  # the home network answers
        h.auth_sigma = rng.uniform(0.35, 0.7)
        h.data_per_day = 0.0 if rng.random() < 0.5 else rng.uniform(5, 60)
        h.sms_mt_per_day = rng.uniform(0.2, 3)
        h.presence = presence_for(w, rng, rng.choice(["resident", "passer", "worker"]))
        h.attach_every_h = rng.uniform(2, 8)
        h.p_new_number = rng.uniform(0.1, 0.4)
        return h, "roam:" + ":".join(sim_home[:3]) + ":" + str(nsn)
    return h, kind


def spawn_person(w: World, rng: random.Random, family: str, idx: int, presence_kind: str) -> None:
    h, kind = person_habits(w, rng, family, presence_kind)
    dev = f"{family}-{idx:05d}"
    if kind.startswith("roam:"):
        _, mcc, mnc, cc, nsn = kind.split(":")
        imsi = w.new_imsi(rng, mcc + mnc)
        sim = w.add_sim(Sim(imsi, cc + digits(rng, int(nsn)), "normal", family, dev, dev,
                            msisdn_known=rng.random() < 0.4, country=cc))
        kind = "phone"
    else:
        sim = w.add_sim(Sim(w.new_imsi(rng), w.new_msisdn(rng, rng.choice(MVNO_PREFIXES) if rng.random() < 0.06 else None),
                            "normal", family, dev, dev, msisdn_known=rng.random() < w.q.p_msisdn_known))
    imei15 = new_device(w, rng, kind)
    imei = present_imei(rng, w.q, imei15)
    sim.imei_now, sim.cell_now = imei, h.cells[0]
    if rng.random() < 0.015:  # a new phone during the window: the SIM moves to it
        cut = rng.uniform(w.t0, w.t1)
        imei2 = present_imei(rng, w.q, new_device(w, rng, "phone"))
        pres = h.presence or [(w.t0, w.t1)]
        h.presence = [(a, min(b, cut)) for a, b in pres if a < cut]
        live_person(w, rng, sim, imei, h)
        h.presence = [(max(a, cut), b) for a, b in pres if b > cut]
        live_person(w, rng, sim, imei2, h)
        return
    live_person(w, rng, sim, imei, h)


def spawn_dual_sim(w: World, rng: random.Random, idx: int) -> None:
    """One handset, two SIMs, two IMEIs whose serials differ by one or two."""
    h1, _ = person_habits(w, rng, "ordinary", rng.choice(["resident", "worker", "resident"]))
    tac = rng.choice(w.phone_tacs)
    serial = rng.randrange(0, 999_990)
    step = rng.choice([1, 1, 1, 2])
    imeis = [present_imei(rng, w.q, make_imei(rng, tac, serial)),
             present_imei(rng, w.q, make_imei(rng, tac, serial + step))]
    dev = f"dual-{idx:05d}"
    sims = [w.add_sim(Sim(w.new_imsi(rng), w.new_msisdn(rng), "normal", "dual_sim", dev, dev,
                          msisdn_known=rng.random() < w.q.p_msisdn_known)) for _ in range(2)]
    for s, im in zip(sims, imeis, strict=True):
        s.imei_now, s.cell_now = im, h1.cells[0]
    live_person(w, rng, sims[0], imeis[0], h1)
    role = rng.choice(["data", "work", "idle", "work"])
    h2, _ = person_habits(w, rng, "sales" if role == "work" else "ordinary", "resident")
    h2.presence, h2.cells, h2.cell_weights, h2.moving = h1.presence, h1.cells, h1.cell_weights, h1.moving
    if role == "data":
        h2.calls_per_day, h2.sms_mo_per_day, h2.data_per_day = 0.2, 0.0, rng.uniform(30, 120)
        h1.data_per_day = 0.0
    elif role == "idle":
        h2.calls_per_day, h2.sms_mo_per_day, h2.data_per_day = rng.uniform(0, 1), 0.0, 0.0
    elif role == "work":
        h2.calls_per_day = rng.uniform(10, 50)
        h2.data_per_day = rng.uniform(0, 5)
    live_person(w, rng, sims[1], imeis[1], h2)


def spawn_call_centre(w: World, rng: random.Random, idx: int, n_agents: int) -> None:
    """An office of telemarketing agents on mobile SIMs: one cell, working hours,
    many distinct numbers, short calls, many unanswered. Numbers come in a batch."""
    office = f"callcentre-{idx:02d}"
    cell = rng.choice(w.cells)
    cells = [cell] + ([rng.choice(w.cells)] if rng.random() < 0.3 else [])
    imsi_base = rng.randrange(10**9, 9 * 10**9)
    mnc = rng.choice(OPERATORS[w.operator]["imsi_mnc"])
    num_prefix = rng.choice(OPERATORS[w.operator]["prefixes"])
    num_base = rng.randrange(10**7, 9 * 10**7)
    evening = rng.random() < 0.4
    saturday = rng.random() < 0.5
    dial_mode = rng.choice(["list", "segment", "mixed"])
    seg = rng.choice(NATIONAL_PREFIXES) + digits(rng, 4)
    answer_p = rng.uniform(0.25, 0.55)
    rate = rng.uniform(60, 260)
    uses_data = rng.random() < 0.75
    two_sims = rng.random() < 0.3  # agents rotate SIMs blocked for too many calls
    for a in range(n_agents):
        dev = f"{office}-agent{a:02d}"
        k = 2 if two_sims and rng.random() < 0.5 else 1
        imei = present_imei(rng, w.q, new_device(w, rng, "phone"))
        for j in range(k):
            imsi = w.new_imsi(rng, "460" + mnc, imsi_base + a * 2 + j + rng.randint(0, 1) * 50)
            sim = w.add_sim(Sim(imsi, _batch_number(w, num_prefix, num_base + a * 2 + j), "normal", "call_centre", dev, office,
                                msisdn_known=rng.random() < w.q.p_msisdn_known))
            sim.imei_now, sim.cell_now = imei, cell
            shift = day_windows(w, rng, 9.0, 12.0, 0.25, weekdays_only=not saturday) + \
                day_windows(w, rng, 13.5, 17.8, 0.3, weekdays_only=not saturday)
            if evening:
                shift += day_windows(w, rng, 18.8, 21.0, 0.3, weekdays_only=True)
            if k == 2:  # split the day between the two SIMs
                cut_h = rng.uniform(11, 15)
                shift = [(x, y) for x, y in shift if (w.local_hour(x) < cut_h) == (j == 0)]
            customers = [random_mobile(rng, 0.02) for _ in range(rng.randint(20, 80))]
            nseg = [int(digits(rng, 4))]

            def new_number(r: random.Random, seg: str = seg, nseg: list[int] = nseg) -> str:
                if dial_mode == "segment" or (dial_mode == "mixed" and r.random() < 0.5):
                    nseg[0] = (nseg[0] + r.randint(1, 3)) % 10000
                    return "m:" + seg + str(nseg[0]).zfill(4)
                return random_mobile(r, 0.02)

            h = Habits(
                calls_per_day=rate * rng.uniform(0.6, 1.3) / k, mo_share=rng.uniform(0.9, 0.99),
                contacts=customers, zipf_s=1.6, p_new_number=rng.uniform(0.75, 0.95),
                new_number=new_number, answer_p=answer_p * rng.uniform(0.8, 1.2),
                dur_median=rng.uniform(20, 60), dur_sigma=rng.uniform(0.9, 1.3),
                sms_mt_per_day=rng.uniform(0.5, 4), sms_mo_per_day=rng.choice([0, 0, 2, 10]),
                data_per_day=rng.uniform(10, 60) if uses_data else 0.0,
                data_median=rng.choice([30_000, 150_000]), profile=hour_profile("work", rng),
                cells=cells, cell_weights=[1.0, 0.1][:len(cells)], moving=False, presence=shift,
                attach_every_h=rng.uniform(4, 12), auth_ms=w.q.phone_auth_ms * rng.uniform(0.8, 1.2),
                auth_sigma=w.q.phone_auth_sigma, weekend_factor=1.0, min_gap_s=rng.uniform(6, 25))
            live_person(w, rng, sim, imei, h)


def _batch_number(w: World, prefix: str, n: int) -> str:
    num = prefix + str(n % 10**8).zfill(8)
    while num in w.msisdns:
        n += 1
        num = prefix + str(n % 10**8).zfill(8)
    w.msisdns.add(num)
    return num


def spawn_iot_fleet(w: World, rng: random.Random, idx: int, n: int, family: str) -> None:
    """Meters, trackers, alarm panels, POS terminals; or desk phones on a module
    (``fixed_wireless``). Module TACs, batch IMSIs, machine-regular timing."""
    kind = rng.choice(["meter", "tracker", "alarm", "pos"]) if family == "iot" else "desk"
    group = f"{family}-{idx:03d}-{kind}"
    tac = rng.choice(w.module_tacs)
    imei_base = rng.randrange(0, 900_000)
    imsi_base = rng.randrange(10**9, 9 * 10**9)
    mnc = rng.choice(OPERATORS[w.operator]["imsi_mnc"])
    cell = rng.choice(w.cells)
    period = rng.choice([300, 900, 1800, 3600, 4 * 3600]) if kind != "pos" else 0
    centre = [random_landline(rng) if rng.random() < 0.5 else random_mobile(rng) for _ in range(rng.randint(1, 3))]
    platform = "s:" + "1064" + digits(rng, 9)
    for i in range(n):
        dev = f"{group}-{i:03d}"
        imsi = w.new_imsi(rng, "460" + mnc, imsi_base + i * rng.choice([1, 1, 3]))
        msisdn = w.new_msisdn(rng, iot=kind != "desk")
        sim = w.add_sim(Sim(imsi, msisdn, "normal", family, dev, group,
                            msisdn_known=rng.random() < w.q.p_msisdn_known * (0.5 if kind != "desk" else 1)))
        imei = present_imei(rng, w.q, make_imei(rng, tac, imei_base + i))
        sim.imei_now, sim.cell_now = imei, cell
        my_cell = cell if kind != "tracker" else rng.choice(w.cells)
        am = w.q.phone_auth_ms * rng.uniform(1.0, 2.2)
        if kind == "desk":
            h = Habits(
                calls_per_day=rng.uniform(1, 12), mo_share=rng.uniform(0.4, 0.9),
                contacts=contact_list(rng, rng.randint(5, 40), 0.4), zipf_s=1.7,
                p_new_number=rng.uniform(0.05, 0.3),
                new_number=lambda r: random_mobile(r) if r.random() < 0.6 else random_landline(r),
                answer_p=rng.uniform(0.6, 0.85), dur_median=rng.uniform(40, 150), dur_sigma=1.1,
                sms_mt_per_day=rng.uniform(0, 1), sms_mo_per_day=0.0, data_per_day=0.0,
                data_median=1000, profile=hour_profile(rng.choice(["work", "elderly"]), rng),
                cells=[cell], cell_weights=[1.0], moving=False, presence=None,
                attach_every_h=rng.uniform(6, 24), auth_ms=am, auth_sigma=0.4)
            live_person(w, rng, sim, imei, h)
            continue
        # machine periodic data
        if period:
            t = w.t0 + rng.uniform(0, period)
            jitter = rng.choice([0.5, 5.0, 60.0])
            while t < w.t1:
                c = my_cell
                if kind == "tracker" and rng.random() < 0.2:
                    nxt = rng.choice(w.cells + w.neighbours[:2])
                    w.feed.emit(t - 1, "handover", sim, imei, my_cell, {"target_cell": nxt})
                    my_cell = nxt if nxt in w.cells else rng.choice(w.cells)
                    c = my_cell
                data_session(w, sim, imei, t, c, int(lognorm(rng, rng.choice([300, 2000, 20_000]), 0.5)))
                t += period + rng.gauss(0, jitter)
        else:  # POS: bursts in shop hours
            for tt in sample_times(w, rng, rng.uniform(20, 200), hour_profile("human", rng)):
                data_session(w, sim, imei, tt, my_cell, int(lognorm(rng, 4000, 0.6)))
        # power-saving re-attaches
        for tt in sample_times(w, rng, rng.uniform(0.5, 6), [1.0] * 24):
            emit_attach(w, sim, imei, tt, my_cell, auth(rng, am, 0.4, 0.03))
        for tt in sample_times(w, rng, rng.uniform(0, 2), [1.0] * 24):
            send_sms(w, sim, imei, tt, my_cell, "mt", platform)
        if kind == "alarm":
            # a daily test call to the monitoring centre, plus alarm SMS
            for tt in sample_times(w, rng, rng.uniform(0.8, 3), [1.0] * 24):
                place_call(w, rng, sim, imei, tt, my_cell, "mo", rng.choice(centre),
                           rng.random() < 0.9, rng.uniform(8, 40), rng.uniform(3, 12))
            for tt in sample_times(w, rng, rng.uniform(0, 1), [1.0] * 24):
                send_sms(w, sim, imei, tt, my_cell, "mo", rng.choice(centre))


def spawn_shop(w: World, rng: random.Random, idx: int, n: int) -> None:
    """A phone shop activating new SIMs in one handset: many IMSIs through one IMEI."""
    group = f"shop-{idx:02d}"
    imei = present_imei(rng, w.q, new_device(w, rng, "phone"))
    cell = rng.choice(w.cells)
    imsi_base = rng.randrange(10**9, 9 * 10**9)
    mnc = rng.choice(OPERATORS[w.operator]["imsi_mnc"])
    open_windows = day_windows(w, rng, 9.5, 20.5, 0.5)
    slots = sample_times(w, rng, n / max(1.0, (w.t1 - w.t0) / DAY), hour_profile("work", rng), open_windows)
    for i, t in enumerate(slots[:n]):
        sim = w.add_sim(Sim(w.new_imsi(rng, "460" + mnc, imsi_base + i), w.new_msisdn(rng),
                            "normal", "shop_activation", group, group,
                            msisdn_known=rng.random() < w.q.p_msisdn_known))
        emit_attach(w, sim, imei, t, cell, auth(rng, w.q.phone_auth_ms, w.q.phone_auth_sigma))
        tt = t + rng.uniform(10, 90)
        send_sms(w, sim, imei, tt, cell, "mt", "s:" + rng.choice(SERVICE_NUMBERS[:3]))
        if rng.random() < 0.7:
            tt += rng.uniform(20, 200)
            tt, _ = place_call(w, rng, sim, imei, tt, cell, "mo",
                               "s:" + rng.choice(SERVICE_NUMBERS[:3]) if rng.random() < 0.6 else random_mobile(rng),
                               True, rng.uniform(10, 90), rng.uniform(2, 8))
        if rng.random() < 0.4:
            data_session(w, sim, imei, tt + rng.uniform(5, 60), cell, int(lognorm(rng, 50_000, 1.0)))
        w.feed.emit(tt + rng.uniform(30, 600), "detach", sim, imei, cell)
        # the customer's own phone takes the SIM elsewhere: not seen here


# ---------------------------------------------------------------- SIM-boxes

@dataclass
class BoxPlan:
    family: str
    box_id: str
    channels: int
    cell: str
    cells: list[str]
    schedule: list[tuple[float, float]]
    answer_p: float
    gap_median: float
    short_median: float
    long_median: float
    p_long: float
    ring_noans: tuple[float, float]
    callback_p: float
    dial: str
    auth_ms: float
    auth_sigma: float
    imei_policy: str  # module | sticky | fresh
    tac_kind: str  # module | phone
    daily_cap: float
    sim_life_h: float
    human: bool
    params: dict[str, Any] = field(default_factory=dict)


class Dialer:
    """Where a box gets its B-numbers: a leaked list, a number segment walked in order, or
    the callees of bypassed international traffic (who repeat)."""

    def __init__(self, rng: random.Random, mode: str):
        self.rng, self.mode = rng, mode
        self.seg = rng.choice(NATIONAL_PREFIXES) + digits(rng, 4)
        self.pos = rng.randrange(0, 10000)
        self.population = [random_mobile(rng, 0.02) for _ in range(rng.randint(2000, 20000))] if mode == "bypass" else []
        self.redial: list[str] = []

    def next(self) -> str:
        r = self.rng
        if self.redial and r.random() < 0.08:
            return self.redial.pop(r.randrange(len(self.redial)))
        if self.mode == "segment":
            self.pos += r.choice([1, 1, 1, 2, 3])
            if self.pos >= 10000:
                self.seg, self.pos = r.choice(NATIONAL_PREFIXES) + digits(r, 4), r.randrange(0, 100)
            return "m:" + self.seg + str(self.pos).zfill(4)
        if self.mode == "bypass":
            return zipf_pick(r, self.population, 1.15)
        if self.mode == "local":
            return "m:" + self.seg[:3] + self.seg[3:5] + digits(r, 6)
        return random_mobile(r, 0.03)


def box_schedule(w: World, rng: random.Random, kind: str) -> list[tuple[float, float]]:
    if kind == "allday":
        return [(w.t0, w.t1)]
    if kind == "day":
        return day_windows(w, rng, rng.uniform(7.5, 9.5), rng.uniform(20.5, 23.0), 0.2)
    return day_windows(w, rng, 8.8, 12.0, 0.3) + day_windows(w, rng, 13.3, 18.0, 0.3) + \
        (day_windows(w, rng, 19.0, 21.5, 0.3) if rng.random() < 0.5 else [])


def in_windows(t: float, windows: list[tuple[float, float]]) -> float | None:
    """t if inside a window, else the next window's start, else None."""
    for a, b in windows:
        if t < a:
            return a
        if a <= t < b:
            return t
    return None


def plan_box(w: World, rng: random.Random, family: str, idx: int) -> BoxPlan:
    bid = f"box{idx:02d}-{family}"
    cell = rng.choice(w.cells)
    ch = rng.choice([1, 4, 4, 8, 8, 16, 16, 32])
    base = w.q.phone_auth_ms
    p = BoxPlan(
        family=family, box_id=bid, channels=ch, cell=cell, cells=[cell],
        schedule=box_schedule(w, rng, rng.choice(["allday", "day", "day", "work"])),
        answer_p=rng.uniform(0.15, 0.45), gap_median=rng.uniform(4, 45),
        short_median=rng.uniform(6, 25), long_median=rng.uniform(50, 250), p_long=rng.uniform(0.15, 0.5),
        ring_noans=(rng.uniform(12, 25), rng.uniform(28, 50)), callback_p=rng.uniform(0.01, 0.08),
        dial=rng.choice(["leaked", "leaked", "segment", "local"]),
        auth_ms=base * rng.uniform(1.0, 1.7), auth_sigma=rng.uniform(0.3, 0.55),
        imei_policy="module", tac_kind="module" if rng.random() < 0.75 else "phone",
        daily_cap=rng.uniform(120, 500), sim_life_h=rng.uniform(6, 60), human=False)
    if rng.random() < 0.3 and len(w.cells) > 1:
        p.cells = [cell, rng.choice(w.cells)]
    if family == "simbank":
        p.channels = rng.choice([8, 16, 16, 32])
        p.params["bank_sims"] = p.channels * rng.randint(2, 8)
        p.params["session_min"] = rng.uniform(8, 90)
        p.params["session_calls"] = rng.randint(5, 25)
        rtt = rng.uniform(150, 2500)
        p.auth_ms, p.auth_sigma = base + rtt, rng.uniform(0.5, 0.9)
        p.imei_policy = rng.choice(["module", "sticky", "fresh"])
        p.tac_kind = "phone" if p.imei_policy != "module" and rng.random() < 0.7 else "module"
        p.daily_cap = rng.uniform(12, 60)  # the bank server rests a SIM at its daily cap
    elif family == "human":
        p.channels = rng.choice([4, 8, 8, 16])
        p.human = True
        p.schedule = box_schedule(w, rng, "work")
        p.answer_p = rng.uniform(0.3, 0.55)
        p.gap_median = rng.uniform(120, 900)
        p.short_median, p.long_median, p.p_long = rng.uniform(15, 40), rng.uniform(60, 200), rng.uniform(0.3, 0.6)
        p.imei_policy = "sticky"
        p.tac_kind = "phone"
        p.daily_cap = rng.uniform(25, 80)
        p.callback_p = rng.uniform(0.05, 0.15)
        if rng.random() < 0.5:  # behind a SIM bank too
            p.auth_ms, p.auth_sigma = base + rng.uniform(100, 1500), rng.uniform(0.4, 0.8)
    elif family == "low_slow":
        p.channels = rng.choice([8, 16, 32])
        p.params["sims_per_channel"] = rng.randint(2, 4)
        p.schedule = box_schedule(w, rng, rng.choice(["day", "work"]))
        p.gap_median = rng.uniform(600, 3600)
        p.daily_cap = rng.uniform(4, 18)
        p.answer_p = rng.uniform(0.25, 0.5)
        p.imei_policy = rng.choice(["module", "sticky", "sticky"])
        p.tac_kind = "phone" if p.imei_policy == "sticky" else p.tac_kind
        p.human = rng.random() < 0.5
        if rng.random() < 0.5:
            p.auth_ms, p.auth_sigma = base + rng.uniform(100, 1500), rng.uniform(0.4, 0.8)
    elif family == "mobile":
        p.channels = rng.choice([2, 4, 4, 8])
        p.cells = w.cells[:] + rng.sample(w.neighbours, k=min(3, len(w.neighbours)))
        visits = []
        for _ in range(rng.randint(2, 6)):
            a = rng.uniform(w.t0, w.t1)
            visits.append((a, a + rng.uniform(1200, 3 * 3600)))
        visits.sort()
        p.schedule = visits if rng.random() < 0.7 else box_schedule(w, rng, "day")
        p.tac_kind = rng.choice(["module", "phone"])
    elif family == "wangiri":
        p.channels = rng.choice([8, 16, 32])
        p.answer_p = rng.uniform(0.02, 0.08)
        p.ring_noans = (1.0, rng.uniform(3.0, 7.0))
        p.gap_median = rng.uniform(2, 10)
        p.callback_p = rng.uniform(0.03, 0.12)
        p.short_median, p.long_median, p.p_long = 3.0, 20.0, 0.1
        p.daily_cap = rng.uniform(150, 700)
        p.sim_life_h = rng.uniform(2, 14)  # blocked quickly
    elif family == "bypass":
        p.channels = rng.choice([8, 16, 32])
        p.dial = "bypass"
        p.answer_p = rng.uniform(0.5, 0.72)
        p.gap_median = rng.uniform(20, 120)
        p.short_median, p.long_median, p.p_long = rng.uniform(20, 50), rng.uniform(90, 300), rng.uniform(0.5, 0.8)
        p.schedule = box_schedule(w, rng, "allday")
        p.params["evening"] = True
        p.callback_p = rng.uniform(0.005, 0.03)
        p.daily_cap = rng.uniform(80, 250)
    # some boxes are installed or switched off inside the window
    if rng.random() < 0.25:
        cut = rng.uniform(w.t0, w.t0 + 0.6 * (w.t1 - w.t0))
        p.schedule = [(max(a, cut), b) for a, b in p.schedule if b > cut]
    p.schedule = sorted((max(a, w.t0), min(b, w.t1)) for a, b in p.schedule if min(b, w.t1) > max(a, w.t0))
    return p


def run_box(w: World, rng: random.Random, idx: int, family: str) -> None:
    p = plan_box(w, rng, family, idx)
    mnc = rng.choice(OPERATORS[w.operator]["imsi_mnc"])
    batch = rng.random() < 0.6  # SIMs bought in one batch: consecutive IMSIs and numbers
    imsi_base = rng.randrange(10**9, 9 * 10**9)
    num_prefix = rng.choice(MVNO_PREFIXES + OPERATORS[w.operator]["prefixes"])
    num_base = rng.randrange(10**7, 9 * 10**7)
    counter = [0]
    sims: list[Sim] = []

    def new_sim() -> Sim:
        counter[0] += 1
        n = counter[0]
        imsi = w.new_imsi(rng, "460" + mnc, imsi_base + n * rng.choice([1, 1, 2]) if batch else None)
        msisdn = _batch_number(w, num_prefix, num_base + n) if batch else w.new_msisdn(rng)
        s = w.add_sim(Sim(imsi, msisdn, "simbox", family, p.box_id, p.box_id,
                          msisdn_known=rng.random() < w.q.p_msisdn_known))
        sims.append(s)
        return s

    tac = rng.choice(w.module_tacs if p.tac_kind == "module" else w.popular_tacs + w.phone_tacs[:20])
    serial = rng.randrange(0, 900_000)
    valid_luhn = rng.random() < 0.7
    modules = [make_imei(rng, tac, serial + i) for i in range(p.channels)]

    def fake_imei() -> str:
        t = rng.choice(w.popular_tacs + w.phone_tacs) if p.tac_kind == "phone" else tac
        return make_imei(rng, t, None, valid_luhn)

    dialer = Dialer(rng, p.dial)
    sticky: dict[str, str] = {}
    w.boxes.append({"box": p.box_id, "family": family, "channels": p.channels,
                    "imei_policy": p.imei_policy, "tac_kind": p.tac_kind, "dial": p.dial,
                    "answer_p": round(p.answer_p, 3), "daily_cap": round(p.daily_cap, 1),
                    "auth_ms": round(p.auth_ms, 1), "human": p.human,
                    **{k: (round(v, 2) if isinstance(v, float) else v) for k, v in p.params.items()}})

    def imei_for(sim: Sim, module: int) -> str:
        if p.imei_policy == "module":
            return present_imei(rng, w.q, modules[module])
        if p.imei_policy == "sticky":
            if sim.imsi not in sticky:
                sticky[sim.imsi] = present_imei(rng, w.q, fake_imei())
            return sticky[sim.imsi]
        return present_imei(rng, w.q, fake_imei())

    accomplices = [random_mobile(rng) for _ in range(rng.randint(3, 10))]
    if family == "simbank":
        bank = [new_sim() for _ in range(int(p.params["bank_sims"]))]
        last_used = {s.imsi: w.t0 - rng.uniform(0, 86400) for s in bank}
        busy_until = {s.imsi: w.t0 for s in bank}
        # modules ask the bank server for a SIM in time order; it hands out the one rested longest
        heap = [(w.t0 + rng.uniform(0, 300), m, True) for m in range(p.channels)]
        heapq.heapify(heap)
        while heap:
            t, m, first = heapq.heappop(heap)
            t2 = in_windows(t, p.schedule)
            if t2 is None or t2 >= w.t1:
                continue
            day = int((t2 - w.t0) // DAY)
            free = [s for s in bank if busy_until[s.imsi] <= t2
                    and s.calls_by_day.get(day, 0) < p.daily_cap]
            if not free:
                heapq.heappush(heap, (t2 + rng.uniform(60.0, 900.0), m, first))
                continue
            sim = min(free, key=lambda s: last_used[s.imsi] + rng.uniform(0, 600))
            imei = imei_for(sim, m)
            end_t = t2 + float(p.params["session_min"]) * 60 * rng.uniform(0.5, 1.5)
            t_end = run_channel(w, rng, p, sim, imei, t2 + rng.uniform(1, 20), end_t,
                                dialer, int(p.params["session_calls"] * rng.uniform(0.6, 1.4)),
                                accomplices, sims, attach=not (first and t2 < w.t0 + 900) or rng.random() < 0.15)
            if rng.random() < 0.7:
                w.feed.emit(t_end + rng.uniform(0.5, 5), "detach", sim, imei, p.cell)
            last_used[sim.imsi] = busy_until[sim.imsi] = t_end + 10.0
            heapq.heappush(heap, (t_end + rng.uniform(5, 120), m, False))
        return
    per_channel = int(p.params.get("sims_per_channel", 1))
    for m in range(p.channels):
        pool = [new_sim() for _ in range(per_channel)]
        t = w.t0 + rng.uniform(0, 900)
        k = 0
        while True:
            t2 = in_windows(t, p.schedule)
            if t2 is None or t2 >= w.t1:
                break
            sim = pool[k % len(pool)]
            k += 1
            imei = imei_for(sim, m)
            if per_channel > 1:  # low and slow: each SIM takes a short turn
                end_t = t2 + rng.uniform(1800, 4 * 3600)
                cap = max(1, int(p.daily_cap / max(1, len(pool)) * rng.uniform(0.5, 1.5) * 2))
            else:
                end_t = t2 + p.sim_life_h * 3600 * rng.uniform(0.3, 1.7)  # until the carrier blocks it
                cap = 10**6
            # a SIM already registered when the recording starts shows no attach for it
            t_end = run_channel(w, rng, p, sim, imei, t2 + rng.uniform(0, 30), end_t, dialer, cap,
                                accomplices, sims, attach=t2 > w.t0 + 900 or rng.random() < 0.15)
            if per_channel == 1 and t_end < w.t1 and end_t < w.t1:
                pool[0] = new_sim()  # blocked SIM replaced after a while
                t = t_end + rng.uniform(600, 7200)
            else:
                t = t_end + rng.uniform(60, 1800)


def run_channel(w: World, rng: random.Random, p: BoxPlan, sim: Sim, imei: str, t: float,
                end_t: float, dialer: Dialer, cap: int, accomplices: list[str],
                siblings: list[Sim], attach: bool) -> float:
    """One SIM in one module from t to end_t (or cap calls): returns when it stopped."""
    cell = p.cell if len(p.cells) == 1 or rng.random() < 0.8 else rng.choice(p.cells)
    if attach:
        emit_attach(w, sim, imei, t, cell, auth(rng, p.auth_ms, p.auth_sigma, 0.05))
        t += rng.uniform(2, 30)
    sim.imei_now, sim.cell_now = imei, cell
    n = 0
    day_count = sim.calls_by_day
    next_reattach = t + rng.uniform(1, 10) * 3600
    next_sms = t + rng.expovariate(1.0 / (4 * 3600))
    next_data = t + (rng.expovariate(1.0 / 2400) if p.human else 1e18)
    while t < end_t and t < w.t1 and n < cap:
        t2 = in_windows(t, p.schedule)
        if t2 is None or t2 >= end_t:
            break
        t = t2
        d = int((t - w.t0) // DAY)
        if day_count.get(d, 0) >= p.daily_cap * rng.uniform(0.8, 1.2):
            t = w.t0 + (d + 1) * DAY + rng.uniform(0, 3600)
            continue
        if p.family == "mobile" and rng.random() < 0.3:
            new_cell = rng.choice(p.cells)
            if new_cell != cell:
                w.feed.emit(t, "handover", sim, imei, cell, {"target_cell": new_cell})
                cell = new_cell
        if t > next_reattach:  # module re-registers (reboot, signal loss)
            emit_attach(w, sim, imei, t, cell, auth(rng, p.auth_ms, p.auth_sigma, 0.05))
            next_reattach = t + rng.uniform(1, 12) * 3600
            t += rng.uniform(5, 60)
        if t > next_sms:  # the operator's balance and promotion messages reach every SIM
            send_sms(w, sim, imei, t, cell, "mt", sms_sender(rng) if rng.random() < 0.6 else "s:" + rng.choice(SERVICE_NUMBERS[:3]))
            next_sms = t + rng.expovariate(1.0 / rng.uniform(3, 12) / 3600)
        if t > next_data:
            data_session(w, sim, imei, t, cell, int(lognorm(rng, rng.choice([3000, 30_000, 200_000]), 1.0)))
            next_data = t + rng.expovariate(1.0 / rng.uniform(900, 5400))
        # one outgoing call
        peer_sim = None
        if p.human and siblings and rng.random() < 0.18:
            cand = rng.choice(siblings)
            if cand is not sim and cand.imei_now:
                peer_sim = cand
        if peer_sim is not None:
            peer = num_of(peer_sim)
            answered = rng.random() < 0.9
            dur = lognorm(rng, rng.uniform(30, 180), 0.8)
        else:
            peer = dialer.next()
            answered = rng.random() < p.answer_p
            dur = lognorm(rng, p.long_median, 0.7) if rng.random() < p.p_long else lognorm(rng, p.short_median, 0.6)
        if answered:
            ring, cause = rng.uniform(3, 15), "normal"
        else:
            cause = rng.choices(["no_answer", "busy", "rejected", "failed", "unreachable", "cancelled"],
                                weights=[0.5, 0.15, 0.15, 0.08, 0.07, 0.05 if p.family != "wangiri" else 1.5])[0]
            ring = rng.uniform(*p.ring_noans) if cause in ("no_answer", "cancelled") else rng.uniform(0.5, 8)
            if rng.random() < 0.1:
                dialer.redial.append(peer)
        t_end, cell = place_call(w, rng, sim, imei, t, cell, "mo", peer, answered, dur, ring, cause,
                                 p.cells if p.family == "mobile" else None,
                                 peer_sim, (peer_sim.imei_now if peer_sim else ""), (peer_sim.cell_now if peer_sim else ""))
        n += 1
        day_count[d] = day_count.get(d, 0) + 1
        # victims and accomplices call back the local number they saw
        if peer_sim is None and (not answered or dur < 15) and rng.random() < p.callback_p:
            tb = t_end + rng.expovariate(1.0 / 1800)
            take = rng.random() < (0.6 if p.human or p.family == "wangiri" else 0.15)
            place_call(w, rng, sim, imei, tb, cell, "mt", peer, take, lognorm(rng, 40, 0.9),
                       rng.uniform(1, 25), rng.choice(["busy", "rejected", "no_answer"]))
        if p.human and rng.random() < 0.04:
            place_call(w, rng, sim, imei, t_end + rng.uniform(60, 3600), cell, "mt",
                       rng.choice(accomplices), True, lognorm(rng, 90, 0.8), rng.uniform(3, 12))
        if p.human and rng.random() < 0.06:
            tgt = rng.choice(siblings)
            send_sms(w, sim, imei, t_end + rng.uniform(5, 600), cell, "mo",
                     num_of(tgt) if tgt is not sim else random_mobile(rng))
        gap = lognorm(rng, p.gap_median, 0.9 if p.human else 0.5)
        if p.params.get("evening"):
            gap /= max(0.2, hour_profile_weight(w.local_hour(t_end)))
        t = t_end + gap
    return min(t, end_t, w.t1)


_EVENING = [0.5, 0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.4, 0.6, 0.7, 0.7, 0.7, 0.8, 0.8, 0.8,
            0.8, 0.9, 1.0, 1.2, 1.4, 1.5, 1.4, 1.1, 0.8]


def hour_profile_weight(h: float) -> float:
    return _EVENING[int(h) % 24]


# ---------------------------------------------------------------- assembling a site

def build_world(seed: int, t0: float, hours: float, late_share: float) -> World:
    rng = random.Random(f"blind:{seed}:site")
    q = Quirks.draw(rng, late_share)
    t1 = t0 + hours * 3600.0
    operator = rng.choice(["cmcc", "cmcc", "unicom", "telecom"])
    mccmnc = str(OPERATORS[operator]["mccmnc"])
    lac = rng.randrange(4096, 65000)
    site_ci = rng.randrange(1000, 60000)
    cells = [f"{mccmnc}-{lac}-{site_ci + k}" for k in range(rng.choice([3, 3, 6, 9]))]
    neighbours = [f"{mccmnc}-{lac if rng.random() < 0.7 else lac + rng.randint(1, 9)}-{rng.randrange(1000, 65000)}"
                  for _ in range(rng.randint(6, 15))]
    feed = Feed(q, random.Random(f"blind:{seed}:feed"), t0, t1, cells)
    w = World(seed, rng, feed, q, t0, t1, operator, cells, neighbours)
    # handset and module type allocation codes: made up, but shaped like real ones
    w.phone_tacs = [rng.choice(["35", "86", "35", "86", "01"]) + digits(rng, 6) for _ in range(400)]
    w.popular_tacs = w.phone_tacs[:25]
    w.feature_tacs = [rng.choice(["35", "86"]) + digits(rng, 6) for _ in range(30)]
    w.module_tacs = ["86" + digits(rng, 6) for _ in range(rng.randint(6, 20))]
    return w


def generate(seed: int, subscribers: int, hours: float, out_dir: str,
             late_share: float = 0.0, boxes: int | None = None, start: float | None = None) -> dict[str, object]:
    """Generate one site; write events.jsonl and truth.json into out_dir."""
    if start is None:
        srng = random.Random(f"blind:{seed}:start")
        day = srng.randrange(0, 365)
        start = 1_767_225_600 + day * DAY - LOCAL_OFFSET_S  # a local midnight in 2026
    w = build_world(seed, start, hours, late_share)
    prng = random.Random(f"blind:{seed}:population")
    scale = subscribers / 8000.0
    n_left = subscribers
    idx = 0
    groups: list[tuple[str, int]] = []
    for _ in range(max(1, poisson(prng, 1.6 * scale))):
        groups.append(("call_centre", prng.randint(8, 40)))
    for _ in range(poisson(prng, 1.2 * scale)):
        groups.append(("shop_activation", prng.randint(6, 30)))
    for _ in range(max(1, poisson(prng, 6 * scale))):
        groups.append(("iot", prng.randint(2, 60)))
    for _ in range(poisson(prng, 4 * scale)):
        groups.append(("fixed_wireless", prng.randint(1, 6)))
    shares = {"sales": prng.uniform(0.008, 0.025), "taxi": prng.uniform(0.008, 0.03),
              "courier": prng.uniform(0.003, 0.012), "elderly": prng.uniform(0.04, 0.1),
              "roamer": prng.uniform(0.004, 0.02), "dual_sim": prng.uniform(0.03, 0.08)}
    for _name, size in groups:
        n_left -= size
    singles: list[str] = []
    for name, share in shares.items():
        k = int(round(share * subscribers))
        singles += [name] * k
        n_left -= k * (2 if name == "dual_sim" else 1)
    singles += ["ordinary"] * max(0, n_left)
    prng.shuffle(singles)
    # site numbers that ordinary people can call (so some mt legs come from neighbours)
    for gi, (name, size) in enumerate(groups):
        r = random.Random(f"blind:{seed}:group:{gi}")
        if name == "call_centre":
            spawn_call_centre(w, r, gi, size)
        elif name == "shop_activation":
            spawn_shop(w, r, gi, size)
        else:
            spawn_iot_fleet(w, r, gi, size, name)
    for i, name in enumerate(singles):
        r = random.Random(f"blind:{seed}:person:{i}")
        if name == "dual_sim":
            spawn_dual_sim(w, r, i)
        else:
            pk = r.choices(["resident", "worker", "passer"], weights=[0.55, 0.3, 0.15])[0]
            spawn_person(w, r, name, i, pk)
        if i % 7 == 0 and w.sims:
            w.site_numbers.append(w.sims[-1])
        idx += 1
    n_boxes = boxes if boxes is not None else max(2, int(round(15 * scale * prng.uniform(0.7, 1.3))))
    fam_w = [prng.gammavariate(3.0, 1.0) for _ in BOX_FAMILIES]
    for b in range(n_boxes):
        r = random.Random(f"blind:{seed}:box:{b}")
        fam = BOX_FAMILIES[b] if b < len(BOX_FAMILIES) and n_boxes >= len(BOX_FAMILIES) else \
            r.choices(BOX_FAMILIES, weights=fam_w)[0]
        run_box(w, r, b, fam)
    os.makedirs(out_dir, exist_ok=True)
    n_lines = w.feed.write(os.path.join(out_dir, "events.jsonl"))
    seen = [s for s in w.sims if s.n_events > 0]
    truth = {
        "generator": "simulators.blind.events",
        "seed": seed, "subscribers": subscribers, "hours": hours, "t0": w.t0, "t1": w.t1,
        "operator": w.operator, "cells": w.cells, "lines": n_lines,
        "quirks": {k: v for k, v in w.q.__dict__.items() if k != "key_order"},
        "boxes": w.boxes,
        "sims": {s.imsi: {"class": s.klass, "family": s.family, "device": s.device,
                          "group": s.group, "events": s.n_events, "mo_calls": s.n_mo_calls,
                          "first_ts": round(s.first_ts, 3) if s.first_ts is not None else None,
                          "first_mo_ts": round(s.first_mo_ts, 3) if s.first_mo_ts is not None else None,
                          "active_days": sorted(s.days)}
                 for s in sorted(seen, key=lambda s: s.imsi)},
    }
    with open(os.path.join(out_dir, "truth.json"), "w", encoding="utf-8") as fh:
        json.dump(truth, fh, indent=1, sort_keys=True)
    return truth


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m simulators.blind.events",
        description="Blind base-station event generator (field-formats.md 1b).",
        epilog="example: python -m simulators.blind.events --seed 1 --subscribers 8000 --hours 24 --out /tmp/blind1")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--subscribers", type=int, default=8000, help="normal SIMs (boxes come on top)")
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--out", required=True, help="directory for events.jsonl and truth.json")
    ap.add_argument("--boxes", type=int, default=None, help="number of SIM-boxes (default ~15 per 8,000)")
    ap.add_argument("--late-share", type=float, default=0.0,
                    help="share of lines written up to 5 s late, as a live recording would hold them "
                         "(default 0: the file is ordered by ts, as the format says)")
    a = ap.parse_args(argv)
    if a.subscribers < 1 or a.hours <= 0:
        ap.error("--subscribers must be >= 1 and --hours > 0")
    t = time.monotonic()
    truth = generate(a.seed, a.subscribers, a.hours, a.out, a.late_share, a.boxes)
    sims = truth["sims"]
    assert isinstance(sims, dict)
    n_box = sum(1 for v in sims.values() if v["class"] == "simbox")
    print(f"{truth['lines']} lines, {len(sims)} SIMs seen ({n_box} in {len(truth['boxes'])} boxes) "  # type: ignore[arg-type]
          f"-> {a.out} in {time.monotonic() - t:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
