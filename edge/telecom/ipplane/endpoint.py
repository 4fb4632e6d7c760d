"""Per-endpoint (IP address) behaviour state and its feature vector.

The detector updates an :class:`EndpointState` from call, registration, keepalive
and RTP events; :meth:`EndpointState.features` turns the last ``window_s`` seconds
into the fixed vector :data:`FEATURES` the model was trained on. Every container is
bounded (deques with ``maxlen``, capped dicts) so one noisy address cannot grow
without limit.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

FEATURES: tuple[str, ...] = (
    "lines",                  # distinct AoRs REGISTERed from this address
    "registers_per_min",
    "reg_interval_s",         # median over AoRs of the mean re-register interval
    "reg_interval_cv",        # median over AoRs of the intervals' coefficient of variation
    "keepalive_cv",           # same for OPTIONS / CRLF keepalives per peer
    "registrars_role",        # distinct AoRs registered TO this address (server role)
    "calls_per_min",
    "max_concurrent",
    "callee_ratio",           # distinct dialled users / calls
    "in_share",               # share of calls whose INVITE came TO this address
    "answered_share",
    "mean_duration_s",
    "duration_cv",
    "short_share",            # answered calls shorter than 60 s
    "intercall_cv",           # CV of the gaps between call starts
    "signalling_peers",
    "caller_ratio",           # distinct calling users / calls
    "rtp_flows_per_call",
    "rtp_jitter_ms",
    "rtp_loss",
    # Why these three: a GoIP line is a SIM port, it carries one call at a time, and a
    # relay is asked (INVITEd) to ring numbers that are not its own. A PBX / call-centre
    # trunk carries many calls at once on one registration, and its incoming calls go to
    # its own users or its DIDs, which carriers allocate in blocks of consecutive numbers.
    "identity_concurrency",   # most calls at once on one local identity (From out / To in)
    "in_callee_ratio",        # distinct called number blocks (all but the last 2 digits)
                              # / calls that came IN (0: none came in)
    "concurrent_per_line",    # max_concurrent / max(lines, 1)
    # Why these three (1.3.0): what one office, one phone or one PBX shows and one gateway
    # cannot. A relay is asked to ring numbers that are not its own; a phone, an office or
    # a PBX is called on its own registered users. A gateway is one device with one
    # firmware; an office is many devices, often of several makes. Offices call each
    # other's extensions; a gateway dials the public network.
    "own_in_share",           # calls that came IN addressed to a user this address
                              # registered / calls that came in (0: none came in)
    "ua_families",            # distinct User-Agent products on its REGISTERs (0: none)
    "internal_share",         # calls whose other party is a short extension (2-6
                              # digits), not a public number / calls
)
UNKNOWN_CV = 1.0  # what a CV reads when there are too few intervals: "not regular"
MAX_KEYS = 256


@dataclass(slots=True)
class CallRec:
    start: float
    end: float
    inbound: bool
    callee: str
    caller: str
    answered: bool
    duration: float
    complete: bool = True  # False when the end was a timeout: duration unknown


@dataclass(slots=True)
class SigHit:
    count: int
    first_ts: float
    last_ts: float
    detail: str


def _cv(xs: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return UNKNOWN_CV
    m = sum(xs) / n
    if m <= 0:
        return UNKNOWN_CV
    var = sum((x - m) ** 2 for x in xs) / (n - 1)
    return math.sqrt(var) / m


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return 0.0
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


@dataclass(slots=True)
class EndpointState:
    addr: str
    first_ts: float
    last_ts: float
    sip_messages: int = 0
    sig_hits: dict[str, SigHit] = field(default_factory=dict)
    regs: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=8192))
    reg_last: dict[str, float] = field(default_factory=dict)
    reg_intervals: dict[str, deque[tuple[float, float]]] = field(default_factory=dict)
    regs_in: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=8192))
    ping_last: dict[tuple[str, str], float] = field(default_factory=dict)
    ping_intervals: dict[tuple[str, str], deque[tuple[float, float]]] = \
        field(default_factory=dict)
    calls: deque[CallRec] = field(default_factory=lambda: deque(maxlen=8192))
    active: dict[str, CallRec] = field(default_factory=dict)
    peers: dict[str, float] = field(default_factory=dict)
    rtp: deque[tuple[float, float, float]] = field(default_factory=lambda: deque(maxlen=4096))
    dirty: bool = False
    last_report: float | None = None
    reported_sigs: set[str] = field(default_factory=set)
    over: int = 0  # consecutive model judgements at or above the threshold
    tunnel: str | None = None  # the tunnels its last SIP message came through
    reg_uas: dict[str, float] = field(default_factory=dict)  # UA product -> last REGISTER
    # user -> until when its registration holds (REGISTER time + Expires): the users
    # this address can be called on, also when the window holds no REGISTER of theirs
    reg_users: dict[str, float] = field(default_factory=dict)
    # the call ledger (longer than the window, ``evidence_s``): every call that came IN,
    # as (start, called user, addressed to a user it had registered at that moment, or
    # to a number the operator listed as one of its business trunks').
    # The explicit rules read it: a relay is asked to ring a fresh number every call and
    # is never called on its own lines; a phone, an office or a PBX is, sooner or later.
    ledger: deque[tuple[float, str, bool]] = field(default_factory=lambda: deque(maxlen=512))
    # the other party of every call over the same span, as (start, number, came in): the
    # From of a call that came in, the dialled number of a call placed. A number on both
    # sides is a conversation (a caller called back, a customer returning a call); a
    # relay is handed its calls by a softswitch and rings victims for it, it does not
    # call its callers back
    remotes: deque[tuple[float, str, bool]] = field(default_factory=lambda: deque(maxlen=512))

    # -- updates
    def touch(self, ts: float) -> None:
        if ts > self.last_ts:
            self.last_ts = ts

    def hit(self, sig_id: str, ts: float, detail: str) -> bool:
        """Record a signature hit; True when it is new for this endpoint."""
        h = self.sig_hits.get(sig_id)
        self.dirty = True
        if h is None:
            self.sig_hits[sig_id] = SigHit(1, ts, ts, detail)
            return True
        h.count += 1
        h.last_ts = ts
        return False

    def peer(self, addr: str, ts: float) -> None:
        if addr in self.peers or len(self.peers) < MAX_KEYS:
            self.peers[addr] = ts

    def register(self, ts: float, aor: str, ua: str = "", expires: int = -1) -> None:
        self.regs.append((ts, aor))
        user = _norm_user(aor.split("@", 1)[0])
        if user in self.reg_users or len(self.reg_users) < MAX_KEYS:
            self.reg_users[user] = ts + (expires if expires >= 0 else 3600.0)
        if ua:
            fam = ua_family(ua)
            if fam in self.reg_uas or len(self.reg_uas) < 64:
                self.reg_uas[fam] = ts
        last = self.reg_last.get(aor)
        if last is not None:
            dq = self.reg_intervals.get(aor)
            if dq is None:
                dq = self.reg_intervals[aor] = deque(maxlen=64)
            if ts - last > 0.5:  # an immediate re-REGISTER is an auth challenge answer
                dq.append((ts, ts - last))
        if last is not None or len(self.reg_last) < MAX_KEYS:
            self.reg_last[aor] = ts
        self.dirty = True

    def ping(self, ts: float, peer: str, kind: str) -> None:
        key = (peer, kind)
        last = self.ping_last.get(key)
        if last is not None:
            dq = self.ping_intervals.get(key)
            if dq is None:
                dq = self.ping_intervals[key] = deque(maxlen=64)
            dq.append((ts, ts - last))
        if last is not None or len(self.ping_last) < MAX_KEYS:
            self.ping_last[key] = ts

    def call_start(self, call_id: str, ts: float, inbound: bool, callee: str,
                   caller: str, trunk_number: bool = False) -> None:
        """A call began; ``trunk_number``: it came in to a number the operator listed
        as one of its business trunks' (counts in the ledger as a call to its own)."""
        if len(self.active) < 4 * MAX_KEYS:
            self.active[call_id] = CallRec(ts, -1.0, inbound, callee, caller, False, 0.0)
        if inbound:
            user = _norm_user(callee)
            self.ledger.append((ts, user, trunk_number
                                or self.reg_users.get(user, -1.0) >= ts))
        self.remotes.append((ts, _norm_user(caller if inbound else callee), inbound))
        self.dirty = True

    def call_answer(self, call_id: str, ts: float) -> None:
        c = self.active.get(call_id)
        if c is not None:
            c.answered = True
            c.duration = ts  # answer time until the end arrives

    def call_end(self, call_id: str, ts: float, complete: bool = True) -> None:
        c = self.active.pop(call_id, None)
        if c is None:
            return
        c.end = ts
        c.complete = complete
        c.duration = max(0.0, ts - c.duration) if c.answered else 0.0
        self.calls.append(c)
        self.dirty = True

    def rtp_flow(self, ts: float, jitter_ms: float, loss: float) -> None:
        self.rtp.append((ts, jitter_ms, loss))

    # -- features
    def features(self, now: float, window_s: float) -> list[float]:
        """The :data:`FEATURES` vector over ``[now - window_s, now]``."""
        lo = now - window_s
        minutes = window_s / 60.0
        regs = [(t, a) for t, a in self.regs if t >= lo]
        lines = len({a for _, a in regs})
        reg_means: list[float] = []
        reg_cvs: list[float] = []
        for dq in self.reg_intervals.values():
            iv = [x for t, x in dq if t >= lo]
            if len(iv) >= 2:
                reg_means.append(sum(iv) / len(iv))
                reg_cvs.append(_cv(iv))
        ping_cvs = [_cv(iv) for iv in ([x for t, x in dq if t >= lo]
                                       for dq in self.ping_intervals.values()) if len(iv) >= 2]
        regs_in = len({a for t, a in self.regs_in if t >= lo})
        calls = [c for c in self.calls if c.end >= lo]
        live = list(self.active.values())
        all_calls = calls + live
        n = len(all_calls)
        started = [c.start for c in all_calls if c.start >= lo]
        answered = [c for c in calls if c.answered]
        durs = [c.duration for c in answered if c.complete]
        started.sort()
        gaps = [b - a for a, b in zip(started, started[1:], strict=False)]
        rtp = [(j, loss) for t, j, loss in self.rtp if t >= lo]
        peers = sum(1 for t in self.peers.values() if t >= lo)
        inbound = [c for c in all_calls if c.inbound]
        max_conc = _max_concurrent(all_calls, lo, now)
        return [
            float(lines),
            len(regs) / minutes,
            _median(reg_means),
            _median(reg_cvs) if reg_cvs else UNKNOWN_CV,
            _median(ping_cvs) if ping_cvs else UNKNOWN_CV,
            float(regs_in),
            len(started) / minutes,
            float(max_conc),
            len({c.callee for c in all_calls}) / n if n else 0.0,
            sum(1 for c in all_calls if c.inbound) / n if n else 0.0,
            len(answered) / len(calls) if calls else 0.0,
            sum(durs) / len(durs) if durs else 0.0,
            _cv(durs) if len(durs) >= 2 else UNKNOWN_CV,
            sum(1 for d in durs if d < 60.0) / len(durs) if durs else 0.0,
            _cv(gaps) if len(gaps) >= 2 else UNKNOWN_CV,
            float(peers),
            len({c.caller for c in all_calls}) / n if n else 0.0,
            len(rtp) / len(answered) if answered else 0.0,
            sum(j for j, _ in rtp) / len(rtp) if rtp else 0.0,
            sum(x for _, x in rtp) / len(rtp) if rtp else 0.0,
            float(_identity_concurrency(all_calls, lo, now)),
            len({c.callee[:-2] for c in inbound}) / len(inbound) if inbound else 0.0,
            max_conc / max(lines, 1),
            _own_share(inbound, self.reg_users),
            float(sum(1 for t in self.reg_uas.values() if t >= lo)),
            sum(1 for c in all_calls if _is_extension(c.caller if c.inbound else c.callee))
            / n if n else 0.0,
        ]

    def ledger_counts(self, now: float, evidence_s: float) -> tuple[int, int, int, int]:
        """(calls that came in, of which to a user it registered, of which rang a fresh
        public number, public numbers called both ways) over the last ``evidence_s``. A
        call counts as addressed to its own user when that user's registration held at
        the call or holds now; "fresh": not its own, not a short extension, and no other
        incoming call of the ledger went to the same number block (all but the last two
        digits). The last count (:meth:`called_both_ways`): distinct public numbers that
        called this address and that it called."""
        lo = now - evidence_s
        entries = [(u, own) for t, u, own in self.ledger if t >= lo]
        both = self.called_both_ways(now, evidence_s)
        if not entries:
            return 0, 0, 0, both
        users = self.reg_users
        blocks: dict[str, int] = {}
        for u, _ in entries:
            blocks[u[:-2]] = blocks.get(u[:-2], 0) + 1
        n_own = n_fresh = 0
        for u, own in entries:
            if own or users.get(u, -1.0) >= now:
                n_own += 1
            elif not _is_extension(u) and blocks[u[:-2]] == 1:
                n_fresh += 1
        return len(entries), n_own, n_fresh, both

    def called_both_ways(self, now: float, evidence_s: float) -> int:
        """Distinct public numbers (7 or more digits) over the last ``evidence_s`` that
        both called this address (the From of a call that came in) and were called by it
        (the dialled number of a call it placed): callers called back, or customers
        returning its calls."""
        lo = now - evidence_s
        came: set[str] = set()
        went: set[str] = set()
        for t, u, inbound in self.remotes:
            if t >= lo and len(u) >= 7 and u.isdigit():
                (came if inbound else went).add(u)
        return len(came & went) if came and went else 0

    def activity(self, now: float, window_s: float) -> int:
        """How much behaviour there is to judge: registrations + calls in the window."""
        lo = now - window_s
        return (sum(1 for t, _ in self.regs if t >= lo)
                + sum(1 for c in self.calls if c.end >= lo) + len(self.active))

    def prune(self, now: float, window_s: float, evidence_s: float = 0.0) -> None:
        """Forget what fell out of the window, and the ledger what fell out of
        ``evidence_s`` (keeps the containers small)."""
        lo = now - window_s
        lo_led = now - max(evidence_s, window_s)
        for led in (self.ledger, self.remotes):
            while led and led[0][0] < lo_led:
                led.popleft()
        for dq in (self.regs, self.regs_in, self.rtp):
            while dq and dq[0][0] < lo:
                dq.popleft()
        while self.calls and self.calls[0].end < lo:
            self.calls.popleft()
        _drop_older(self.reg_last, lo)
        _drop_older(self.ping_last, lo)
        _drop_older(self.peers, lo)
        _drop_older(self.reg_uas, lo)
        _drop_older(self.reg_users, now)
        _drop_stale(self.reg_intervals, lo)
        _drop_stale(self.ping_intervals, lo)


