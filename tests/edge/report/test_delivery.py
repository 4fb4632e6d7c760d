"""The link's delivery rules on their own: byte-free events in, actions out (no
broker, no socket, no outbox, no clock)."""

from __future__ import annotations

from edge.report.delivery import (
    ACK_BATCH,
    CheckTls,
    DeadLetter,
    Delete,
    Delivery,
    ExpireStore,
    Fetch,
    Heartbeat,
    Publish,
)
from edge.report.outbox import ALERT, Pending


def _reports(first: int, n: int) -> list[Pending]:
    return [Pending(seq, f"id{seq}", ALERT, 0.0, f"t/{seq}", b"x")
            for seq in range(first, first + n)]


class Broker:
    """Stands in for paho and the outbox: carries out the actions, hands out mids."""

    def __init__(self, m: Delivery, store: list[Pending]) -> None:
        self.m, self.store = m, store
        self.mid = 100
        self.sent: dict[int, int] = {}  # mid -> seq
        self.deleted: list[int] = []
        self.dead: list[DeadLetter] = []
        self.other: list[object] = []

    def poll(self, now: float) -> None:
        while acts := self.m.poll(now):
            for a in acts:
                if isinstance(a, Fetch):
                    self.m.fetched([p for p in self.store if p.seq > a.after_seq][:a.limit])
                elif isinstance(a, Publish):
                    self.mid += 1
                    self.sent[self.mid] = a.report.seq
                    self.m.sent(a.report.seq, self.mid)
                else:
                    self.take(a)

    def take(self, a: object) -> None:
        if isinstance(a, Delete):
            self.deleted += a.seqs
            gone = set(a.seqs)
            self.store[:] = [p for p in self.store if p.seq not in gone]
        elif isinstance(a, DeadLetter):
            self.dead.append(a)
            self.store[:] = [p for p in self.store if p.seq != a.seq]
        else:
            self.other.append(a)

    def mid_of(self, seq: int) -> int:
        return next(mid for mid, s in self.sent.items() if s == seq)


def test_window_fetch_and_batched_deletes_after_the_hold() -> None:
    m = Delivery(inflight=3, ack_hold_s=0.1)
    b = Broker(m, _reports(1, 5))
    m.connection_made(0.0, heartbeat_s=60.0, tls_check_s=None)
    b.poll(0.0)
    assert sorted(b.sent.values()) == [1, 2, 3] and len(m.inflight) == 3  # the window
    assert m.c["published"] == 3
    m.puback(b.mid_of(1))
    m.puback(b.mid_of(2))
    m.puback(999)  # the birth message's PUBACK: not a report
    b.poll(0.05)
    assert b.deleted == [] and sorted(b.sent.values()) == [1, 2, 3, 4, 5]  # held back
    b.poll(0.2)  # held for ack_hold_s, then the batch is deleted 5 ms later
    b.poll(0.21)
    assert b.deleted == [1, 2] and m.c["acked"] == 2
    # new reports: the store is looked at again only after enqueued()
    b.store += _reports(6, 2)
    b.poll(0.3)
    assert 6 not in b.sent.values()
    m.enqueued()
    m.puback(b.mid_of(3))
    b.poll(0.3)
    assert 6 in b.sent.values()


def test_failure_puback_is_a_dead_letter_and_quota_stays_pending() -> None:
    m = Delivery(inflight=10, ack_hold_s=0.0)
    b = Broker(m, _reports(1, 3))
    m.connection_made(0.0, 60.0, None)
    b.poll(0.0)
    m.puback(b.mid_of(1), "Not authorized (0x87)", 0x87)
    m.puback(b.mid_of(2), "Quota exceeded (0x97)", 0x97)
    m.puback(b.mid_of(3))
    b.poll(1.0)
    assert b.dead == [DeadLetter(1, "t/1", "Not authorized (0x87)")] and m.denied_here
    b.poll(1.01)  # deletes go in batches, at most 5 ms after the first ack
    assert b.deleted == [3] and [p.seq for p in b.store] == [2]  # 2 is re-sent later


