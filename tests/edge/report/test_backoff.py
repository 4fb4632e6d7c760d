"""Full-jitter exponential backoff (sans-IO)."""

from __future__ import annotations

import random

from edge.report.backoff import Backoff


def test_ceiling_doubles_to_cap_and_delays_stay_below_it() -> None:
    rng = random.Random(1)
    b = Backoff(base_s=0.5, cap_s=8.0, reset_after_s=30.0, rng=rng.random)
    ceilings = []
    for _ in range(8):
        c = b.ceiling()
        d = b.next_delay()
        assert 0.0 <= d <= c
        ceilings.append(c)
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]


def test_reset_only_after_a_connection_that_stayed_up() -> None:
    b = Backoff(base_s=1.0, cap_s=60.0, reset_after_s=30.0, rng=lambda: 1.0)
    for _ in range(4):
        b.next_delay()
    b.connected(100.0)
    b.disconnected(110.0)  # flapping: 10 s up is not enough
    assert b.next_delay() == 16.0
    b.connected(200.0)
    b.disconnected(240.0)
    assert b.next_delay() == 1.0


def test_a_fleet_spreads_its_reconnects() -> None:
    """1000 agents that lost the broker at the same instant: with full jitter their
    first retries after a few failures spread over the whole window, not in step."""
    rng = random.Random(7)
    fleet = [Backoff(0.5, 60.0, 30.0, rng.random) for _ in range(1000)]
    for b in fleet:
        for _ in range(5):
            b.next_delay()
    delays = sorted(b.next_delay() for b in fleet)  # ceiling 16 s
    assert delays[0] < 0.5 and delays[-1] > 15.0
    buckets = [0] * 16
    for d in delays:
        buckets[min(15, int(d))] += 1
    assert max(buckets) < 100  # about 62 per second-wide bucket, no spike
