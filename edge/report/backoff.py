"""Reconnect delays: exponential backoff with full jitter (no I/O, no clock inside).

``delay = uniform(0, min(cap, base * 2**attempt))`` (AWS "full jitter"): a fleet of
agents that lost the broker at the same instant spreads its reconnects over the whole
window instead of arriving in waves. A connection that stayed up ``reset_after_s``
resets the attempt counter; a connection that flaps does not.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    def __init__(self, base_s: float = 0.5, cap_s: float = 60.0, reset_after_s: float = 30.0,
                 rng: Callable[[], float] = random.random) -> None:
        self.base_s, self.cap_s, self.reset_after_s = base_s, cap_s, reset_after_s
        self._rng = rng
        self.attempt = 0
        self._up_since: float | None = None

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        return min(self.cap_s, self.base_s * (2.0 ** min(self.attempt, 62)))

    def next_delay(self) -> float:
        """The delay before the next connection attempt (and count the attempt)."""
        d = self._rng() * self.ceiling()
        self.attempt += 1
        return d

    def connected(self, now: float) -> None:
        self._up_since = now

    def disconnected(self, now: float) -> None:
        if self._up_since is not None and now - self._up_since >= self.reset_after_s:
            self.attempt = 0
        self._up_since = None
