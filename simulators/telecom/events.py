"""Seeded base-station event generator (field-formats 1b) with a truth file.

A site's subscribers (ordinary users and hard negatives) and SIM-boxes of several
independent families share the cells; events come out ordered by event time, streamed
hour by hour so memory stays flat however long the simulated period.

Nothing here comes from the detectors (no import from ``edge``): the module TACs are
this generator's own list, the personas follow domain.md, and every entity draws its
own behaviour parameters.

Families (``family`` in the truth file). Normal (label ``normal``, the ``persona``):
- ``ordinary``: people; some have mobile data switched off, some never text;
- ``call_centre``: teams of 3 to 130 agents on mobile SIMs in one office (one to three
  cells), dialling numbers all over the country in their hours (work, late, day or
  round the clock), a few calls back; some on predictive diallers (short, mostly
  unanswered calls); some teams on batches of phones with consecutive IMEIs (gaps
  allowed); some agents split the day between two SIMs in one phone;
- ``sales_team``: reps on the move, dialling everywhere, many cells, teams up to 40;
- ``taxi``: drivers on the move, more incoming than outgoing;
- ``elderly``: only call out, to a handful of numbers, no data, no SMS, one cell;
- ``iot``: data modules on module TACs (fleets of up to 200 with consecutive serials);
  a few place voice calls;
- ``iot_voice``: module fleets that call: alarm panels and lift phones (test and
  event calls to one to three numbers of a monitoring centre), fixed-wireless desk
  phones (an office's lines);
- ``dual_sim``: two SIMs in one phone on two consecutive IMEIs (the second quieter,
  as busy as the first, or data only);
- ``phone_shop``: new SIMs put through a shop's handset in opening hours (an attach,
  the operator's SMS, zero to three test calls), then into the buyer's own phone
  (most) or a drawer: one IMEI carrying 5-40 SIMs a day;
- ``roamer``: foreign SIMs, slow authentication (the home network answers), many
  with data off (roaming charges).
Ordinary people also change handsets (1.5 %) or swap a second SIM into their phone
for a while (2 %): a person's IMEI carrying two SIMs.
SIM-boxes (label ``simbox``, the ``evasion`` family):
- ``naive``: one local SIM per port, consecutive IMEIs (module or rewritten), calls
  around the clock; some ring once and hang up (one-ring callbacks);
- ``rotation``: a SIM bank rotates a pool of SIMs through the ports, whose IMEIs are
  rewritten to smartphone TACs (some with a bad Luhn digit); slow and variable
  authentication at every insertion;
- ``human``: sticky rewritten IMEI per SIM, day-time pattern, SIMs call each other,
  SMS, data and incoming calls;
- ``low_slow``: rotation with a per-SIM rate under per-SIM thresholds; half of these
  boxes rewrite a phone IMEI per SIM (no two SIMs on one IMEI);
- ``mobile``: a box that drifts over cells (reselection, a box in a vehicle), sends
  SMS, opens data sessions and accepts calls;
- ``bypass``: international termination: calls from abroad re-originated to the
  callers' families, answered conversations of minutes, the same callees again and
  again, evening-heavy.
Boxes have 1 to 32 ports (domain.md), most of them a size gateways are sold with.
Every box additionally draws, independently, whether it sends some SMS, opens data
sessions, accepts incoming calls, drifts over cells, uses banked (slow) SIMs and how
its IMEIs look, so no single feature tells the families or the classes apart.

Parameter ranges: every continuous parameter has one range [lo, hi]; it is cut into
six equal bands and the ``train`` profile draws only from bands 1, 3, 5, the
``heldout`` profile only from bands 2, 4, 6. The two never share a value, they cover
the same span (interpolation, not extrapolation). Discrete choices (family mix, hour
profile, IMEI scheme, team sizes) are drawn the same way in both profiles.

A box powers on at one moment: its ports attach within 5-120 s of each other and start
calling; a quarter of the boxes are already on when the feed starts (no power-on
attaches). Crowds attach together without any box too: a cell restart re-attaches
every phone camped on it within seconds. Call centres and sales reps get some of
their calls returned by the numbers they dialled (so do boxes that accept calls:
victims return missed calls); half the people know a few other local subscribers,
whose side of the call is in the feed too.
The truth file lists every SIM (label, family, device, IMEIs, first event, first
outgoing call, evidence time) and every device. Evidence time for a box SIM is the
start of its ``EVIDENCE_CALLS``-th outgoing call; the honest delay is measured from
the first outgoing call (``first_mo_ts``).
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

EVIDENCE_CALLS = 10
EVASION_LEVELS = ("naive", "rotation", "human", "low_slow", "mobile", "bypass")
NORMAL_FAMILIES = ("ordinary", "call_centre", "sales_team", "taxi", "elderly", "iot",
                   "dual_sim", "roamer", "phone_shop", "iot_voice")
MAX_PORTS = 32  # domain.md: GoIP gateways have 1 to 32 channels
# Channel counts gateway products are sold with (most boxes have one of them).
_PORT_SIZES = (1, 2, 4, 8, 16, 32)
BANDS = 6

# Hourly activity profile of ordinary people (fraction of peak), hour 0..23 (local).
_DIURNAL = [0.05, 0.03, 0.02, 0.02, 0.03, 0.08, 0.25, 0.55, 0.8, 0.9, 0.95, 0.9,
            0.85, 0.9, 0.95, 0.9, 0.9, 0.95, 1.0, 0.95, 0.8, 0.6, 0.35, 0.15]
_ROAMER_MCCMNC = ("45400", "45406", "31026", "23415", "50212", "52001", "44010", "45005")
_LOCAL_MCCMNC = ("46000", "46001", "46002", "46011")
# This generator's own cellular-module TACs (GSM/LTE modules of IoT devices and
# gateways), written independently of any detector's list.
_MODULE_TACS = ("86701203", "86455004", "86992105", "35792306", "86310207", "86058808",
                "35604109", "86877510", "86123411", "35219912", "86645013", "86534114",
                "35388215", "86207316", "86799417", "35041518")

# One range per continuous parameter: name -> (lo, hi); see the module docstring for
# how train and heldout draw from it. Rates are per hour at peak.
_R: dict[str, dict[str, tuple[float, float]]] = {
    "ordinary": {"mo": (0.1, 2.0), "mt": (0.1, 1.8), "sms": (0.05, 2.0), "data": (0.3, 9),
                 "ans": (0.6, 0.95), "dur": (30, 180), "dsig": (0.6, 1.3)},
    "call_centre": {"mo": (4, 28), "mt": (0.05, 2.0), "sms": (0.0, 0.3), "data": (0.1, 2),
                    "ans": (0.25, 0.7), "dur": (30, 170), "dsig": (0.4, 1.1)},
    "sales_team": {"mo": (1.5, 9), "mt": (0.4, 3), "sms": (0.1, 1.5), "data": (0.5, 6),
                   "ans": (0.45, 0.85), "dur": (45, 240), "dsig": (0.5, 1.1)},
    "taxi": {"mo": (0.6, 4), "mt": (1, 5), "sms": (0.05, 1), "data": (2, 12),
             "ans": (0.65, 0.95), "dur": (15, 70), "dsig": (0.4, 0.9)},
    "elderly": {"mo": (0.1, 1.2), "ans": (0.5, 0.9), "dur": (50, 350), "dsig": (0.5, 1.2)},
    "iot": {"data": (0.5, 12), "sms": (0.01, 0.2), "mo": (0.05, 0.6)},
    "naive": {"mo": (5, 32), "ans": (0.2, 0.65), "dur": (15, 80), "dsig": (0.25, 1.0)},
    "rotation": {"mo": (3, 16), "ans": (0.2, 0.7), "dur": (15, 90), "dsig": (0.3, 1.0)},
    "human": {"mo": (1.8, 9), "ans": (0.3, 0.75), "dur": (20, 130), "dsig": (0.4, 1.1)},
    "low_slow": {"mo": (0.3, 3.0), "ans": (0.25, 0.7), "dur": (15, 90), "dsig": (0.4, 1.1)},
    "mobile": {"mo": (2, 14), "ans": (0.25, 0.75), "dur": (20, 120), "dsig": (0.4, 1.1)},
    # International termination (bypass): calls from abroad re-originated locally to
    # the callers' families: conversations, mostly answered, the same callees again.
    "bypass": {"mo": (1.5, 12), "ans": (0.45, 0.8), "dur": (70, 420), "dsig": (0.5, 1.2)},
    # Phone shop: new SIMs put through the shop's handset (per SIM: test calls).
    "phone_shop": {"mo": (0.3, 2.5), "ans": (0.3, 0.9), "dur": (5, 60), "dsig": (0.4, 1.0)},
    # Voice on modules: alarm panels, lift phones, fixed-wireless desk phones.
    "iot_voice": {"mo": (0.04, 1.5), "mt": (0.0, 0.8), "ans": (0.7, 0.99), "dur": (8, 120),
                  "dsig": (0.3, 1.0), "data": (0.0, 3.0)},
    # Attach authentication round trips (ms): phones, roamers, banked SIMs.
    "auth": {"phone": (18, 140), "roamer": (180, 900), "bank": (250, 2200),
             "local_box": (35, 260)},
    # Evasive extras a box may add (per SIM per hour).
    "box_extra": {"sms": (0.02, 0.5), "data": (0.05, 2.0), "mt": (0.05, 0.8),
                  "handover": (0.2, 2.0)},
}

# Share of the non-box subscribers per family (the rest are ordinary); dual_sim
# counts SIMs (two per person).
_MIX = {"call_centre": 0.04, "sales_team": 0.02, "taxi": 0.02, "elderly": 0.03,
        "iot": 0.03, "dual_sim": 0.03, "roamer": 0.015, "phone_shop": 0.012,
        "iot_voice": 0.015}


@dataclass
class EventSimConfig:
    seed: int = 1
    start_ts: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    hours: float = 24.0
    subscribers: int = 2000
    simbox_devices: int = 3
    """Boxes, spread round-robin over ``evasion`` families."""
    ports_per_device: int = 8
    """Sets the most ports a box draws: ``min(MAX_PORTS, 4 x ports_per_device)``."""
    min_ports: int = 1
    """The fewest ports a box draws (a test that needs a box seen within an hour)."""
    evasion: tuple[str, ...] = EVASION_LEVELS
    profile: str = "train"
    """Parameter bands: ``train`` or ``heldout``."""
    mcc_mnc: str = "46000"
    cells: int = 12
    utc_offset_h: int = 8
    """Local time of the site (activity profiles follow local hours)."""
    warmup_h: float = 0.0
    """Hours at the start of ``hours`` before the period of interest: the site runs as
    ever (boxes already on keep calling) but no box powers on in them, so a detector
    that starts with the feed has full windows when the period begins, as an agent
    that has been running for a while has (training takes its rows after them)."""


@dataclass
class _Behav:
    mo: float = 0.0
    mt: float = 0.0
    sms: float = 0.0
    data: float = 0.0
    ans: float = 0.8
    dur_mu: float = 4.0
    dur_sig: float = 1.0
    hours: str = "diurnal"  # diurnal | work | late | flat | day | evening | shop
    p_contact: float = 0.8
    handover: float = 0.05
    auth_mu: float = 35.0
    auth_sd: float = 8.0
    reattach: float = 0.05
    anywhere: bool = False  # dials numbers all over the country (no contacts)
    callback: float = 0.0  # share of incoming calls that return a call this SIM placed
    ring: tuple[float, float] | None = None  # hang up after this many s unanswered (one-ring)


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
    dialled: list[str] = field(default_factory=list)  # recent B-numbers (callbacks)
    active: tuple[int, int] | None = None
    """Hours (from the start) in which the SIM is in its phone; None: all day."""
    moves: list[tuple[int, str]] = field(default_factory=list)
    """(hour, IMEI): the SIM moves to another phone in that hour (a new handset)."""
    shop: tuple[float, str, str, list[str], _Behav | None] | None = None
    """A new SIM put through a phone shop's handset: (time, shop IMEI, shop cell, own
    cells, behaviour afterwards in its own phone or None: not seen again)."""


@dataclass
class _Box:
    name: str
    level: str
    cells: list[str]
    port_imeis: list[str]
    pool: list[_Sub]
    start_h: int
    on_s: float  # seconds into the start hour when the box powers on
    rotate: bool
    running: bool = False  # already on when the feed starts: no power-on attaches seen
    on_spread: float = 60.0  # seconds over which the ports attach at power-on
    dwell_h: tuple[int, int] = (1, 3)
    dwell: list[int] = field(default_factory=list)
    in_port: list[_Sub | None] = field(default_factory=list)
    queue: list[_Sub] = field(default_factory=list)
    sticky_imei: bool = False  # rotating SIMs keep an IMEI of their own (rewritten per SIM)


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


def _imei_from(tac: str, serial: int, bad_luhn: bool = False) -> str:
    body = tac + f"{serial % 1_000_000:06d}"
    check = luhn_digit(body)
    if bad_luhn:  # a rewritten IMEI whose tool got the check digit wrong
        check = str((int(check) + 1 + serial % 8) % 10)
    return body + check


class EventSimulator:
    """Builds the site from the config; :meth:`events` streams its events."""

    def __init__(self, cfg: EventSimConfig) -> None:
        if cfg.profile not in ("train", "heldout"):
            raise ValueError(f"unknown profile {cfg.profile!r}")
        bad = [e for e in cfg.evasion if e not in EVASION_LEVELS]
        if bad:
            raise ValueError(f"unknown box family {bad[0]!r}")
        self.cfg = cfg
        self._band0 = 0 if cfg.profile == "train" else 1
        self.rng = random.Random(cfg.seed)
        r = self.rng
        self.auth_missing = r.uniform(0.0, 0.5)  # share of attaches without auth_ms
        self.cell_ids = [f"{cfg.mcc_mnc}-{r.randint(1000, 9999)}-{r.randint(1000, 65000)}"
                         for _ in range(cfg.cells)]
        # A world of phone TACs (shared by people and by boxes that rewrite IMEIs).
        self.phone_tacs = [f"{r.choice(('35', '86', '01'))}{r.randint(0, 999999):06d}"
                           for _ in range(300)]
        self.region_prefixes = [f"861{r.randint(30, 99)}{r.randint(0, 99):02d}"
                                for _ in range(400)]
        self.subs: list[_Sub] = []
        self.boxes: list[_Box] = []
        self._seq = 0
        self._call_no = 0
        self._build_people()
        self._build_boxes()
        # Local numbers: a call to one of them shows up on the callee's side too.
        self._by_msisdn = {s.msisdn: s for s in self.subs}
        self._local_contacts()
        # Cell restarts (a base-station reboot, a power cut): every phone camped on
        # the cell re-attaches within seconds, a crowd attaching together that is no
        # box. Zero, one or two per cell and day.
        span_h = max(1.0, cfg.hours)
        self.outages: list[tuple[float, str]] = sorted(
            (cfg.start_ts + r.uniform(0, span_h * 3600), c) for c in self.cell_ids
            for _ in range(_poisson(r, 0.3 * span_h / 24)))

    # -- parameters
    def _band(self, lo: float, hi: float) -> float:
        """A value of [lo, hi] from this profile's bands only (see the docstring)."""
        r = self.rng
        width = (hi - lo) / BANDS
        k = 2 * r.randrange(BANDS // 2) + self._band0
        return lo + width * (k + r.random())

    def _u(self, family: str, key: str) -> float:
        lo, hi = _R[family][key]
        return self._band(lo, hi)

    def _auth(self, b: _Behav, kind: str) -> None:
        b.auth_mu = self._u("auth", kind)
        spread = (0.1, 0.4) if kind in ("phone", "local_box") else (0.25, 0.7)
        b.auth_sd = b.auth_mu * self._band(*spread)

    # -- identities
    def _phone_imei(self, bad_luhn: bool = False) -> str:
        return _imei_from(self.rng.choice(self.phone_tacs), self.rng.randint(0, 999_999),
                          bad_luhn)

    def _imsi(self, mccmnc: str | None = None) -> str:
        r = self.rng
        mm = mccmnc or r.choice(_LOCAL_MCCMNC)
        return mm + f"{r.randint(0, 10 ** (15 - len(mm)) - 1):0{15 - len(mm)}d}"

    def _number(self, prefix: str | None = None) -> str:
        r = self.rng
        p = prefix or r.choice(self.region_prefixes)
        return p + f"{r.randint(0, 10 ** (13 - len(p)) - 1):0{13 - len(p)}d}"

    def _own_number(self) -> str:
        return self._number("861" + str(self.rng.randint(30, 99)))

    # -- building the site
    def _person(self, persona: str, imei: str | None = None,
                mccmnc: str | None = None, cells: list[str] | None = None) -> _Sub:
        r = self.rng
        b = _Behav()
        key = "ordinary" if persona in ("dual_sim", "roamer") else persona
        for k in ("mo", "mt", "sms", "data", "ans", "dur", "dsig"):
            if k not in _R[key]:
                continue
            v = self._u(key, k)
            if k == "dur":
                b.dur_mu = math.log(v)
            elif k == "dsig":
                b.dur_sig = v
            else:
                setattr(b, k, v)
        self._auth(b, "phone")
        b.reattach = self._band(0.02, 0.2)
        n_cells = r.randint(1, 4)
        if persona == "ordinary" or persona == "dual_sim":
            if r.random() < 0.2:
                b.data = 0.0  # mobile data off (Wi-Fi only)
            if r.random() < 0.15:
                b.sms = 0.0
            b.p_contact = self._band(0.5, 0.95)
            b.handover = self._band(0.0, 0.4)
        elif persona == "call_centre":
            b.hours, b.p_contact, n_cells, b.anywhere = "work", self._band(0.0, 0.1), 1, True
            # Customers return the calls they missed; some centres are outbound only.
            b.callback = self._band(0.2, 0.8) if r.random() < 0.8 else 0.0
            if r.random() < 0.4:
                b.data = 0.0
        elif persona == "sales_team":
            b.hours, b.p_contact, n_cells = "day", self._band(0.1, 0.5), r.randint(3, 10)
            b.handover, b.anywhere = self._band(0.3, 1.5), True
            b.callback = self._band(0.2, 0.8)
        elif persona == "taxi":
            b.hours, b.p_contact, n_cells = r.choice(("day", "flat")), 0.5, r.randint(5, 12)
            b.handover = self._band(0.8, 3.0)
        elif persona == "elderly":
            b.hours, b.p_contact, n_cells, b.handover = "day", self._band(0.85, 1.0), 1, 0.0
        elif persona == "iot_voice":
            # Voice on modules (set per fleet in _team): alarm panels, lift phones,
            # fixed-wireless desk phones.
            b.hours, n_cells, b.p_contact, b.sms = "flat", 1, 1.0, 0.0
            self._auth(b, "local_box")
        elif persona == "iot":
            b.hours, n_cells = "flat", 1
            if r.random() < 0.8:
                b.mo = 0.0  # most modules never place a voice call
            b.ans, b.dur_mu, b.dur_sig, b.p_contact = 0.9, math.log(25.0), 0.4, 1.0
            self._auth(b, "local_box")
        elif persona == "roamer":
            self._auth(b, "roamer")
            b.mo *= self._band(0.3, 1.0)
            b.p_contact = self._band(0.4, 0.9)
            if r.random() < 0.5:
                b.data = 0.0  # roaming charges
        if cells is None:
            cells = r.sample(self.cell_ids, k=min(n_cells, len(self.cell_ids)))
        if imei is None:
            tac = (r.choice(_MODULE_TACS) if persona in ("iot", "iot_voice")
                   else r.choice(self.phone_tacs))
            imei = _imei_from(tac, r.randint(0, 999_999))
        n_contacts = (r.randint(2, 8) if persona in ("elderly", "iot", "iot_voice")
                      else r.randint(5, 60))
        contacts = [self._number() for _ in range(n_contacts)]
        return _Sub(self._imsi(mccmnc), imei, self._own_number(), persona, "normal", b,
                    cells, contacts, imeis={imei})

    def _team(self, persona: str, k: int) -> list[_Sub]:
        """Call-centre teams, sales teams and IoT fleets: several SIMs of one
        organisation; some on one batch of devices with consecutive serials."""
        r = self.rng
        out: list[_Sub] = []
        module = persona in ("iot", "iot_voice")
        # Team sizes of every scale: a few desks to 100+ seats, fleets of hundreds.
        top = {"call_centre": 130, "sales_team": 40, "iot": 200, "iot_voice": 60}[persona]
        while len(out) < k:
            size = min(k - len(out), int(round(math.exp(r.uniform(math.log(2.5),
                                                                  math.log(top))))))
            office = r.sample(self.cell_ids, k=min(len(self.cell_ids),
                                                   1 if module else r.randint(1, 3)))
            batch = module or r.random() < 0.4
            # A big office buys phones in several batches; a batch may leave gaps.
            step = 1 if r.random() < 0.7 else r.randint(1, 3)
            tac = r.choice(_MODULE_TACS if module else self.phone_tacs)
            serial = r.randint(0, 999_000 - 3 * size)
            team_b = self._team_style(persona)
            for i in range(size):
                imei = _imei_from(tac, serial + i * step) if batch else None
                s = self._person(persona, imei,
                                 cells=list(office) if persona != "sales_team" else None)
                team_b(s)
                out.append(s)
                if persona == "call_centre" and r.random() < 0.12:
                    # An agent splitting the day between two SIMs in one phone (a
                    # second line once the first hit its daily limit, or a shift's).
                    s2 = self._person(persona, s.imei, cells=list(s.cells))
                    team_b(s2)
                    cut = r.randint(3, 20)
                    s.active, s2.active = (0, cut), (cut, 10 ** 6)
                    out.append(s2)
        return out

    def _team_style(self, persona: str) -> Any:
        """What one organisation's SIMs share (hours, dialling style), as a function
        that applies it to each member."""
        r = self.rng
        if persona == "call_centre":
            hours = r.choice(("work", "work", "late", "day", "flat"))
            dialer = r.random() < 0.3  # a predictive dialler: many short unanswered calls
            boost = self._band(1.0, 1.6) if r.random() < 0.3 else 1.0
            ans, dur = (self._band(0.1, 0.35), math.log(self._band(10, 60))) if dialer \
                else (None, None)

            def cc(s: _Sub) -> None:
                s.b.hours = hours
                s.b.mo *= boost
                if ans is not None and dur is not None:
                    s.b.ans, s.b.dur_mu = ans, dur
            return cc
        if persona == "iot_voice":
            kind = r.choice(("alarm", "alarm", "lift", "desk"))
            centre = [self._number() for _ in range(r.randint(1, 3))]

            def iv(s: _Sub) -> None:
                b = s.b
                if kind == "desk":  # fixed-wireless desk phones: an office's lines
                    b.hours, b.p_contact = "work", self._band(0.2, 0.8)
                    b.mt = self._band(0.1, 0.9)
                    b.callback = self._band(0.1, 0.6)
                else:  # alarm panels, lift phones: test calls and events to a centre
                    s.contacts = list(centre)
                    b.mo = self._band(0.04, 0.4) if kind == "alarm" else self._band(0.02, 0.1)
                    b.mt = self._band(0.0, 0.05)
                    b.dur_mu = math.log(self._band(5, 40))
            return iv
        return lambda s: None

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
                    b = self._person("dual_sim", _imei_from(tac, serial + 1), cells=a.cells)
                    # The second SIM: quieter, a work line as busy as the first, or
                    # data only.
                    style = r.random()
                    if style < 0.55:
                        b.b.mo *= self._band(0.1, 0.8)
                    elif style < 0.85:
                        b.b.mo *= self._band(0.8, 2.5)
                        b.b.anywhere = r.random() < 0.5
                        b.b.p_contact *= self._band(0.2, 0.8)
                    else:
                        b.b.mo, b.b.mt = 0.0, b.b.mt * 0.2
                    people += [a, b]
            elif persona == "phone_shop":
                people += self._shops(k)
            elif persona == "roamer":
                people += [self._person("roamer", mccmnc=r.choice(_ROAMER_MCCMNC))
                           for _ in range(k)]
            elif persona in ("call_centre", "sales_team", "iot", "iot_voice"):
                people += self._team(persona, k)
            else:
                people += [self._person(persona) for _ in range(k)]
        while len(people) < n:
            people.append(self._person("ordinary"))
        people = people[:n] if len(people) > n else people
        hours = max(1, int(math.ceil(cfg.hours)))
        extra: list[_Sub] = []
        for s in people:
            if s.persona != "ordinary":
                continue
            u = r.random()
            if u < 0.015 and hours > 1:  # a new handset during the day
                s.moves.append((r.randint(1, hours - 1), self._phone_imei()))
            elif u < 0.035 and hours > 1:
                # Two SIMs, one single-SIM phone: the second swapped in for a while
                # (a cheaper tariff, a work line, a relative's SIM).
                o = self._person("ordinary", s.imei, cells=list(s.cells))
                at = r.randint(0, hours - 1)
                o.active = (at, at + r.randint(1, 8))
                o.b.callback = s.b.callback
                extra.append(o)
        self.subs.extend(people + extra)

    def _shops(self, k: int) -> list[_Sub]:
        """Phone shops: new SIMs (5-40 a day per shop) put through the shop's
        handset in opening hours (an attach, the operator's SMS, a test call or
        two), then into the customer's own phone (most) or a drawer."""
        r = self.rng
        cfg = self.cfg
        hours = max(1.0, cfg.hours)
        out: list[_Sub] = []
        while len(out) < k:
            size = min(k - len(out), r.randint(5, 40))
            cell = r.choice(self.cell_ids)
            handset = self._phone_imei()
            open_h, close_h = r.randint(8, 11), r.randint(18, 22)
            for _ in range(size):
                for _try in range(20):  # an opening hour of the shop (local time)
                    ts = cfg.start_ts + r.uniform(0, hours * 3600 - 1)
                    hod = int(((ts // 3600) + cfg.utc_offset_h) % 24)
                    if open_h <= hod < close_h:
                        break
                after = self._person("ordinary") if r.random() < 0.75 else None
                s = self._person("phone_shop", handset, cells=[cell])
                s.b.mt = s.b.sms = s.b.data = 0.0
                s.b.p_contact = 0.0
                s.b.hours = "flat"
                s.shop = (ts, handset, cell, after.cells if after else [cell],
                          after.b if after else None)
                if after is not None:
                    s.contacts = after.contacts
                    s.moves.append((-1, after.imei))
                out.append(s)
        return out

    def _local_contacts(self) -> None:
        """Half of the people who have contacts know a few other subscribers of the
        site (family, colleagues, the taxi they call): calls between them appear on
        both sides, so calling local numbers is not a box's privilege."""
        r = self.rng
        people = [s for s in self.subs if s.label == "normal" and s.persona in (
            "ordinary", "dual_sim", "taxi", "elderly", "sales_team", "roamer")]
        if len(people) < 10:
            return
        for s in people:
            if r.random() < 0.5 and s.contacts:
                for _ in range(min(len(s.contacts), r.randint(1, 5))):
                    other = r.choice(people)
                    if other is not s:
                        s.contacts[r.randrange(len(s.contacts))] = other.msisdn

    def _box_sim_budget(self) -> int:
        # Rough count of box SIMs, so ``subscribers`` stays close to the total.
        return self.cfg.simbox_devices * self.cfg.ports_per_device * 2

    def _port_imeis(self, level: str, ports: int) -> list[str]:
        """How the box's port IMEIs look: consecutive (module or one rewritten phone
        TAC) or one random phone IMEI each; rewritten ones sometimes fail Luhn."""
        r = self.rng
        scheme = r.choices(("module_consecutive", "phone_consecutive", "phone_random"),
                           weights=(6, 3, 1) if level == "naive" else (1, 2, 6))[0]
        bad = r.random() < 0.35
        if scheme == "phone_random":
            return [self._phone_imei(bad and r.random() < 0.5) for _ in range(ports)]
        tac = r.choice(_MODULE_TACS if scheme == "module_consecutive" else self.phone_tacs)
        serial = r.randint(0, 999_000)
        return [_imei_from(tac, serial + i, bad and scheme != "module_consecutive"
                           and r.random() < 0.5) for i in range(ports)]

    def _build_boxes(self) -> None:
        cfg, r = self.cfg, self.rng
        hours = max(1, int(math.ceil(cfg.hours)))
        for d in range(cfg.simbox_devices):
            level = cfg.evasion[d % len(cfg.evasion)]
            ports = self._ports()
            home = r.choice(self.cell_ids)
            drift = level == "mobile" or r.random() < 0.2
            cells = [home] + (r.sample([c for c in self.cell_ids if c != home],
                                       k=min(len(self.cell_ids) - 1, r.randint(1, 4)))
                              if drift else [])
            port_imeis = self._port_imeis(level, ports)
            rotate = level in ("rotation", "low_slow") or (
                level in ("mobile", "bypass") and r.random() < 0.3)
            # Low and slow boxes, and some others, rewrite a phone IMEI per SIM and
            # keep it whatever port the SIM is in: no SIM shares an IMEI.
            sticky = rotate and (r.random() < (0.5 if level == "low_slow" else 0.15))
            banked = (rotate and r.random() < 0.8) or r.random() < 0.3
            pool_n = int(round(ports * self._band(1.5, 4.0))) if rotate else ports
            hours_on = {"naive": "flat", "rotation": r.choice(("flat", "flat", "day")),
                        "human": "day", "bypass": r.choice(("evening", "evening", "diurnal"))
                        }.get(level, r.choice(("flat", "day", "diurnal")))
            human_like = level in ("human", "mobile", "bypass")
            extras = {k: (self._u("box_extra", k) if r.random() < p else 0.0)
                      for k, p in (("sms", 0.5 if human_like else 0.25),
                                   ("data", 0.6 if human_like else 0.25),
                                   ("mt", 0.7 if human_like else 0.25))}
            sibling_calls = level == "human" or r.random() < 0.15
            auth_kind = "bank" if banked else "local_box"
            # Victims return missed calls; a box that accepts calls takes some of them.
            callback = self._band(0.0, 0.4) if extras["mt"] > 0 and r.random() < 0.5 else 0.0
            # One-ring (wangiri) boxes ring for seconds and hang up, for callbacks.
            one_ring = level == "naive" and r.random() < 0.3
            if one_ring:
                extras["mt"] = max(extras["mt"], self._u("box_extra", "mt"))
                callback = self._band(0.4, 0.95)
            # Bypass: the families abroad callers reach, called again and again.
            callees = ([self._number() for _ in range(int(self._band(20, 600)))]
                       if level == "bypass" else [])
            # A box already on when the feed starts shows no power-on attaches.
            running = r.random() < 0.25
            pool: list[_Sub] = []
            for i in range(pool_n):
                b = _Behav(mo=self._u(level, "mo"), ans=self._u(level, "ans"),
                           dur_mu=math.log(self._u(level, "dur")),
                           dur_sig=self._u(level, "dsig"), hours=hours_on, p_contact=0.0,
                           handover=self._u("box_extra", "handover") if drift else 0.0,
                           reattach=self._band(0.05, 0.4))
                self._auth(b, auth_kind)
                b.sms = extras["sms"] * self._band(0.5, 1.5)
                b.data = extras["data"] * self._band(0.5, 1.5)
                b.mt = extras["mt"] * self._band(0.5, 1.5)
                b.callback = callback
                if one_ring:
                    b.ans, b.ring = 0.0, (2.0, 9.0)
                if sibling_calls:
                    b.p_contact = self._band(0.1, 0.35)
                if callees:
                    b.p_contact = self._band(0.25, 0.75)
                if level == "human" or sticky or (not rotate and r.random() < 0.3
                                                  and level != "naive"):
                    imei = self._phone_imei(r.random() < 0.15)  # sticky per-SIM IMEI
                else:
                    imei = port_imeis[i % ports]
                s = _Sub(self._imsi(), imei, self._own_number(), f"simbox_{level}", "simbox",
                         b, list(cells), [], device=f"box-{d}", evasion=level)
                if callees:
                    s.contacts = r.sample(callees, k=min(len(callees), r.randint(10, 200)))
                pool.append(s)
            warm = min(hours - 1, int(cfg.warmup_h))
            day = hours - warm
            start_h = 0 if running else warm + r.randint(0, max(0, min(day - 1, int(day * 0.3))))
            lo, hi = (1, 3) if level != "low_slow" else (2, 5)
            box = _Box(f"box-{d}", level, cells, port_imeis, pool, start_h,
                       r.uniform(0, 3000), rotate, running, self._band(5.0, 120.0), (lo, hi),
                       dwell=[0] * ports,
                       in_port=[None] * ports, queue=list(pool), sticky_imei=sticky)
            r.shuffle(box.queue)
            self.boxes.append(box)
            self.subs.extend(pool)
            if sibling_calls:  # the box's SIMs call each other: those are the contacts
                nums = [s.msisdn for s in pool]
                for s in pool:
                    s.contacts = ([n for n in nums if n != s.msisdn] or [self._number()]
                                  ) + s.contacts

    def _ports(self) -> int:
        """A box's channels: mostly a size gateways are sold with, else any, 1 to
        ``MAX_PORTS`` (scaled down when ``ports_per_device`` is below 8)."""
        r = self.rng
        top = max(2, min(MAX_PORTS, 4 * self.cfg.ports_per_device))
        lo = max(1, min(self.cfg.min_ports, top))
        if r.random() < 0.6:
            return r.choice([p for p in _PORT_SIZES if lo <= p <= top] or [top])
        return r.randint(lo, top)

    # -- truth
    def truth(self) -> dict[str, Any]:
        sims = {}
        for s in self.subs:
            sims[s.imsi] = {"label": s.label, "persona": s.persona,
                            "family": s.evasion if s.label == "simbox" else s.persona,
                            "evasion": s.evasion, "device": s.device,
                            "imeis": sorted(s.imeis), "first_ts": s.first_ts,
                            "first_mo_ts": s.first_mo_ts, "evidence_ts": s.evidence_ts}
        devices = {}
        for box in self.boxes:
            ev = [s.evidence_ts for s in box.pool if s.evidence_ts is not None]
            imeis = sorted({i for s in box.pool for i in s.imeis})
            devices[box.name] = {"evasion": box.level, "imsis": [s.imsi for s in box.pool],
                                 "imeis": imeis, "evidence_ts": min(ev) if ev else None}
        cfg = asdict(self.cfg)
        cfg["evasion"] = list(self.cfg.evasion)
        return {"generator": "edge-sim events 3", "evidence_calls": EVIDENCE_CALLS,
                "bands": {"count": BANDS, "profile": self.cfg.profile},
                "config": cfg, "sims": sims, "devices": devices}

    # -- event generation
    def events(self) -> Iterator[dict[str, Any]]:
        """Events in ascending ts order."""
        cfg, r = self.cfg, self.rng
        heap: list[tuple[float, int, dict[str, Any]]] = []
        hours = int(math.ceil(cfg.hours))
        end_ts = cfg.start_ts + cfg.hours * 3600
        people = [s for s in self.subs if s.label == "normal"]
        for sub in people:
            # Most phones are seen attaching early on; the rest only later, when
            # they re-attach (their other events come first).
            if sub.shop is None and (sub.active is None or sub.active[0] == 0) \
                    and r.random() < 0.7:
                self._attach(heap, sub, cfg.start_ts + r.uniform(0, 1800))
        for h in range(hours):
            t0 = cfg.start_ts + h * 3600
            hod = int(((t0 // 3600) + cfg.utc_offset_h) % 24)
            for sub in people:
                self._person_hour(heap, sub, h, t0, hod)
            for box in self.boxes:
                self._box_hour(heap, box, h, t0, hod)
            self._outages(heap, t0, people)
            limit = min(t0 + 3600, end_ts)
            while heap and heap[0][0] < limit:
                yield heapq.heappop(heap)[2]
        while heap:
            ts, _, ev = heapq.heappop(heap)
            if ts <= end_ts + 3600:
                yield ev

    def _outages(self, heap: list[Any], t0: float, people: list[_Sub]) -> None:
        r = self.rng
        for ts, cell in self.outages:
            if not t0 <= ts < t0 + 3600:
                continue
            camped = [s for s in people if s.cells[0] == cell and s.shop is None
                      and (s.active is None or s.active[0] <= (ts - self.cfg.start_ts) / 3600
                           < s.active[1])]
            camped += [s for box in self.boxes if box.cells[0] == cell
                       for s in box.in_port if s is not None]
            for s in camped:
                if r.random() < 0.9:
                    self._attach(heap, s, ts + r.uniform(0.5, 30.0))

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
        first = h == box.start_h
        for p in range(len(box.port_imeis)):
            cur = box.in_port[p]
            if cur is None or (box.rotate and box.dwell[p] <= 0):
                if cur is not None:
                    box.queue.append(cur)
                nxt = box.queue.pop(0)
                box.in_port[p] = nxt
                box.dwell[p] = r.randint(1 if first and box.running else box.dwell_h[0],
                                         box.dwell_h[1])
                if box.rotate and not box.sticky_imei:
                    nxt.imei = box.port_imeis[p]
                nxt.imeis.add(nxt.imei)
                if first and box.running:  # attached before the feed began
                    self._hour(heap, nxt, t0, hod, t0)
                    box.dwell[p] -= 1
                    continue
                # Power-on: every port attaches within ``on_spread`` s of the box
                # starting; later swaps happen at a random moment of the hour.
                t_in = t0 + (box.on_s + r.uniform(0, box.on_spread) if first
                             else r.uniform(0, 3000))
                self._attach(heap, nxt, t_in)
                self._hour(heap, nxt, t0, hod, t_in + r.uniform(2, 30))
            else:
                if r.random() < cur.b.reattach:
                    self._attach(heap, cur, t0 + r.uniform(0, 3600))
                self._hour(heap, cur, t0, hod, t0)
            box.dwell[p] -= 1

    def _person_hour(self, heap: list[Any], sub: _Sub, h: int, t0: float, hod: int) -> None:
        """One hour of a person's SIM: in its phone or not (``active``), moving to
        a new handset (``moves``), or put through a phone shop first (``shop``)."""
        r = self.rng
        t_from = t0
        if sub.shop is not None:
            ts, handset, cell, own_cells, after = sub.shop
            if ts >= t0 + 3600:
                return
            if ts < t0:  # in its own phone (or in a drawer) by now
                if after is None:
                    return
                self._hour(heap, sub, t0, hod, t0)
                return
            # In the shop: the handset, an attach, the operator's welcome SMS, a
            # test call or two (to the shop's phone, a service number, the buyer).
            sub.imei, sub.cells = handset, [cell]
            sub.imeis.add(handset)
            self._attach(heap, sub, ts)
            self._push(heap, ts + r.uniform(5, 90),
                       {"type": "sms", "imsi": sub.imsi, "imei": handset, "cell": cell,
                        "dir": "mt", "peer": "10086"})
            t = ts
            for _ in range(r.choice((0, 1, 1, 1, 2, 2, 3))):
                t += r.uniform(20, 400)
                sub.mo_count += 1
                if sub.mo_count == 1:
                    sub.first_mo_ts = round(t, 3)
                self._call(heap, sub, t, "mo", self._number(), cell)
            if after is None:
                return
            t_move = min(t0 + 3599.0, t + r.uniform(120, 1800))
            sub.b, sub.cells = after, list(own_cells)
            sub.imei = sub.moves[0][1] if sub.moves else self._phone_imei()
            sub.moves = []
            sub.imeis.add(sub.imei)
            self._attach(heap, sub, t_move)
            self._hour(heap, sub, t0, hod, t_move + r.uniform(5, 60))
            return
        if sub.active is not None:
            a, b = sub.active
            if not a <= h < b:
                return
            if h == a and a > 0:  # swapped into the phone this hour
                t_from = t0 + r.uniform(0, 1200)
                self._attach(heap, sub, t_from)
        if sub.moves and sub.moves[0][0] == h:
            t_from = t0 + r.uniform(0, 3000)
            self._hour(heap, sub, t0, hod, t0, t_until=t_from)
            sub.imei = sub.moves.pop(0)[1]
            sub.imeis.add(sub.imei)
            self._attach(heap, sub, t_from)
        self._hour(heap, sub, t0, hod, t_from)

    def _factor(self, hours: str, hod: int) -> float:
        if hours == "flat":
            return 1.0
        if hours == "work":
            return 1.0 if 9 <= hod < 18 else 0.03
        if hours == "late":
            return 1.0 if 9 <= hod < 21 else 0.03
        if hours == "shop":
            return 1.0 if 10 <= hod < 20 else 0.0
        if hours == "evening":  # callers abroad after their work: local evenings
            return 1.0 if 18 <= hod or hod < 1 else (0.4 if 9 <= hod < 18 else 0.08)
        if hours == "day":
            return 1.0 if 8 <= hod < 21 else 0.04
        return _DIURNAL[hod]

    def _hour(self, heap: list[Any], sub: _Sub, t0: float, hod: int, t_from: float,
              t_until: float | None = None) -> None:
        r = self.rng
        b = sub.b
        f = self._factor(b.hours, hod)
        span = (t0 + 3600 if t_until is None else t_until) - t_from
        if span <= 0:
            return
        cells = sub.cells
        cell = cells[0] if len(cells) == 1 or r.random() < 0.6 else r.choice(cells)
        # People on the move (sales reps, taxis) and drifting boxes change cells
        # within the hour.
        mobile = len(cells) > 1 and b.handover >= 0.2
        if sub.label == "normal" and r.random() < b.reattach * f:
            self._attach(heap, sub, t_from + r.uniform(0, span))
        mo_times = sorted(t_from + r.uniform(0, span) for _ in range(_poisson(r, b.mo * f)))
        box = sub.label == "simbox"
        for ts in mo_times:
            if sub.contacts and r.random() < b.p_contact:
                peer = r.choice(sub.contacts)
            else:
                peer = self._number()
            sub.mo_count += 1
            if b.callback > 0:
                sub.dialled.append(peer)
                if len(sub.dialled) > 64:
                    del sub.dialled[:16]
            if sub.mo_count == 1:
                sub.first_mo_ts = round(ts, 3)
            if box and sub.mo_count == EVIDENCE_CALLS:
                sub.evidence_ts = round(ts, 3)
            self._call(heap, sub, ts, "mo", peer, r.choice(cells) if mobile else cell)
            sibling = self._by_msisdn.get(peer)
            if sibling is not None:  # a local callee (a box's sibling SIM, a neighbour)
                self._call(heap, sibling, ts + r.uniform(0.5, 2.0), "mt", sub.msisdn,
                           sibling.cells[0])
        for _ in range(_poisson(r, b.mt * f)):
            if sub.dialled and r.random() < b.callback:
                src = r.choice(sub.dialled)  # a call returned
            elif box or b.anywhere:
                src = self._number()  # box: calls back from strangers
            else:
                src = r.choice(sub.contacts) if sub.contacts else self._number()
            self._call(heap, sub, t_from + r.uniform(0, span), "mt", src,
                       r.choice(cells) if mobile else cell)
        for _ in range(_poisson(r, b.sms * f)):
            peer = r.choice(sub.contacts) if sub.contacts and not box else self._number()
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
        if sub.first_ts is None or ts < sub.first_ts:
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
        elif b.ring is not None and direction == "mo":  # hung up after a ring or two
            dur, ring, cause = 0.0, r.uniform(*b.ring), "no_answer"
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
