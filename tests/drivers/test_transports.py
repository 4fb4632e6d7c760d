"""Every transport through the back-to-back base, plus what is particular to each:
the memory twin and a real pty pair vanishing, USB lookup, the factory."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from back2back import Back2BackTest

from drivers.framing import LineFramer
from drivers.transport import (
    FileTransport,
    MemoryTransport,
    PtyPair,
    ReconnectingReader,
    SerialTransport,
    TcpTransport,
    UdpTransport,
    find_usb_port,
    open_transport,
)
from edge.errors import TransportError
from edge.report.backoff import Backoff


class TestMemory(Back2BackTest):
    def make_pair(self) -> tuple[Any, Any]:
        return MemoryTransport.pair()


class _PtyEnds:
    """The agent's SerialTransport on the slave path, the simulator on the master."""

    def __init__(self) -> None:
        self.pty = PtyPair()
        self.serial = SerialTransport(self.pty.slave_path, baudrate=115200)
        self.serial.open()


class TestPty(Back2BackTest):
    def make_pair(self) -> tuple[Any, Any]:
        ends = _PtyEnds()
        return ends.serial, ends.pty


class TestTcp(Back2BackTest):
    def make_pair(self) -> tuple[Any, Any]:
        srv = socket.create_server(("127.0.0.1", 0))
        port = srv.getsockname()[1]
        a = TcpTransport("127.0.0.1", port)
        a.open()
        conn, _ = srv.accept()
        srv.close()
        return a, _SocketEnd(conn)


class TestUdp(Back2BackTest):
    DATAGRAM = True
    LARGE = 128 * 1024

    def make_pair(self) -> tuple[Any, Any]:
        b = UdpTransport(bind=("127.0.0.1", 0))
        b.open()
        a = UdpTransport(remote=b.local_address, bind=("127.0.0.1", 0))
        a.open()
        b.remote = a.local_address
        return a, b


class TestSerialOverSocketUrl(Back2BackTest):
    """pyserial's socket:// URL handler: a serial-over-TCP converter."""

    def make_pair(self) -> tuple[Any, Any]:
        srv = socket.create_server(("127.0.0.1", 0))
        port = srv.getsockname()[1]
        a = SerialTransport(f"socket://127.0.0.1:{port}")
        a.open()
        conn, _ = srv.accept()
        srv.close()
        return a, _SocketEnd(conn)


class _SocketEnd:
    """The device side of a TCP test: an accepted socket with the Transport API."""

    name = "peer"

    def __init__(self, sock: socket.socket) -> None:
        self.t = TcpTransport("peer", 0)
        self.t._sock = sock

    def read(self, n: int, timeout: float) -> bytes:
        return self.t.read(n, timeout)

    def write(self, data: bytes) -> None:
        self.t.write(data)

    def close(self) -> None:
        self.t.close()

    def counters(self) -> dict[str, int | float]:
        return self.t.counters()


def test_memory_twin_vanishes_and_comes_back() -> None:
    a, b = MemoryTransport.pair()
    a.vanish()
    with pytest.raises(TransportError, match="vanished"):
        a.read(10, 0.01)
    with pytest.raises(TransportError, match="not present"):
        b.open()
    a.reappear()
    a.open()
    b.open()
    b.write(b"back")
    assert a.read(10, 1.0) == b"back"


def test_a_blocked_reader_wakes_when_the_device_vanishes() -> None:
    a, b = MemoryTransport.pair()
    threading.Timer(0.1, b.vanish).start()
    t0 = time.monotonic()
    with pytest.raises(TransportError):
        a.read(10, 5.0)
    assert time.monotonic() - t0 < 2.0


def test_pty_hang_up_is_a_transport_error_on_the_serial_side() -> None:
    ends = _PtyEnds()
    ends.pty.write(b"x")
    assert ends.serial.read(10, 1.0) == b"x"
    ends.pty.close()  # master and our slave descriptor gone: the device vanished
    with pytest.raises(TransportError):
        for _ in range(20):
            ends.serial.read(10, 0.05)
    ends.serial.close()


def test_pty_port_is_opened_exclusively() -> None:
    ends = _PtyEnds()
    try:
        second = SerialTransport(ends.pty.slave_path)
        with pytest.raises(TransportError, match="cannot open"):
            second.open()
    finally:
        ends.serial.close()
        ends.pty.close()


