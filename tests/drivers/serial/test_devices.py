"""Each depot serial driver back to back with its device: on the in-memory twin and on a
real pseudo-terminal, with garbage, split frames, and the device vanishing and coming
back (reconnect with backoff, counted, ``port.connected`` in the counters)."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drivers.serial.device import SerialDeviceSource
from drivers.serial.rfid import notice
from drivers.transport.memory import MemoryTransport
from drivers.transport.pty import PtyPair
from drivers.transport.reconnect import ReconnectingReader
from drivers.transport.serialport import SerialTransport
from edge.courier.records import DimsReading, RfidRead, ScanRead, WeightReading
from edge.courier.station import make_core, poll_bytes
from edge.errors import TransportError
from edge.report.backoff import Backoff

# what each device sends for message k, and the record the driver must make of it
MESSAGES: dict[str, Callable[[int], bytes]] = {
    "scanner": lambda k: f"]C1SF{k:013d}\r\n".encode(),
    "scale": lambda k: f"S S {k + 0.5:10.3f} kg\r\n".encode(),
    "dims": lambda k: f"\x02MAC,L {k + 10:.1f},W 20.0,H 5.0cm,K 1.0,D 0.3kg,F0166,D\x03\r\n"
    .encode(),
    "rfid": lambda k: notice(bytes([k % 256]) * 12),
}
KEY: dict[str, Callable[[Any], int]] = {
    "scanner": lambda r: int(r.code[2:]) if isinstance(r, ScanRead) and r.valid else -1,
    "scale": lambda r: round(r.kg - 0.5) if isinstance(r, WeightReading) else -1,
    "dims": lambda r: round(r.length_cm - 10) if isinstance(r, DimsReading) else -1,
    "rfid": lambda r: int(r.epc[:2], 16) if isinstance(r, RfidRead) else -1,
}


class Device:
    """The device end: replies to polls (or sends on its own) with noise and splits."""

    def __init__(self, kind: str, port: Any) -> None:
        self.kind, self.port = kind, port
        self.rng = random.Random(kind)
        self.k = 0
        self.sent: list[int] = []
        self.stop = threading.Event()
        self.polled = poll_bytes(kind, {}) is not None
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def send(self) -> None:
        data = MESSAGES[self.kind](self.k)
        if self.rng.random() < 0.3:
            data = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(3, 20))) + data
        cut = self.rng.randrange(1, len(data))
        try:
            self.port.write(data[:cut])
            time.sleep(0.001)
            self.port.write(data[cut:])
        except TransportError:
            return
        self.sent.append(self.k)
        self.k += 1

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                got = self.port.read(64, 0.02)
            except TransportError:
                time.sleep(0.02)
                try:
                    self.port.open()  # the device powers up again once it is back
                except TransportError:
                    pass
                continue
            if self.polled and got:
                self.send()
            elif not self.polled:
                self.send()
                time.sleep(0.01)


class PtyLink:
    """A pty behind a stable symlink, as /dev/serial/by-id/... is for a USB adapter."""

    def __init__(self, tmp: Path) -> None:
        self.link = tmp / "dev"
        self.pair = self._plug()

    def _plug(self) -> PtyPair:
        pair = PtyPair("dev")
        tmp = self.link.with_suffix(".new")
        os.symlink(pair.slave_path, tmp)
        os.replace(tmp, self.link)
        return pair

    def open(self) -> None:
        self.pair.open()

    def read(self, n: int, t: float) -> bytes:
        return self.pair.read(n, t)

    def write(self, data: bytes) -> None:
        self.pair.write(data)

    def vanish(self) -> None:
        self.pair.close()

    def reappear(self) -> None:
        self.pair = self._plug()

    def close(self) -> None:
        self.pair.close()


def make_ends(kind: str, tmp: Path) -> tuple[Any, Any]:
    if kind == "memory":
        a, b = MemoryTransport.pair("dev")
        return a, b
    link = PtyLink(tmp)
    return SerialTransport(str(link.link)), link


@pytest.fixture(params=["memory", "pty"])
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def collect(src: SerialDeviceSource) -> tuple[list[Any], threading.Thread]:
    got: list[Any] = []
    th = threading.Thread(target=lambda: got.extend(src), daemon=True)
    th.start()
    return got, th


def wait_for(cond: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("device", ["scanner", "scale", "dims", "rfid"])
def test_driver_reads_through_noise_and_survives_replug(device: str, transport_kind: str,
                                                         tmp_path: Path) -> None:
    agent_end, dev_end = make_ends(transport_kind, tmp_path)
    reader = ReconnectingReader(agent_end, backoff=Backoff(base_s=0.05, cap_s=0.2,
                                                           reset_after_s=1.0))
    src = SerialDeviceSource(f"depot.{device}", reader, make_core(device, "L1", {}),
                             poll=poll_bytes(device, {}), poll_s=0.01)
    got, th = collect(src)
    dev = Device(device, dev_end)
    key = KEY[device]

    def keys() -> set[int]:
        return {key(r) for r in list(got)} - {-1}

    try:
        assert wait_for(lambda: len(keys()) >= 15), (device, len(got))
        before = src.counters()
        assert before["port.connected"] == 1
        dev_end.vanish()
        assert wait_for(lambda: src.counters()["port.connected"] == 0)
        time.sleep(0.3)
        dev_end.reappear()
        n = len(keys())
        assert wait_for(lambda: len(keys()) >= n + 15), "no reads after the device came back"
        c = src.counters()
        assert c["port.disconnects"] >= 1 and c["port.opens"] >= 2 and c["port.connected"] == 1
    finally:
        dev.stop.set()
        src.close()
        th.join(5)
        dev.th.join(5)
        dev_end.close()
    sent = set(dev.sent)
    seen = keys()
    assert seen <= sent  # nothing invented from garbage
    # a noise burst costs at most the one frame it touched; a replug loses what was in flight
    lost = len([k for k in dev.sent if k not in seen])
    assert lost <= 0.35 * len(dev.sent) + 3, (lost, len(dev.sent))
