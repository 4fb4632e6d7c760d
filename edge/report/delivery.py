"""The MQTT link's delivery policy as a state machine without I/O (sans-IO).

:class:`Delivery` never touches a socket, the outbox or a clock. The I/O loop
(:mod:`edge.report.link`) tells it what happened, as byte-free events, and carries
out the actions it returns:

events in                                  actions out
``connection_made(now, ...)``              :class:`Fetch` (read pending reports)
``enqueued()`` (new reports stored)        :class:`Publish` (one report, QoS 1)
``fetched(reports)`` (answer to a Fetch)   :class:`Delete` (acknowledged: delete)
``sent(seq, mid)`` (paho took a Publish)   :class:`DeadLetter` (refused for good)
``puback(mid, failure, temporary)``        :class:`Heartbeat`, :class:`ExpireStore`,
``poll(now)`` / ``due(now)`` (time)        :class:`CheckTls` (periodic work)
``connection_lost()`` / ``leaving()``

The rules, all here:

- at most ``inflight`` reports unacknowledged; pending reports are sent oldest first;
- a PUBACK's mid is mapped back to the report's outbox sequence number through a map
  that lives exactly as long as the connection (paho's mids restart with every client
  and are no key);
- acknowledged reports are held back from deletion for ``ack_hold_s`` (a broker that
  crashes right after its PUBACK may not have delivered or saved the message), then
  deleted in batches (256, or 5 ms after the first);
- a PUBACK with a failure reason other than quota exceeded (0x97, left pending) makes
  the report a dead letter; on a lost connection everything unacknowledged is sent
  again on the next one, the held acks once only;
- after a connection broke with reports in flight, the next starts with a window of
  one (mosquitto 2.0.11 answers an ACL denial with the failure PUBACK and then closes:
  with more in flight the refused report would be re-sent forever) and goes back to
  the full window after ``max(20, 2 x inflight)`` clean acks; a report that was alone
  in flight when the connection broke three times is a dead letter (MQTT 3.1.1 has no
  reason codes);
- heartbeat every ``heartbeat_s`` (a new period counts from now), store expiry every
  10 s, TLS file check every ``tls_check_s``.

Time is the caller's monotonic clock, passed in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from edge.report.outbox import Pending

#: PUBACK reason codes that may change by sending the same message again.
TEMPORARY_PUBACK = frozenset({0x97})  # quota exceeded: left pending, re-sent later
EXPIRE_EVERY_S = 10.0
ACK_BATCH = 256
ACK_DELAY_S = 0.005
FETCH_MIN = 256
SUSPECT_AFTER = 3


@dataclass(frozen=True, slots=True)
class Fetch:
    """Read up to ``limit`` pending reports with a sequence number above ``after_seq``
    and hand them to :meth:`Delivery.fetched`."""

    after_seq: int
    limit: int


@dataclass(frozen=True, slots=True)
class Publish:
    """Publish this report (QoS 1) and tell :meth:`Delivery.sent` its mid."""

    report: Pending


@dataclass(frozen=True, slots=True)
class Delete:
    """These reports were acknowledged: delete them from the outbox."""

    seqs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """The broker refused this report for good: move it to the dead letters."""

    seq: int
    topic: str
    reason: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Publish a heartbeat now."""


@dataclass(frozen=True, slots=True)
class ExpireStore:
    """Drop reports past their TTL now."""


@dataclass(frozen=True, slots=True)
class CheckTls:
    """Look whether the TLS files changed (reconnect if so)."""


Action = Fetch | Publish | Delete | DeadLetter | Heartbeat | ExpireStore | CheckTls


