"""The sans-IO link layer: version negotiation, heartbeats, acknowledgement and bounded
retransmission, duplicate suppression. Same code at both ends (the agent and the
simulated firmware), no I/O, no clock: the caller passes ``now`` (Unix seconds) to
:meth:`Link.receive` and :meth:`Link.poll` and writes what :meth:`Link.output` gives.

Rules (PROTOCOL.md §5-6):

* Each end sends HELLO at start and every ``hello_s`` until the peer accepted it
  (HELLO_ACK status 0). An end accepts the peer's HELLO when the protocol major
  version, the catalogue id and the expected role match; otherwise it answers
  HELLO_ACK with the refusal code and a reason and the link stays closed (fail
  closed): nothing but HELLO/HELLO_ACK is sent or delivered until a later HELLO is
  accepted. The link is *up* when both HELLOs were accepted.
* A HELLO with a new ``boot_id`` means the peer restarted: duplicate-suppression state
  is dropped and this end's HELLO is sent again at once.
* Every frame takes the next sequence number (u16, wrapping). Reliable messages
  (``MessageType.reliable``) carry ACK_REQ and are kept until ACKed; a copy is sent
  again after ``rto_s``, then ``rto_s * backoff``, ... capped at ``rto_max_s``, at most
  ``max_retries`` times or until the message's deadline, then given up (reported). A
  retransmission keeps its sequence number and sets RETRANSMIT; receivers ACK every
  copy and deliver only the first (by sequence number, over the last 512).
* At most ``max_in_flight`` reliable messages are unacknowledged; more wait in order.
* HEARTBEAT every ``heartbeat_s`` while up; no frame for ``dead_s`` takes the link
  down (and back to HELLO).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from firmware_bridge import messages as M
from firmware_bridge.codec import FLAG_ACK_REQ, FLAG_RETRANSMIT, Codec, Decoded, DecodeError

log = logging.getLogger(__name__)

_LINK_TYPES = (M.Hello, M.HelloAck, M.Heartbeat, M.Ack, M.Nack)
DEDUP_WINDOW = 512


# --------------------------------------------------------------------------- events


@dataclass(slots=True, frozen=True)
class Up:
    peer: M.Hello


@dataclass(slots=True, frozen=True)
class Refused:
    """Negotiation failed (``by_peer``: the peer refused us). The link stays closed."""

    reason: str
    by_peer: bool


@dataclass(slots=True, frozen=True)
class Down:
    reason: str


@dataclass(slots=True, frozen=True)
class PeerRestarted:
    boot_id: int


@dataclass(slots=True, frozen=True)
class Received:
    """An application message from the peer (first copy only)."""

    msg: Any
    seq: int


@dataclass(slots=True, frozen=True)
class Acked:
    seq: int
    msg: Any
    latency_s: float
    tries: int


@dataclass(slots=True, frozen=True)
class Nacked:
    seq: int
    msg: Any
    code: int
    reason: str


@dataclass(slots=True, frozen=True)
class GaveUp:
    seq: int
    msg: Any
    reason: str  # "retries" | "deadline"
    tries: int


Event = Up | Refused | Down | PeerRestarted | Received | Acked | Nacked | GaveUp


@dataclass(slots=True)
class _Pending:
    msg: Any
    seq: int
    first_sent: float
    next_at: float
    rto: float
    tries: int
    deadline: float | None


# --------------------------------------------------------------------------- link


class Link:
    def __init__(self, codec: Codec, *, role: int, name: str, boot_id: int,
                 peer_role: int | None = None, rto_s: float = 0.05,
                 rto_max_s: float = 1.0, backoff: float = 2.0, max_retries: int = 8,
                 max_in_flight: int = 16, queue_max: int = 100_000,
                 heartbeat_s: float = 1.0, dead_s: float = 3.0, hello_s: float = 0.5,
                 started: float = 0.0) -> None:
        self.codec = codec
        self.role = role
        self.name = name
        self.boot_id = boot_id
        self.peer_role = peer_role
        self.rto_s, self.rto_max_s, self.backoff = rto_s, rto_max_s, backoff
        self.max_retries, self.max_in_flight, self.queue_max = max_retries, max_in_flight, \
            queue_max
        self.heartbeat_s, self.dead_s, self.hello_s = heartbeat_s, dead_s, hello_s
        self.started = started
        self._out = bytearray()
        self._seq = 0
        self.peer: M.Hello | None = None
        self.we_accepted = False  # the peer's HELLO
        self.peer_accepted = False  # ours
        self.refusal: str | None = None
        self._hello_at = 0.0  # when to send HELLO next
        self._hb_at = 0.0
        self.last_rx = started
        self._inflight: OrderedDict[int, _Pending] = OrderedDict()
        self._queue: deque[tuple[Any, float | None]] = deque()
        self._seen: set[int] = set()
        self._seen_order: deque[int] = deque()
        self.c: dict[str, int] = {k: 0 for k in (
            "sent", "received", "retransmits", "acked", "gave_up", "nacked", "duplicates",
            "dropped_not_up", "queue_full", "hellos_sent", "refusals", "peer_restarts",
            "downs", "unexpected")}

    # ------------------------------------------------------------------ state
    @property
    def up(self) -> bool:
        return self.we_accepted and self.peer_accepted

    @property
    def state(self) -> str:
        if self.up:
            return "up"
        return "refused" if self.refusal else "negotiating"

    def output(self) -> bytes:
        """Bytes to write to the transport, in order (and forget them)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def uptime_us(self, now: float) -> int:
        return max(0, int((now - self.started) * 1e6))

    def _emit(self, msg: Any, now: float, flags: int = 0, seq: int | None = None) -> int:
        if seq is None:
            seq = self._seq
            self._seq = (self._seq + 1) & 0xFFFF
        self._out += self.codec.encode(msg, seq, flags, now)
        self.c["sent"] += 1
        return seq

    def _hello(self, now: float) -> None:
        self._emit(M.Hello(M.PROTO_MAJOR, M.PROTO_MINOR, self.role, M.CATALOGUE_ID,
                           self.boot_id, self.uptime_us(now), self.codec.max_payload,
                           self.name), now)
        self.c["hellos_sent"] += 1
        self._hello_at = now + (self.hello_s if self.refusal is None else
                                max(self.hello_s, 5.0))

    # ------------------------------------------------------------------ sending
    def send(self, msg: Any, now: float, deadline: float | None = None) -> None:
        """Queue an application message. Reliable types are delivered (or reported
        as GaveUp/Nacked); unreliable ones are sent once if the link is up."""
        mt = M.BY_CLASS[type(msg)]
        if not mt.reliable:
            if self.up:
                self._emit(msg, now)
            else:
                self.c["dropped_not_up"] += 1
            return
        if len(self._queue) >= self.queue_max:
            self.c["queue_full"] += 1
            raise OverflowError(f"{self.name}: send queue full ({self.queue_max})")
        self._queue.append((msg, deadline))
        if self.up:
            self._pump(now)

    def pending(self) -> int:
        """Reliable messages not yet acknowledged (in flight or queued)."""
        return len(self._inflight) + len(self._queue)

    def _pump(self, now: float) -> None:
        while self._queue and len(self._inflight) < self.max_in_flight:
            msg, deadline = self._queue.popleft()
            msg = _refresh(msg, now, deadline)
            seq = self._emit(msg, now, FLAG_ACK_REQ)
            self._inflight[seq] = _Pending(msg, seq, now, now + self.rto_s, self.rto_s, 1,
                                           deadline)

    # ------------------------------------------------------------------ timers
    def poll(self, now: float) -> list[Event]:
        """Timers: HELLO, heartbeat, retransmissions, give-ups, the dead-link check."""
        ev: list[Event] = []
        if self.up and now - self.last_rx > self.dead_s:
            self.c["downs"] += 1
            ev.append(Down(f"no frame for {now - self.last_rx:.1f} s"))
            # the peer's HELLO stays accepted (same boot); ours is sent again
            self.peer_accepted = False
            self._hello_at = now
        if not self.peer_accepted and now >= self._hello_at:
            self._hello(now)
        self._expire(now, ev)  # deadlines pass whether the link is up or not
        if not self.up:
            return ev
        if now >= self._hb_at:
            self._emit(M.Heartbeat(self.uptime_us(now), 0, sum(self.codec.errors.values())),
                       now)
            self._hb_at = now + self.heartbeat_s
        for p in list(self._inflight.values()):
            if now >= p.next_at:
                if p.tries > self.max_retries:
                    del self._inflight[p.seq]
                    self.c["gave_up"] += 1
                    ev.append(GaveUp(p.seq, p.msg, "retries", p.tries))
                    continue
                p.msg = _refresh(p.msg, now, p.deadline)
                self._emit(p.msg, now, FLAG_ACK_REQ | FLAG_RETRANSMIT, seq=p.seq)
                p.tries += 1
                p.rto = min(p.rto * self.backoff, self.rto_max_s)
                p.next_at = now + p.rto
                self.c["retransmits"] += 1
        self._pump(now)
        return ev

    def _expire(self, now: float, ev: list[Event]) -> None:
        for p in [p for p in self._inflight.values()
                  if p.deadline is not None and now > p.deadline]:
            del self._inflight[p.seq]
            self.c["gave_up"] += 1
            ev.append(GaveUp(p.seq, p.msg, "deadline", p.tries))
        if any(d is not None and now > d for _, d in self._queue):
            keep: deque[tuple[Any, float | None]] = deque()
            for msg, d in self._queue:
                if d is not None and now > d:
                    self.c["gave_up"] += 1
                    ev.append(GaveUp(-1, msg, "deadline", 0))
                else:
                    keep.append((msg, d))
            self._queue = keep

    # ------------------------------------------------------------------ receiving
    def receive(self, data: bytes, now: float) -> list[Event]:
        """Decode ``data`` and handle every frame in it; application messages come
        back as Received events."""
        ev: list[Event] = []
        for r in self.codec.feed(data, now):
            if isinstance(r, DecodeError):
                continue  # counted by the codec
            self.last_rx = now
            self._frame(r, now, ev)
        return ev

    def _frame(self, r: Decoded, now: float, ev: list[Event]) -> None:
        msg = r.msg
        if isinstance(msg, M.Hello):
            self._on_hello(msg, now, ev)
            return
        if isinstance(msg, M.HelloAck):
            self._on_hello_ack(msg, now, ev)
            return
        if not self.up:
            # the peer thinks the link is up (we restarted, or its HELLO_ACK was
            # lost): not acknowledged, so it retransmits; our HELLO tells it
            self.c["dropped_not_up"] += 1
            if not self.peer_accepted and now >= self._hello_at - self.hello_s / 2:
                self._hello(now)
            return
        if isinstance(msg, M.Heartbeat):
            return
        if isinstance(msg, M.Ack):
            p = self._inflight.get(msg.seq)
            if p is not None and M.BY_CLASS[type(p.msg)].type_id == msg.type:
                del self._inflight[msg.seq]
                self.c["acked"] += 1
                ev.append(Acked(p.seq, p.msg, now - p.first_sent, p.tries))
                self._pump(now)
            return
        if isinstance(msg, M.Nack):
            p = self._inflight.pop(msg.seq, None)
            if p is not None:
                self.c["nacked"] += 1
                ev.append(Nacked(p.seq, p.msg, msg.code, msg.reason))
                self._pump(now)
            return
        if r.ack_req:
            self._emit(M.Ack(r.seq, M.BY_CLASS[type(msg)].type_id), now)
            if r.seq in self._seen:
                self.c["duplicates"] += 1
                return
            self._seen.add(r.seq)
            self._seen_order.append(r.seq)
            if len(self._seen_order) > DEDUP_WINDOW:
                self._seen.discard(self._seen_order.popleft())
        self.c["received"] += 1
        ev.append(Received(msg, r.seq))

    def _on_hello(self, h: M.Hello, now: float, ev: list[Event]) -> None:
        status, reason = M.HELLO_OK, ""
        if h.proto_major != M.PROTO_MAJOR:
            status = M.HELLO_BAD_VERSION
            reason = (f"protocol {h.proto_major}.{h.proto_minor} not supported (this end "
                      f"speaks {M.PROTO_MAJOR}.x)")
        elif h.catalogue != M.CATALOGUE_ID:
            status = M.HELLO_BAD_SCHEMA
            reason = (f"message catalogue {h.catalogue:08x} differs from {M.CATALOGUE_ID:08x}"
                      f" (same version {h.proto_major}.{h.proto_minor}, other definitions)")
        elif self.peer_role is not None and h.role != self.peer_role:
            status = M.HELLO_BAD_ROLE
            reason = (f"peer is a {M.ROLES.get(h.role, str(h.role))}, expected a "
                      f"{M.ROLES.get(self.peer_role, str(self.peer_role))}")
        self._emit(M.HelloAck(M.PROTO_MAJOR, M.PROTO_MINOR, status, M.CATALOGUE_ID,
                              int(now * 1e6), reason[:120]), now)
        if status != M.HELLO_OK:
            self.c["refusals"] += 1
            self.we_accepted = False
            if self.refusal != reason:
                log.warning("%s: refused %s: %s", self.name, h.name, reason)
                ev.append(Refused(reason, by_peer=False))
            self.refusal = reason
            return
        known = self.peer is not None
        restarted = self.peer is None or self.peer.boot_id != h.boot_id
        was_up = self.up
        self.peer, self.refusal = h, None
        self.we_accepted = True
        if restarted and known:  # a new instance of a peer we knew: it forgot us
            self.c["peer_restarts"] += 1
            ev.append(PeerRestarted(h.boot_id))
            self._seen.clear()
            self._seen_order.clear()
            self.peer_accepted = False
            self._hello(now)
        if self.up and not was_up:
            self._became_up(now, ev)

    def _on_hello_ack(self, a: M.HelloAck, now: float, ev: list[Event]) -> None:
        if a.status != M.HELLO_OK:
            self.c["refusals"] += 1
            self.peer_accepted = False
            reason = f"peer refused: {a.reason}"
            if self.refusal != reason:
                log.warning("%s: %s", self.name, reason)
                ev.append(Refused(reason, by_peer=True))
            self.refusal = reason
            self._hello_at = now + max(self.hello_s, 5.0)
            return
        was_up = self.up
        self.peer_accepted = True
        if self.up and not was_up:
            self._became_up(now, ev)

    def _became_up(self, now: float, ev: list[Event]) -> None:
        assert self.peer is not None
        ev.append(Up(self.peer))
        self._hb_at = now
        # what was in flight when the link went down goes again, in order, first
        for p in self._inflight.values():
            p.next_at = now
        self._pump(now)

    def counters(self) -> dict[str, int | float]:
        out: dict[str, int | float] = dict(self.c.copy())
        out["up"] = int(self.up)
        out["in_flight"] = len(self._inflight)
        out["queued"] = len(self._queue)
        out.update({f"codec.{k}": v for k, v in self.codec.counters().items()})
        return out


def _refresh(msg: Any, now: float, deadline: float | None) -> Any:
    """A copy of ``msg`` for sending now: a DIVERT carries the time it has left."""
    if deadline is not None and isinstance(msg, M.Divert):
        return dataclasses.replace(msg, deadline_ms=max(0, min(0xFFFFFFFF,
                                                               int((deadline - now) * 1000))))
    return msg