def test_lost_connection_resends_everything_unacknowledged_held_acks_once() -> None:
    m = Delivery(inflight=4, ack_hold_s=5.0)
    b = Broker(m, _reports(1, 4))
    m.connection_made(0.0, 60.0, None)
    b.poll(0.0)
    m.puback(b.mid_of(1))
    m.puback(b.mid_of(2))
    b.poll(0.1)
    for a in m.connection_lost():  # acks held (broker may have crashed): sent again
        b.take(a)
    assert b.deleted == [] and m.c["resent_after_loss"] == 2 and m.careful
    m.connection_made(10.0, 60.0, None)
    b.sent.clear()
    b.poll(10.0)
    assert list(b.sent.values()) == [1]  # careful: a window of one after a loss
    m.puback(b.mid_of(1))
    b.poll(10.1)
    for a in m.connection_lost():  # report 1's ack was held twice: deleted, not re-sent
        b.take(a)
    assert b.deleted == [1] and m.c["resent_after_loss"] == 2


def test_careful_window_reopens_after_clean_acks() -> None:
    m = Delivery(inflight=5, ack_hold_s=0.0)
    b = Broker(m, _reports(1, 100))
    m.careful = True
    m.connection_made(0.0, 60.0, None)
    for i in range(20):
        b.poll(i / 100)
        assert m.window == 1 and len(m.inflight) == 1
        m.puback(next(iter(m.inflight)))
    b.poll(0.2)  # the 20th clean ack (max(20, 2 x 5)) reopens the full window
    assert m.c["acked"] == 20 and m.window == 5 and not m.careful
    assert len(m.inflight) == 5


def test_a_report_alone_in_flight_three_times_becomes_a_dead_letter() -> None:
    m = Delivery(inflight=1, ack_hold_s=0.0)
    b = Broker(m, _reports(7, 1))
    for attempt in range(3):
        m.connection_made(float(attempt), 60.0, None)
        b.poll(float(attempt))
        for a in m.connection_lost():  # the broker closes instead of refusing
            b.take(a)
        assert bool(b.dead) == (attempt == 2)
    assert b.dead[0].seq == 7 and "3 times" in b.dead[0].reason
    m.connection_made(5.0, 60.0, None)
    b.poll(5.0)
    assert not m.inflight  # nothing left to send


def test_leaving_deletes_held_acks() -> None:
    m = Delivery(inflight=2, ack_hold_s=60.0)
    b = Broker(m, _reports(1, 2))
    m.connection_made(0.0, 60.0, None)
    b.poll(0.0)
    m.puback(b.mid_of(1))
    b.poll(0.1)
    assert b.deleted == []
    for a in m.leaving():  # a clean close: the broker has them
        b.take(a)
    assert b.deleted == [1]


def test_deletes_are_batched() -> None:
    m = Delivery(inflight=1000, ack_hold_s=0.0)
    b = Broker(m, _reports(1, 600))
    m.connection_made(0.0, 60.0, None)
    b.poll(0.0)
    for seq in range(1, ACK_BATCH + 1):
        m.puback(b.mid_of(seq))
    acts = m.poll(0.0)  # a full batch goes at once, without waiting
    assert [len(a.seqs) for a in acts if isinstance(a, Delete)] == [ACK_BATCH]
    m.puback(b.mid_of(ACK_BATCH + 1))
    assert not [a for a in m.poll(0.001) if isinstance(a, Delete)]  # waits 5 ms
    assert [a.seqs for a in m.poll(0.01) if isinstance(a, Delete)] == [(ACK_BATCH + 1,)]


def test_timers_and_a_heartbeat_period_changed_at_runtime() -> None:
    m = Delivery(inflight=1, ack_hold_s=0.0)
    m.connection_made(0.0, heartbeat_s=60.0, tls_check_s=5.0)
    assert m.due(1.0) == []
    assert m.due(5.0) == [CheckTls()]
    assert m.due(10.0) == [ExpireStore(), CheckTls()]
    m.set_heartbeat(2.0, 11.0)  # counts from now, not from the last heartbeat
    assert m.timeout(11.0) == 0.5
    assert Heartbeat() in m.due(13.0) and Heartbeat() not in m.due(14.0)
    m.request_heartbeat()
    assert m.due(14.1) == [Heartbeat()]
    # the wait is 0 while there is something to send and room in the window
    m.fetched(_reports(1, 1))
    assert m.timeout(14.2) == 0.0