class Delivery:
    """The delivery state of one link: what survives connections (the careful window,
    suspects, reports already re-sent once) and what lives for one connection (the
    mid map, the fetched queue, held acks, timers). ``counters`` (shared with the link)
    gets ``published``, ``acked`` and ``resent_after_loss``."""

    def __init__(self, inflight: int, ack_hold_s: float,
                 counters: dict[str, int] | None = None) -> None:
        if inflight < 1:
            raise ValueError("inflight must be at least 1")
        self.max_window = inflight
        self.hold = ack_hold_s
        self.c = counters if counters is not None else {}
        for k in ("published", "acked", "resent_after_loss"):
            self.c.setdefault(k, 0)
        self.careful = False
        self._resent_once: set[int] = set()
        self._suspects: dict[int, int] = {}
        self.connection_made(0.0, 3600.0, None)
        self.connected = False

    # ------------------------------------------------------------------ events
    def connection_made(self, now: float, heartbeat_s: float,
                        tls_check_s: float | None) -> None:
        """A new connection (CONNACK accepted): everything per connection starts over."""
        self.connected = True
        self.inflight: dict[int, tuple[int, str]] = {}  # mid -> (outbox seq, topic)
        self.queue: deque[Pending] = deque()
        self.cursor = 0  # highest outbox seq fetched on this connection
        self.window = 1 if self.careful else self.max_window
        self._careful_left = max(20, 2 * self.max_window)
        self.denied_here = False
        self.acks: list[int] = []
        self._acks_since = 0.0
        self.held: deque[tuple[float, list[int]]] = deque()
        self._acked: list[int] = []  # PUBACKs not yet taken by poll()
        self._denied: list[tuple[int, str, str]] = []
        self.exhausted = False
        self._fetch_limit = 0
        self.heartbeat_s = heartbeat_s
        self.next_heartbeat = now + heartbeat_s
        self._heartbeat_now = False
        self.tls_check_s = tls_check_s
        self.next_tls = now + tls_check_s if tls_check_s is not None else float("inf")
        self.next_expire = now + EXPIRE_EVERY_S

    def enqueued(self) -> None:
        """New reports were stored: look in the store again even if it seemed empty."""
        self.exhausted = False

    def fetched(self, reports: Sequence[Pending]) -> None:
        """The answer to the last :class:`Fetch`, in sequence order."""
        if len(reports) < self._fetch_limit:
            self.exhausted = True
        self._fetch_limit = 0
        if reports:
            self.queue.extend(reports)
            self.cursor = reports[-1].seq

    def sent(self, seq: int, mid: int) -> None:
        """The report ``seq`` (the head of the queue) went out with message id ``mid``."""
        p = self.queue.popleft()
        if p.seq != seq:
            self.queue.appendleft(p)
            raise ValueError(f"sent {seq}, but the next report is {p.seq}")
        self.inflight[mid] = (p.seq, p.topic)
        self.c["published"] += 1

    def puback(self, mid: int, failure: str | None = None, code: int = 0) -> None:
        """A PUBACK for ``mid``; ``failure`` is its reason when it is a failure (MQTT 5)
        and ``code`` the reason code. Unknown mids (birth, will, acks) are ignored."""
        hit = self.inflight.pop(mid, None)
        if hit is None:
            return
        if failure is not None and code not in TEMPORARY_PUBACK:
            self._denied.append((hit[0], hit[1], failure))
        elif failure is None:
            self._acked.append(hit[0])
        # temporary failure: left pending, sent again on the next connection

    def request_heartbeat(self) -> None:
        self._heartbeat_now = True

    def set_heartbeat(self, period_s: float, now: float) -> None:
        """A new heartbeat period (runtime config): counts from now."""
        if period_s != self.heartbeat_s:
            self.heartbeat_s = period_s
            self.next_heartbeat = min(self.next_heartbeat, now + period_s)

    # ------------------------------------------------------------------ actions
    def poll(self, now: float) -> list[Action]:
        """Acknowledgements to delete, refusals to dead-letter, reports to fetch and
        publish. Call again after carrying out a :class:`Fetch` (until it returns
        nothing new to do)."""
        out: list[Action] = []
        self._take_acks(now)
        if self.held:
            limit = now - self.hold
            while self.held and self.held[0][0] <= limit:
                if not self.acks:
                    self._acks_since = now
                self.acks.extend(self.held.popleft()[1])
        out += self._take_denied()
        if self.acks and (len(self.acks) >= ACK_BATCH or now - self._acks_since >= ACK_DELAY_S):
            out.append(Delete(tuple(self.acks)))
            self.acks = []
        free = self.window - len(self.inflight)
        if free > 0:
            out += [Publish(p) for _, p in zip(range(free), self.queue, strict=False)]
            if len(self.queue) < free and not self.exhausted and not self._fetch_limit:
                self._fetch_limit = max(self.window, FETCH_MIN)
                out.append(Fetch(self.cursor, self._fetch_limit))
        return out

    def due(self, now: float) -> list[Action]:
        """Periodic work that is due: heartbeat, store expiry, TLS file check."""
        out: list[Action] = []
        if now >= self.next_heartbeat or self._heartbeat_now:
            self._heartbeat_now = False
            self.next_heartbeat = now + self.heartbeat_s
            out.append(Heartbeat())
        if now >= self.next_expire:
            self.next_expire = now + EXPIRE_EVERY_S
            out.append(ExpireStore())
        if self.tls_check_s is not None and now >= self.next_tls:
            self.next_tls = now + self.tls_check_s
            out.append(CheckTls())
        return out

    def timeout(self, now: float) -> float:
        """How long the I/O loop may wait for the socket before calling again."""
        if self.queue and len(self.inflight) < self.window:
            return 0.0
        return min(ACK_DELAY_S if self.acks or self.held else 0.5,
                   max(0.0, self.next_heartbeat - now))

    def leaving(self) -> list[Action]:
        """The connection is closed on purpose (shutdown, reconnect): the held acks are
        good (the broker did not crash), delete them."""
        self.connected = False
        for _, seqs in self.held:
            self.acks.extend(seqs)
        self.held.clear()
        out: list[Action] = [Delete(tuple(self.acks))] if self.acks else []
        self.acks = []
        return out

    def connection_lost(self) -> list[Action]:
        """The connection broke. Held acks are sent again (once per report); a report
        alone in flight is suspected; returns the deletes and dead letters."""
        self.connected = False
        self._take_acks(None)
        out = self._take_denied()
        if self.inflight:
            self.careful = True
        again = [q for _, seqs in self.held for q in seqs]
        self.held.clear()
        once = self._resent_once
        self.acks.extend(q for q in again if q in once)
        fresh = [q for q in again if q not in once]
        if len(once) > 100_000:
            once.clear()
        once.update(fresh)
        self.c["resent_after_loss"] += len(fresh)
        if self.window == 1 and len(self.inflight) == 1:
            out += self._suspect(next(iter(self.inflight.values())))
        if self.acks:
            out.append(Delete(tuple(self.acks)))
            self.acks = []
        return out

    # ------------------------------------------------------------------ internals
    def _take_acks(self, now: float | None) -> None:
        if not self._acked:
            return
        batch, self._acked = self._acked, []
        self.c["acked"] += len(batch)
        if self.window < self.max_window:
            self._careful_left -= len(batch)
            if self._careful_left <= 0:
                self.window = self.max_window
                self.careful = False
        if self.hold > 0:
            # a lost connection (now None) re-sends these once: see connection_lost
            self.held.append((now if now is not None else float("inf"), batch))
        else:
            if not self.acks:
                self._acks_since = now or 0.0
            self.acks.extend(batch)

    def _take_denied(self) -> list[Action]:
        if not self._denied:
            return []
        self.denied_here = True
        out: list[Action] = [DeadLetter(s, t, r) for s, t, r in self._denied]
        self._denied = []
        return out

    def _suspect(self, hit: tuple[int, str]) -> list[Action]:
        """The connection broke while this report was the only one in flight, with no
        PUBACK: after three times it is treated as refused (dead letter)."""
        seq, topic = hit
        n = self._suspects.get(seq, 0) + 1
        self._suspects[seq] = n
        if n >= SUSPECT_AFTER:
            del self._suspects[seq]
            return [DeadLetter(seq, topic, "the broker closed the connection each of 3 "
                               "times this report was sent (probably not authorized; MQTT "
                               "3.1.1 has no reason codes)")]
        if len(self._suspects) > 1000:
            self._suspects.clear()
        return []
