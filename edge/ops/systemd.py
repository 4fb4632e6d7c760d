"""The systemd notification protocol (``sd_notify``), without libsystemd.

With ``Type=notify`` systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` for the
abstract namespace) and, with ``WatchdogSec=``, ``WATCHDOG_USEC`` (and
``WATCHDOG_PID``). The agent sends ``READY=1`` once its inputs are open,
``WATCHDOG=1`` keep-alives from the main loop at half the watchdog interval (so one
late loop turn does not get it killed, as sd_watchdog_enabled(3) recommends),
``RELOADING=1``/``READY=1`` around a SIGHUP reload and ``STOPPING=1`` on shutdown.
Outside systemd every call is a cheap no-op. Sending never raises: a notification
that cannot be delivered is counted, since a service must not die because its
supervisor went away.

Sending never blocks the main loop for long either. A datagram socket to a reader
that does not keep up fills after ``net.unix.max_dgram_qlen`` (10) messages, and a
blocking ``sendto`` then waits until the reader reads: the whole pipeline would stall
behind its supervisor. Keep-alives are sent without waiting (a full queue is an error
counted, and the next one follows half an interval later); state changes (``READY``,
``RELOADING``, ``STOPPING``), which are rare and which the supervisor acts on, wait
at most :data:`STATE_WAIT_S`.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping

#: the longest a state notification waits for room in the supervisor's queue
STATE_WAIT_S = 1.0


class SystemdNotifier:
    """Sends sd_notify datagrams; ``enabled`` is False when not under systemd."""

    def __init__(self, env: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        env = os.environ if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        self._addr: str | bytes | None = None
        if addr.startswith("@"):
            self._addr = "\0" + addr[1:]
        elif addr.startswith("/"):
            self._addr = addr
        self._clock = clock
        self._sock: socket.socket | None = None
        self.sent = 0
        self.errors = 0
        self.watchdog_interval_s: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval_s = int(usec) / 1e6
        self._next_ping = 0.0

    @property
    def enabled(self) -> bool:
        return self._addr is not None

    def notify(self, *assignments: str, wait_s: float = STATE_WAIT_S) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram, waiting at most ``wait_s`` for
        room (0: not at all); False if not sent."""
        if self._addr is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.settimeout(wait_s)  # 0: non-blocking
            self._sock.sendto("\n".join(assignments).encode(), self._addr)
        except OSError:  # BlockingIOError and TimeoutError are OSErrors
            self.errors += 1
            return False
        self.sent += 1
        return True

    def ready(self, status: str = "") -> None:
        self.notify("READY=1", *([f"STATUS={status}"] if status else []))
        self._next_ping = self._clock()

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def reloading(self) -> None:
        # RELOADING=1 needs MONOTONIC_USEC for Type=notify-reload (systemd >= 253).
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self, status: str = "") -> None:
        self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def keepalive(self) -> bool:
        """Call from every main-loop turn: pings at half the watchdog interval."""
        if self.watchdog_interval_s is None or self._addr is None:
            return False
        now = self._clock()
        if now < self._next_ping:
            return False
        self._next_ping = now + self.watchdog_interval_s / 2
        return self.notify("WATCHDOG=1", wait_s=0.0)

    def counters(self) -> dict[str, int | float]:
        return {"sent": self.sent, "errors": self.errors}

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