def _drop_older(d: dict[Any, float], lo: float) -> None:
    for k in [k for k, t in d.items() if t < lo]:
        del d[k]


def _drop_stale(d: dict[Any, deque[tuple[float, float]]], lo: float) -> None:
    for k in [k for k, dq in d.items() if not dq or dq[-1][0] < lo]:
        del d[k]


def ua_family(ua: str) -> str:
    """The product of a User-Agent string, without versions: ``Yealink SIP-T46S 66.86``
    and ``Yealink SIP-T46S 66.85`` are one family, ``Grandstream GXP2170`` another."""
    words = ua.strip().lower().replace("/", " ").split()
    keep = [w for w in words if not (any(ch.isdigit() for ch in w)
                                     and ("." in w or w.isdigit()))]
    return " ".join(keep[:2]) or (words[0] if words else "")


def _norm_user(u: str) -> str:
    u = u.strip().lower()
    return u[1:] if u.startswith("+") else u


def _is_extension(u: str) -> bool:
    """A short dialable extension (2-6 digits), not a public number."""
    return 2 <= len(u) <= 6 and u.isdigit()


def _own_share(inbound: list[CallRec], users: dict[str, float]) -> float:
    """Share of incoming calls addressed to a user the address registered itself."""
    if not inbound or not users:
        return 0.0
    return sum(1 for c in inbound if _norm_user(c.callee) in users) / len(inbound)


def _identity_concurrency(calls: list[CallRec], lo: float, now: float) -> int:
    """Most calls in progress at once on one local identity: the From user of calls this
    address placed, the called user of calls it received."""
    by_id: dict[str, list[CallRec]] = {}
    for c in calls:
        by_id.setdefault(c.callee if c.inbound else c.caller, []).append(c)
    return max((_max_concurrent(cs, lo, now) for cs in by_id.values() if len(cs) > 1),
               default=1 if calls else 0)


def _max_concurrent(calls: list[CallRec], lo: float, now: float) -> int:
    ev: list[tuple[float, int]] = []
    for c in calls:
        end = c.end if c.end >= 0.0 else now  # -1: still in progress
        if end < lo:
            continue
        ev.append((c.start, 1))
        ev.append((end, -1))
    ev.sort()
    cur = best = 0
    for _, d in ev:
        cur += d
        if cur > best:
            best = cur
    return best
