"""Live and replay share one code path: a followed file being appended and a UDP
stream give the same call-plane alerts as replaying the finished file."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import orjson

from drivers.events.sources import JsonlEventFile, UdpEventListener
from edge.config import Config
from edge.pipeline import Pipeline
from edge.report.ids import IdFactory
from edge.report.pseudonym import Pseudonymiser
from edge.report.reporter import Reporter
from edge.report.sinks import JsonlSink
from edge.telecom.callplane.build import build_stages
from simulators.telecom.events import EventSimConfig, EventSimulator

KEY = b"callplane-live-key-01"


def _lines() -> list[bytes]:
    sim = EventSimulator(EventSimConfig(seed=31337, subscribers=300, simbox_devices=2,
                                        ports_per_device=4, hours=3, evasion=("naive",)))
    return [orjson.dumps(e) for e in sim.events()]


def _flagged(src: object, out: Path) -> set[str]:
    rep = Reporter(site="s", agent="a", pseudonymiser=Pseudonymiser(KEY),
                   ids=IdFactory("s/a/x"), sinks=[JsonlSink(out)])
    pipe = Pipeline(build_stages(Config()), rep, status_interval_s=3600)
    pipe.run(iter(src))  # type: ignore[call-overload]
    rep.close()
    return {orjson.loads(ln)["subject"]["id"] for ln in out.read_bytes().splitlines()
            if b'"simbox.sim"' in ln}


def test_follow_file_and_udp_equal_replay(tmp_path: Path) -> None:
    lines = _lines()
    full = tmp_path / "full.jsonl"
    full.write_bytes(b"\n".join(lines) + b"\n")
    replayed = _flagged(JsonlEventFile(full), tmp_path / "r1.jsonl")
    assert replayed  # naive boxes are found within three hours

    grow = tmp_path / "grow.jsonl"
    grow.write_bytes(b"")
    follow = JsonlEventFile(grow, follow=True, poll_s=0.01)

    def writer() -> None:
        with open(grow, "ab") as fh:
            for i in range(0, len(lines), 5000):
                fh.write(b"\n".join(lines[i:i + 5000]) + b"\n")
                fh.flush()
                time.sleep(0.02)
        time.sleep(0.5)
        follow.close()

    t = threading.Thread(target=writer)
    t.start()
    followed = _flagged(follow, tmp_path / "r2.jsonl")
    t.join()
    assert followed == replayed

    udp = UdpEventListener("127.0.0.1", 0, timeout_s=0.05)
    addr = udp.address

    def sender() -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(0, len(lines), 20):
            s.sendto(b"\n".join(lines[i:i + 20]), addr)
            time.sleep(0.003)  # let the receiver keep up (UDP drops on overflow)
        time.sleep(0.5)
        s.close()
        udp.close()

    t = threading.Thread(target=sender)
    t.start()
    received = _flagged(udp, tmp_path / "r3.jsonl")
    t.join()
    assert udp.counters()["decoded"] > 0.95 * len(lines)
    assert len(received & replayed) >= len(replayed) - 1