def test_reconnecting_reader_over_a_vanishing_pty() -> None:
    """A real tty: the reader sees the device go and opens the new one when back."""
    pty = PtyPair()
    port = SerialTransport(pty.slave_path)
    rd = ReconnectingReader(port, framer=LineFramer(b"\n"),
                            backoff=Backoff(base_s=0.01, cap_s=0.05))
    assert rd.read_frames(0.01) == [] and rd.state == "open"
    pty.write(b"one\n")  # (pyserial discards input that arrived before the open)
    frames: list[Any] = []
    for _ in range(20):
        frames += rd.read_frames(0.1)
        if frames:
            break
    assert frames == [b"one"] and rd.state == "open"
    pty.write(b"partial")
    for _ in range(5):
        rd.read_frames(0.05)
    pty.close()
    for _ in range(40):
        rd.read_frames(0.02)
        if rd.state == "backoff":
            break
    assert rd.state == "backoff" and rd.disconnects == 1 and rd.partial_dropped == 1
    assert rd.counters()["connected"] == 0
    pty2 = PtyPair()  # the device is back (under a new path: re-point the port)
    port.port = pty2.slave_path
    frames = []
    for _ in range(50):
        frames += rd.read_frames(0.05)
        if rd.state == "open":
            break
    pty2.write(b"two\n")
    for _ in range(50):
        frames += rd.read_frames(0.05)
        if frames:
            break
    assert frames == [b"two"] and rd.opens == 2 and rd.counters()["connected"] == 1
    rd.close()
    pty2.close()


def test_reconnecting_reader_backs_off_between_failed_opens() -> None:
    a, b = MemoryTransport.pair()
    a.vanish()
    clock = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    rd = ReconnectingReader(a, backoff=Backoff(base_s=1.0, cap_s=8.0, rng=lambda: 1.0),
                            clock=lambda: clock[0], sleep=sleep)
    for _ in range(12):
        assert rd.read(0.5) == b""
    assert rd.open_failures >= 3 and not rd.write(b"x") and rd.writes_dropped == 1
    # delays double up to the cap: 1, 2, 4, 8 ... (full jitter with rng = 1)
    assert rd.backoff.attempt == rd.open_failures
    a.reappear()
    b.open()
    b.write(b"ok")
    got = b""
    for _ in range(40):
        got += rd.read(0.5)
        if got:
            break
    assert got == b"ok" and rd.state == "open"


def test_usb_identity_lookup() -> None:
    def port(dev: str, vid: int, pid: int, sn: str) -> Any:
        return mock.Mock(device=dev, vid=vid, pid=pid, serial_number=sn)

    ports = [port("/dev/ttyUSB0", 0x0403, 0x6001, "A1"), port("/dev/ttyUSB1", 0x0403, 0x6001,
                                                             "B2"),
             port("/dev/ttyACM0", 0x2341, 0x0043, "C3")]
    with mock.patch("serial.tools.list_ports.comports", return_value=ports):
        assert find_usb_port("usb:2341:0043") == "/dev/ttyACM0"
        assert find_usb_port("usb:0403:6001:B2") == "/dev/ttyUSB1"
        with pytest.raises(TransportError, match="2 adapters match"):
            find_usb_port("usb:0403:6001")
        with pytest.raises(TransportError, match="no USB serial adapter"):
            find_usb_port("usb:dead:beef")
        with pytest.raises(TransportError, match="hex"):
            find_usb_port("usb:xyz:1")


def test_file_transport_replays_and_follows(tmp_path: Path) -> None:
    rec = tmp_path / "scanner.bin"
    rec.write_bytes(b"SF1\r\nSF2\r\n")
    sent = tmp_path / "sent.bin"
    t = FileTransport(rec, write_path=sent)
    t.open()
    assert t.read(6, 0.1) == b"SF1\r\nS" and t.read(100, 0.1) == b"F2\r\n"
    assert t.read(100, 0.1) == b"" and t.eof
    t.write(b"ACK")
    t.close()
    assert sent.read_bytes() == b"ACK"
    f = FileTransport(rec, follow=True, poll_s=0.01)
    f.open()
    f.read(100, 0.1)
    threading.Timer(0.05, lambda: rec.open("ab").write(b"SF3\r\n")).start()
    assert f.read(100, 2.0) == b"SF3\r\n" and not f.eof
    f.close()


def test_factory_picks_the_transport() -> None:
    assert isinstance(open_transport("tcp://10.0.0.5:4001"), TcpTransport)
    u = open_transport("udp-bind://:9000")
    assert isinstance(u, UdpTransport) and u.bind == ("0.0.0.0", 9000)
    assert isinstance(open_transport("file:///tmp/x.bin"), FileTransport)
    s = open_transport("usb:0403:6001", baudrate=115200)
    assert isinstance(s, SerialTransport) and s._kw["baudrate"] == 115200
    loop = open_transport("loop://")
    loop.open()
    loop.write(b"echo")
    assert loop.read(10, 1.0) == b"echo"
    loop.close()
    with pytest.raises(TransportError, match="host:port"):
        open_transport("tcp://nowhere")
