"""The sd_notify protocol against a real datagram socket standing in for systemd."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from edge.ops.systemd import STATE_WAIT_S, SystemdNotifier


def _listener(tmp_path: Path) -> tuple[socket.socket, str]:
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(2)
    return s, path


def test_ready_status_stopping(tmp_path: Path) -> None:
    sock, path = _listener(tmp_path)
    n = SystemdNotifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    n.ready("3 sources open")
    assert sock.recv(4096).decode().split("\n") == ["READY=1", "STATUS=3 sources open"]
    n.reloading()
    msg = sock.recv(4096).decode().split("\n")
    assert msg[0] == "RELOADING=1" and msg[1].startswith("MONOTONIC_USEC=")
    n.stopping()
    assert sock.recv(4096) == b"STOPPING=1"
    assert n.counters() == {"sent": 3, "errors": 0}


def test_watchdog_at_half_interval(tmp_path: Path) -> None:
    sock, path = _listener(tmp_path)
    clock = [100.0]
    n = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000",
                         "WATCHDOG_PID": str(os.getpid())}, clock=lambda: clock[0])
    assert n.watchdog_interval_s == 2.0
    n.ready()
    sock.recv(4096)
    pings = 0
    for _ in range(40):  # 4 s of main-loop turns, 0.1 s apart
        if n.keepalive():
            assert sock.recv(4096) == b"WATCHDOG=1"
            pings += 1
        clock[0] += 0.1
    assert pings == 4  # at t=0, 1, 2, 3: every half interval


def test_watchdog_for_another_pid_is_ignored(tmp_path: Path) -> None:
    _, path = _listener(tmp_path)
    n = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000",
                         "WATCHDOG_PID": "1"})
    assert n.watchdog_interval_s is None and not n.keepalive()


def test_outside_systemd_is_a_no_op() -> None:
    n = SystemdNotifier({})
    assert not n.enabled
    n.ready()
    assert not n.keepalive() and n.counters() == {"sent": 0, "errors": 0}


def test_supervisor_gone_is_counted_not_raised(tmp_path: Path) -> None:
    n = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")})
    n.ready()
    n.stopping()
    assert n.counters() == {"sent": 0, "errors": 2}


def test_abstract_namespace_socket() -> None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"afe-test-{os.getpid()}"
    s.bind("\0" + name)
    s.settimeout(2)
    SystemdNotifier({"NOTIFY_SOCKET": "@" + name}).ready()
    assert s.recv(4096) == b"READY=1"


def test_a_supervisor_that_does_not_read_never_stalls_the_loop(tmp_path: Path) -> None:
    # nobody reads: the socket's queue (net.unix.max_dgram_qlen, 10 by default) fills
    _sock, path = _listener(tmp_path)
    clock = [0.0]
    n = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"},
                        clock=lambda: clock[0])
    t0 = time.monotonic()
    for _ in range(200):  # far more keep-alives than the queue holds
        n.keepalive()
        clock[0] += 0.1
    took = time.monotonic() - t0
    c = n.counters()
    assert c["sent"] >= 1 and c["errors"] >= 1 and c["sent"] + c["errors"] == 200
    assert took < 1.0, f"keep-alives blocked for {took:.1f} s"
    # a state change waits, but only a bounded time, and is counted when it gives up
    t0 = time.monotonic()
    n.stopping()
    took = time.monotonic() - t0
    assert n.counters()["errors"] == c["errors"] + 1
    assert STATE_WAIT_S * 0.5 <= took < STATE_WAIT_S + 1.0
