"""SIP dialog and registration tracking, sans-IO: (SIP message, addresses, time) in,
typed call/registration events out.

One :class:`Dialog` per INVITE Call-ID records who sent the INVITE (caller address)
and who received it (callee address), the dialled user (Request-URI), when it was
answered and ended, and the media addresses announced in SDP offers and answers.
The table is bounded: ended dialogs linger briefly (to absorb retransmitted BYEs),
unanswered or silent ones time out, and the oldest are evicted when full; every
eviction is counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.telecom.ipplane.sdp import Sdp, parse_sdp
from edge.telecom.ipplane.sip import SipMessage, tag_of, uri_aor, uri_user

ENDED_LINGER_S = 32.0  # RFC 3261 timer J / 64*T1: retransmissions stop by then
RINGING_TIMEOUT_S = 300.0


@dataclass(slots=True)
class Dialog:
    call_id: str
    caller: str
    callee: str
    from_user: str
    to_user: str
    t_invite: float
    last_ts: float
    t_answer: float | None = None
    t_end: float | None = None
    status: int = 0
    media: list[tuple[str, int]] = field(default_factory=list)
    savp: bool = False

    @property
    def duration(self) -> float:
        if self.t_answer is None or self.t_end is None:
            return 0.0
        return max(0.0, self.t_end - self.t_answer)


@dataclass(slots=True, frozen=True)
class CallEvent:
    """``kind`` is ``start`` (first INVITE), ``answer`` (first 2xx) or ``end``
    (BYE, CANCEL, a final failure, or a timeout when ``timeout`` is true)."""

    kind: str
    ts: float
    dialog: Dialog
    timeout: bool = False


@dataclass(slots=True, frozen=True)
class MediaEvent:
    """An SDP offer/answer announced ``addr:port`` for ``call_id``'s RTP."""

    ts: float
    call_id: str
    addr: str
    port: int
    sdp: Sdp


@dataclass(slots=True, frozen=True)
class RegisterEvent:
    """A (non-retransmitted) REGISTER for ``aor`` sent from ``src`` to ``dst``."""

    ts: float
    src: str
    dst: str
    aor: str
    expires: int
    user_agent: str = ""


@dataclass(slots=True, frozen=True)
class PingEvent:
    """A SIP keepalive (OPTIONS) or an out-of-dialog MESSAGE from ``src`` to ``dst``."""

    ts: float
    src: str
    dst: str
    method: str


Event = CallEvent | MediaEvent | RegisterEvent | PingEvent


class DialogTable:
    """Tracks INVITE dialogs and registrations; bounded by ``max_dialogs``."""

    def __init__(self, max_dialogs: int = 100_000, dialog_timeout_s: float = 4 * 3600.0
                 ) -> None:
        self.max_dialogs = max_dialogs
        self.dialog_timeout_s = dialog_timeout_s
        self.dialogs: dict[str, Dialog] = {}
        self._recent_regs: dict[tuple[str, str], float] = {}
        self.evicted_full = 0
        self.evicted_timeout = 0
        self.started = 0
        self.retransmissions = 0

    def on_message(self, msg: SipMessage, src: str, dst: str, ts: float) -> list[Event]:
        out: list[Event] = []
        h = msg.headers
        cid = h.get("call-id", "")
        if msg.is_request:
            m = msg.method
            if m == "INVITE":
                d = self.dialogs.get(cid)
                if d is None:
                    if tag_of(h.get("to", "")):
                        return out  # re-INVITE of a dialog we never saw start
                    if len(self.dialogs) >= self.max_dialogs:
                        self._evict_oldest(ts, out)
                    d = Dialog(cid, src, dst, uri_user(h.get("from", "")),
                               uri_user(msg.uri) or uri_user(h.get("to", "")), ts, ts)
                    self.dialogs[cid] = d
                    self.started += 1
                    out.append(CallEvent("start", ts, d))
                else:
                    self.retransmissions += 1
                    d.last_ts = ts
                self._sdp(msg, d, ts, out)
            elif m in ("BYE", "CANCEL"):
                d = self.dialogs.get(cid)
                if d is not None and d.t_end is None:
                    d.t_end = ts
                    d.last_ts = ts
                    out.append(CallEvent("end", ts, d))
            elif m == "ACK":
                d = self.dialogs.get(cid)
                if d is not None:
                    d.last_ts = ts
                    self._sdp(msg, d, ts, out)
            elif m == "REGISTER":
                cseq = h.get("cseq", "")
                key = (cid, cseq)
                if key in self._recent_regs:
                    self.retransmissions += 1
                else:
                    if len(self._recent_regs) >= 4 * self.max_dialogs:
                        self._recent_regs.clear()
                    self._recent_regs[key] = ts
                    exp = _int(h.get("expires", ""), -1)
                    out.append(RegisterEvent(ts, src, dst, uri_aor(h.get("to", "")), exp,
                                             h.get("user-agent", "")))
            elif m in ("OPTIONS", "MESSAGE", "NOTIFY", "INFO") and not tag_of(h.get("to", "")):
                out.append(PingEvent(ts, src, dst, m))
        else:
            if msg.method not in ("INVITE", "BYE", "CANCEL"):
                return out
            d = self.dialogs.get(cid)
            if d is None:
                return out
            d.last_ts = ts
            st = msg.status
            if msg.method == "INVITE":
                self._sdp(msg, d, ts, out)
                if 200 <= st < 300 and d.t_answer is None and d.t_end is None:
                    d.t_answer = ts
                    d.status = st
                    out.append(CallEvent("answer", ts, d))
                elif st >= 300 and d.t_end is None and d.t_answer is None:
                    d.status = st
                    d.t_end = ts
                    out.append(CallEvent("end", ts, d))
        return out

    def _sdp(self, msg: SipMessage, d: Dialog, ts: float, out: list[Event]) -> None:
        if not msg.body or "sdp" not in msg.headers.get("content-type", "application/sdp"):
            return
        sdp = parse_sdp(msg.body)
        if sdp is None:
            return
        for media in sdp.media:
            if media.port == 0 or not media.addr:
                continue
            if "SAVP" in media.proto:
                d.savp = True
            key = (media.addr, media.port)
            if key not in d.media and len(d.media) < 8:
                d.media.append(key)
                out.append(MediaEvent(ts, d.call_id, media.addr, media.port, sdp))

    def _evict_oldest(self, ts: float, out: list[Event]) -> None:
        cid = next(iter(self.dialogs))
        d = self.dialogs.pop(cid)
        self.evicted_full += 1
        if d.t_end is None:
            d.t_end = ts
            out.append(CallEvent("end", ts, d, timeout=True))

    def expire(self, now: float) -> list[Event]:
        """Drop ended dialogs after their linger and time out silent ones."""
        out: list[Event] = []
        dead: list[str] = []
        for cid, d in self.dialogs.items():
            if d.t_end is not None:
                if now - d.t_end > ENDED_LINGER_S:
                    dead.append(cid)
            elif (d.t_answer is None and now - d.last_ts > RINGING_TIMEOUT_S) or \
                    now - d.last_ts > self.dialog_timeout_s:
                d.t_end = d.last_ts
                self.evicted_timeout += 1
                out.append(CallEvent("end", now, d, timeout=True))
                dead.append(cid)
        for cid in dead:
            del self.dialogs[cid]
        if self._recent_regs:
            old = [k for k, t in self._recent_regs.items() if now - t > ENDED_LINGER_S]
            for k in old:
                del self._recent_regs[k]
        return out


def _int(s: str, default: int) -> int:
    try:
        return int(s.strip().split(";", 1)[0])
    except ValueError:
        return default
