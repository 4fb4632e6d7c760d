"""Firmware bridge throughput: frames/s decoded and encoded on one core, and the
events/s the bridge source feeds into the pipeline.

    nice -n 10 .venv/bin/python bench/bench_bridge.py [--frames 200000] [--events 20000]

Frames: PHOTO_EYE messages whose frame (header + payload + CRC, before COBS) is 32
bytes; the signed ones are the same payload + 15 bytes of signature. Decoding feeds
the codec 4 KiB reads of a recorded stream (as a UART driver would), so COBS split,
CRC, MAC and the payload decoder are all counted; encoding is one ``Codec.encode`` per
message. The process is pinned to one CPU. The construct-compiled reference parser of
the same payload is timed in the same run (the ratio is the comparable figure on a
shared box). Events: a simulated base station (no UART pacing) replays a simulated
day over a pty to the agent's BridgeClient; the pipeline with the call-plane stages
consumes the BridgeSource; events/s = events / time until the last one was fed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware_bridge import messages as M  # noqa: E402
from firmware_bridge.codec import HEADER_LEN, Codec, LinkKey  # noqa: E402

NOW = 1_767_225_600.0
SECRET = bytes(range(32))


def _best(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def frames(n: int) -> None:
    msgs = [M.PhotoEye(t_us=1_767_225_600_000_000 + i, seq=i, lane="LANE01", eye=i % 3,
                       blocked=i & 1) for i in range(n)]
    body = Codec().encode(msgs[0], 0)
    from cobs import cobs

    assert len(cobs.decode(body[1:-1])) == 32, "the bench frame must be 32 bytes"
    print(f"frame: {len(cobs.decode(body[1:-1]))} bytes unsigned (payload "
          f"{len(cobs.decode(body[1:-1])) - HEADER_LEN - 4}), "
          f"{len(body)} on the wire; {len(body) + 15} signed")
    for signed in (False, True):
        tx = Codec(LinkKey(SECRET, 1) if signed else None)
        wire = [tx.encode(m, i & 0xFFFF, 0, NOW) for i, m in enumerate(msgs)]
        blob = b"".join(wire)
        reads = [blob[i:i + 4096] for i in range(0, len(blob), 4096)]

        def decode(signed: bool = signed, reads: list[bytes] = reads) -> None:
            rx = Codec(LinkKey(SECRET, 0) if signed else None)
            feed = rx.feed
            for r in reads:
                feed(r, NOW)
            assert rx.frames_in == n, rx.counters()

        def encode(signed: bool = signed) -> None:
            c = Codec(LinkKey(SECRET, 1) if signed else None)
            enc = c.encode
            for i, m in enumerate(msgs):
                enc(m, i & 0xFFFF, 0, NOW)

        d, e = _best(decode), _best(encode)
        tag = "signed  " if signed else "unsigned"
        print(f"{tag}: decode {n / d:>10,.0f} frames/s   encode {n / e:>10,.0f} frames/s")
    mt = M.BY_CLASS[M.PhotoEye]
    payloads = [mt.encode(m) for m in msgs[:20000]]

    def ref() -> None:
        for p in payloads:
            mt.ref_decode(p)

    def fast() -> None:
        for p in payloads:
            mt.decode(p)

    r, f = _best(ref, 3), _best(fast, 3)
    print(f"payload alone: generated codec {len(payloads) / f:,.0f}/s, construct compiled "
          f"{len(payloads) / r:,.0f}/s ({r / f:.1f}x)")


def events(n_events: int) -> None:
    from drivers.transport.pty import PtyPair
    from drivers.transport.serialport import SerialTransport
    from edge.assembly import assemble
    from edge.config import parse_config
    from edge.pipeline import merge_by_time
    from edge.report.sinks import JsonlSink
    from firmware_bridge.client import BridgeClient
    from firmware_bridge.source import BridgeSource
    from simulators.firmware.device import BaseStationFirmware
    from simulators.telecom.events import EventSimConfig, write_events

    tmp = Path(tempfile.mkdtemp(prefix="bench-bridge-"))
    day = tmp / "day.jsonl"
    subs = max(50, n_events // 25)
    write_events(EventSimConfig(seed=77, subscribers=subs, hours=6, simbox_devices=2), day)
    feed = BaseStationFirmware.read_feed(day)[:n_events]
    cfg = parse_config(f'[agent]\nsite = "b"\nid = "b"\ndata_dir = "{tmp}/data"\n'
                       f'[privacy]\nkey = "bench-bridge-key-001"\n')
    for signed in (False, True):
        pty = PtyPair("bench")
        key0 = LinkKey(SECRET, 0) if signed else None
        client = BridgeClient("bs", SerialTransport(pty.slave_path, baudrate=115200),
                              peer_role=M.ROLE_BASE_STATION, key=key0)
        src = BridgeSource(client)
        agent = assemble(cfg, mode="replay", sinks=[JsonlSink(tmp / "r.jsonl")],
                         domains=["telecom"])
        fw = BaseStationFirmware(pty, feed, key=LinkKey(SECRET, 1) if signed else None,
                                 window=256, link_options={"max_in_flight": 256})
        fw.link.max_in_flight = 256
        client.link.max_in_flight = 256
        client.start()
        time.sleep(0.2)
        t0 = time.perf_counter()
        fw.start()
        fed = [0, 0.0]

        def watch(fw: BaseStationFirmware = fw, client: BridgeClient = client,
                  src: BridgeSource = src) -> None:
            while not (fw.done() and client.c["records"] >= fw.sent):
                time.sleep(0.01)
            src.close()

        threading.Thread(target=watch, daemon=True).start()

        def counted(src: BridgeSource = src, fed: list = fed):  # type: ignore[no-untyped-def,type-arg]
            for rec in src:
                fed[0] += 1
                fed[1] = time.perf_counter()
                yield rec

        agent.pipeline.run(merge_by_time([counted()]))
        agent.close()
        fw.stop()
        client.close()
        pty.close()
        dt = fed[1] - t0
        wire = client.codec.bytes_in / max(1, fed[0])
        print(f"events {'signed' if signed else 'unsigned'}: {fed[0]:,} events into the "
              f"pipeline in {dt:.2f} s = {fed[0] / dt:,.0f} events/s "
              f"({wire:.0f} wire bytes an event incl. heartbeats: a 115200-baud UART "
              f"carries {11520 / wire:,.0f} events/s)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200_000)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--cpu", type=int, default=0, help="CPU to pin to (-1: none)")
    args = ap.parse_args()
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    print(f"load average {os.getloadavg()[0]:.2f}, python {sys.version.split()[0]}")
    frames(args.frames)
    if hasattr(os, "sched_setaffinity"):  # the event path has three threads: both cores
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    if args.events:
        events(args.events)
    return 0


if __name__ == "__main__":
    sys.exit(main())
