"""End to end over a real pseudo-terminal pair at 115200 baud, with the simulated
firmware on the master side and the agent's bridge on the slave (pyserial)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from drivers.transport.pty import PtyPair
from drivers.transport.serialport import SerialTransport
from edge.assembly import assemble
from edge.config import parse_config
from edge.pipeline import merge_by_time
from edge.records import Command, CommandOutcome
from edge.report.sinks import JsonlSink
from edge.timeguard import guard
from firmware_bridge import messages as M
from firmware_bridge.actuator import StationActuator
from firmware_bridge.client import BridgeClient
from firmware_bridge.codec import LinkKey
from firmware_bridge.source import BridgeSource
from simulators.firmware.device import BaseStationFirmware, Faults, StationFirmware

SECRET = bytes(range(100, 132))
BAUD = 115_200
# X-ray exit to diverter: ~1 m of belt at 0.5 m/s. Generous against a loaded CI box
# (both ends are Python threads); the bench measures the real latencies.
DEADLINE_S = 2.0


@pytest.fixture()
def pty() -> Iterator[PtyPair]:
    p = PtyPair("fw")
    yield p
    p.close()


def _client(pty: PtyPair, role: int, **kw: object) -> BridgeClient:
    return BridgeClient("dev", SerialTransport(pty.slave_path, baudrate=BAUD),
                        peer_role=role, key=LinkKey(SECRET, 0), **kw)  # type: ignore[arg-type]


def _cfg(tmp: Path):  # type: ignore[no-untyped-def]
    return parse_config(f'[agent]\nsite = "s"\nid = "a"\ndata_dir = "{tmp}/data"\n'
                        f'status_interval_s = 1800\n[privacy]\nkey = "bridge-e2e-key-0001"\n')


def _reports(path: Path) -> list[bytes]:
    """Report lines other than agent.status (whose counters name the source)."""
    return [ln for ln in path.read_bytes().splitlines()
            if orjson.loads(ln)["kind"] != "agent.status"]


def test_a_simulated_day_over_the_bridge_gives_the_file_replays_reports(
        tmp_path: Path, pty: PtyPair) -> None:
    from simulators.telecom.events import EventSimConfig, write_events

    day = tmp_path / "day.jsonl"
    # A SIM bank (rotation: the rules report it within the hour), at least 4 ports:
    # this test is about the bridge giving the file's reports, not about recall.
    write_events(EventSimConfig(seed=901, subscribers=60, hours=1, simbox_devices=1,
                                ports_per_device=4, min_ports=4, evasion=("rotation",)), day)
    cfg = _cfg(tmp_path)
    # the file replay
    a = assemble(cfg, mode="replay", sinks=[JsonlSink(tmp_path / "file.jsonl")],
                 inputs={"events": [day]}, domains=["telecom"])
    a.pipeline.run(merge_by_time(a.sources))
    a.close()
    # the same day from the simulated base station over the pty
    client = _client(pty, M.ROLE_BASE_STATION)
    src = BridgeSource(client)
    b = assemble(cfg, mode="replay", sinks=[JsonlSink(tmp_path / "bridge.jsonl")],
                 domains=["telecom"])
    fw = BaseStationFirmware(pty, BaseStationFirmware.read_feed(day),
                             key=LinkKey(SECRET, 1), faults=Faults(baud=BAUD))
    client.start()
    time.sleep(0.1)  # pyserial flushes input when it opens the port
    fw.start()

    def close_when_done() -> None:
        t_end = time.monotonic() + 60
        while time.monotonic() < t_end and not (
                fw.done() and client.c["records"] >= fw.sent):
            time.sleep(0.05)
        src.close()

    threading.Thread(target=close_when_done, daemon=True).start()
    t0 = time.monotonic()
    try:
        b.pipeline.run(merge_by_time([guard(src, cfg, live=False)]))
    finally:
        b.close()
        fw.stop()
        client.close()
    elapsed = time.monotonic() - t0
    file_reports = _reports(tmp_path / "file.jsonl")
    assert fw.sent == sum(1 for _ in day.open()) and fw.skipped == 0
    assert client.counters()["link.codec.signed_in"] >= fw.sent
    assert any(b'"simbox.' in r for r in file_reports)
    assert _reports(tmp_path / "bridge.jsonl") == file_reports
    # it really went at UART speed: ~90 bytes a signed event frame
    assert elapsed > fw.sent * 80 * 10 / BAUD


def test_divert_commands_are_acknowledged_within_their_deadline_despite_frame_loss(
        pty: PtyPair) -> None:
    client = _client(pty, M.ROLE_STATION)
    act = StationActuator(client)
    fw = StationFirmware(pty, key=LinkKey(SECRET, 1),
                         faults=Faults(drop_in=0.01, drop_out=0.01, baud=BAUD, seed=3))
    client.start()
    time.sleep(0.1)
    fw.start()
    n = 150
    outcomes: list[CommandOutcome] = []
    try:
        t_end = time.monotonic() + 10
        while client.state != "up" and time.monotonic() < t_end:
            time.sleep(0.01)
        for i in range(n):
            now = time.time()
            act.submit(Command(ts=now, target="station", action="divert",
                               args={"lane": "L1", "parcel_seq": i, "waybill": f"SF{i:013d}"},
                               deadline=now + DEADLINE_S, correlation_id=f"c{i}"))
            fw.beam("L1", "divert", True)
            time.sleep(0.01)
            outcomes += act.poll(now)
        t_end = time.monotonic() + 5
        while len(outcomes) < n and time.monotonic() < t_end:
            time.sleep(0.02)
            outcomes += act.poll(time.time())
    finally:
        fw.stop()
        client.close()
    injected = fw.injected["dropped_in"] + fw.injected["dropped_out"]
    assert injected > 0, "the fault injection did not drop anything"
    assert act.c["acked_in_time"] == n, (act.counters(), client.counters(),
                                         fw.link.counters(), fw.injected,
                                         sorted({(o.status, o.detail) for o in outcomes}))
    assert sorted(o.correlation_id for o in outcomes) == sorted(f"c{i}" for i in range(n))
    assert {o.status for o in outcomes} == {"acted"}
    assert len(fw.diverted) == n  # each exactly once, retransmissions notwithstanding
    eyes = list(client.records.queue)
    assert len(eyes) >= n - 5 and all(e.eye == "divert" and e.blocked for e in eyes)
    assert act.ack_latency_max_s < DEADLINE_S


def test_a_device_with_the_wrong_key_never_gets_a_link(pty: PtyPair) -> None:
    client = _client(pty, M.ROLE_STATION)
    fw = StationFirmware(pty, key=LinkKey(b"w" * 32, 1))
    client.start()
    time.sleep(0.1)
    fw.start()
    try:
        time.sleep(0.8)
    finally:
        fw.stop()
        client.close()
    c = client.counters()
    assert client.state != "up" and c["link.codec.errors.forged"] > 0
    assert c["link.codec.frames_in"] == 0


def _signed_image(size: int, context: str = "firmware") -> tuple[bytes, str, dict]:  # type: ignore[type-arg]
    from edge.security.signing import generate_private_key, key_id, sign_detached

    key = generate_private_key()
    image = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(size))
    return image, sign_detached(image, key, context), {key_id(key): key.public_key()}


def _wait(pred, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_an_image_transfer_survives_a_reboot_in_the_middle(pty: PtyPair) -> None:
    image, sig, keys = _signed_image(12_000)
    client = _client(pty, M.ROLE_STATION)
    fw = StationFirmware(pty, key=LinkKey(SECRET, 1), image_keys=keys,
                         faults=Faults(baud=BAUD, drop_out=0.01, seed=5))
    client.start()
    time.sleep(0.1)
    fw.start()
    try:
        assert _wait(lambda: client.state == "up", 5)
        up = client.upload_image(image, sig)
        assert _wait(lambda: len(fw.images.flash.data) >= 5_000, 10)
        fw.reboot()
        assert _wait(lambda: up.result is not None, 20), up
    finally:
        fw.stop()
        client.close()
    assert up.result == "done", (up.result, up.reason)
    assert bytes(fw.images.flash.data) == image and fw.images.verified_by == next(iter(keys))
    assert fw.boots == 2 and client.link.c["peer_restarts"] == 1
    # resumed, not restarted: far fewer than twice the image went over the link
    assert up.bytes_sent < 1.5 * len(image)


def test_an_image_with_a_bad_signature_is_refused_by_the_device(pty: PtyPair) -> None:
    image, sig, keys = _signed_image(3_000)
    _, other_sig, _ = _signed_image(3_000)  # signed by someone else
    client = _client(pty, M.ROLE_STATION)
    fw = StationFirmware(pty, key=LinkKey(SECRET, 1), image_keys=keys)
    client.start()
    time.sleep(0.1)
    fw.start()
    try:
        assert _wait(lambda: client.state == "up", 5)
        up = client.upload_image(image, other_sig)
        assert _wait(lambda: up.result is not None, 10)
    finally:
        fw.stop()
        client.close()
    assert up.result == "bad_signature" and "unknown key id" in up.reason
    assert not fw.images.flash.done


@pytest.mark.parametrize("scheme", ["tcp", "socket"])
def test_the_station_link_over_tcp_and_pyserial_socket_urls(scheme: str) -> None:
    from drivers.transport.factory import open_transport
    from simulators.firmware.tcp import TcpDeviceEnd

    dev = TcpDeviceEnd()
    client = BridgeClient("st", open_transport(f"{scheme}://127.0.0.1:{dev.port}"),
                          peer_role=M.ROLE_STATION, key=LinkKey(SECRET, 0))
    act = StationActuator(client)
    fw = StationFirmware(dev, key=LinkKey(SECRET, 1))
    fw.start()
    client.start()
    outcomes: list[CommandOutcome] = []
    try:
        assert _wait(lambda: client.state == "up", 5)
        now = time.time()
        fw.beam("L2", "xray", True, at=now)
        act.submit(Command(ts=now, target="station", action="divert",
                           args={"lane": "L2", "parcel_seq": 9, "waybill": "YT1"},
                           deadline=now + 2, correlation_id="t1"))

        def got() -> bool:
            outcomes.extend(act.poll(time.time()))
            return bool(outcomes) and client.records.qsize() > 0 and \
                client.device_info is not None

        assert _wait(got, 5)
    finally:
        fw.stop()
        client.close()
        dev.close()
    assert outcomes[0].status == "acted" and outcomes[0].correlation_id == "t1"
    assert client.device_info is not None and client.device_info.fw == "sim-fw-1.0"
    eye = client.records.get_nowait()
    assert (eye.lane, eye.eye, eye.blocked, eye.seq) == ("L2", "xray", True, 1)
    assert abs(eye.ts - now) < 1e-3  # a synchronised controller clock is used as it is


def test_the_live_daemon_reads_the_base_station_over_the_bridge(
        tmp_path: Path, pty: PtyPair) -> None:
    """`edge-agent run` (run_live) with [bridge] base_station_port: the detections of
    the file replay come out of the live agent too (ids and times of live reports
    differ by design; kind, subject and score do not)."""
    from edge.live import run_live
    from simulators.telecom.events import EventSimConfig, write_events

    day = tmp_path / "day.jsonl"
    # A SIM bank (rotation: the rules report it within the hour), at least 4 ports:
    # this test is about the bridge giving the file's reports, not about recall.
    write_events(EventSimConfig(seed=901, subscribers=60, hours=1, simbox_devices=1,
                                ports_per_device=4, min_ports=4, evasion=("rotation",)), day)
    cfg = _cfg(tmp_path)
    a = assemble(cfg, mode="replay", sinks=[JsonlSink(tmp_path / "file.jsonl")],
                 inputs={"events": [day]}, domains=["telecom"])
    a.pipeline.run(merge_by_time(a.sources))
    a.close()
    key = tmp_path / "link.key"
    key.write_text(SECRET.hex())
    live = parse_config(
        f'[agent]\nsite = "s"\nid = "a"\ndata_dir = "{tmp_path}/data2"\n'
        f'status_interval_s = 1800\n[privacy]\nkey = "bridge-e2e-key-0001"\n'
        f'[outputs.jsonl]\npath = "{tmp_path}/live.jsonl"\n'
        f'[bridge]\nbase_station_port = "{pty.slave_path}"\nkey_file = "{key}"\n')
    fw = BaseStationFirmware(pty, BaseStationFirmware.read_feed(day), key=LinkKey(SECRET, 1))
    stop = threading.Event()
    t = threading.Thread(target=run_live, args=(live,), kwargs={"stop": stop}, daemon=True)
    t.start()
    time.sleep(0.3)
    fw.start()
    try:
        assert _wait(fw.done, 30)
        time.sleep(0.5)  # the last records through the queue
    finally:
        stop.set()
        t.join(timeout=20)
        fw.stop()

    def key_of(line: bytes) -> tuple[str, str, float]:
        r = orjson.loads(line)
        return r["kind"], r["subject"]["id"], r["score"]

    def simbox(lines: list[bytes]) -> list[tuple[str, str, float]]:
        return sorted(key_of(x) for x in lines if orjson.loads(x)["kind"].startswith("simbox."))

    want = simbox(_reports(tmp_path / "file.jsonl"))
    got = simbox(_reports(tmp_path / "live.jsonl"))
    assert want and got == want
