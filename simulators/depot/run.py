"""Playing a planned station: live onto pseudo-terminals and a folder, or to a recording.

``play_live(plan, workdir)`` runs the station in (``speed`` times) real time: each
serial device is a real pty (``drivers.transport.pty.PtyPair``) reached by the agent
through a stable symlink ``workdir/dev/<device>`` (as ``/dev/serial/by-id/...`` on a
real box, so an unplugged device comes back under the same name); the polled devices
answer the agent's requests from their models, the scanner sends on its own, the
X-ray machine writes PNG then sidecar into ``workdir/xray``. An unplug closes the pty
(the agent sees the device vanish) and after ``unplug_s`` a new one appears behind
the symlink.

``write_recording(plan, folder)`` writes what an agent recording that station would
have recorded (drivers/recording.py), polls included, without waiting.

Both write ``waybills.jsonl`` (the export, with honest and false declarations) and
``truth.jsonl``.
"""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from drivers.recording import FROM_DEVICE, TO_DEVICE, Recorder
from drivers.transport.pty import PtyPair
from firmware_bridge.codec import LinkKey
from simulators.depot.station import (
    DimsModel,
    RfidModel,
    ScaleModel,
    StationPlan,
    sidecar_bytes,
    truth_line,
    waybill_lines,
    xray_name,
)
from simulators.firmware.device import Faults, StationFirmware

POLLED = ("scale", "dims", "rfid")


def write_truth(plan: StationPlan, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "waybills.jsonl").write_bytes(waybill_lines(plan))
    (folder / "truth.jsonl").write_bytes(b"".join(orjson.dumps(truth_line(plan, p)) + b"\n"
                                                  for p in plan.parcels))


def _split(rng: random.Random, data: bytes) -> list[bytes]:
    """A read split into 1-3 chunks, as a UART FIFO and the OS hand them over."""
    n = rng.choice((1, 1, 2, 3))
    if n == 1 or len(data) < 4:
        return [data]
    cuts = sorted(rng.sample(range(1, len(data)), min(n - 1, len(data) - 1)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def _away(plan: StationPlan, dev: str, t: float) -> bool:
    return any(d == dev and a <= t < b for d, a, b in plan.unplugs)


def _models(plan: StationPlan) -> dict[str, Any]:
    return {"scale": ScaleModel(plan), "dims": DimsModel(plan),
            "rfid": RfidModel(plan, plan.cfg.seed)}


# -- to a recording -------------------------------------------------------------------

def write_recording(plan: StationPlan, folder: Path, *, poll_s: dict[str, float] | None = None
                    ) -> None:
    """The recording an agent with all four devices and the X-ray folder would make."""
    c = plan.cfg
    polls = {"scale": 0.1, "dims": 0.25, "rfid": 0.1, **(poll_s or {})}
    rng = random.Random(c.seed + 101)
    write_truth(plan, folder)
    rec = Recorder(folder, c.lane, {"scanner": {"terminator": _term_name(c.terminator),
                                                "aim": "auto"},
                                    "scale": {"mode": "poll_si"}, "dims": {}, "rfid": {}},
                   folder / "waybills.jsonl", started=plan.wall(0.0))
    scan = sorted([(t, d) for p in plan.parcels for t, d in p.scan_events] +
                  plan.noise["scanner"])
    w = rec.streams["scanner"]
    for t, data in scan:
        if _away(plan, "scanner", t):
            continue
        for k, chunk in enumerate(_split(rng, data)):
            w.write(plan.wall(t + 0.002 * k), FROM_DEVICE, chunk)
    models = _models(plan)
    requests = {"scale": b"SI\r\n", "dims": b"\x02M\x03\r\n",
                "rfid": bytes.fromhex("BB00220000227E")}
    for dev in POLLED:
        w = rec.streams[dev]
        step = polls[dev]
        t = 0.0
        model = models[dev]
        while t < plan.duration:
            if not _away(plan, dev, t):
                w.write(plan.wall(t), TO_DEVICE, requests[dev])
                reply = model.respond(requests[dev].rstrip(b"\r\n"), t)
                for k, chunk in enumerate(_split(rng, reply)):
                    w.write(plan.wall(t + 0.004 + 0.001 * k), FROM_DEVICE, chunk)
            t += step
    files: list[tuple[float, str, bytes]] = []
    for p in plan.parcels:
        name = xray_name(plan, p)
        files.append((p.xray_write, name + ".png", p.xray_png))
        side = sidecar_bytes(plan, p)
        if side is not None:
            files.append((p.xray_write + rng.uniform(0.05, 0.4), name + ".json", side))
    for t, name, data in sorted(files):
        rec.xray_file(plan.wall(t), name, data)
    rec.close()


def _term_name(term: bytes) -> str:
    return {b"\r\n": "crlf", b"\r": "cr", b"\n": "lf"}[term]


# -- live --------------------------------------------------------------------------------

class _Port:
    """One simulated serial device behind a stable symlink, replugged on demand."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.pair: PtyPair | None = None
        self.lock = threading.Lock()
        self.plug()

    def plug(self) -> None:
        pair = PtyPair(self.link.name)
        tmp = self.link.with_suffix(".new")
        tmp.unlink(missing_ok=True)
        os.symlink(pair.slave_path, tmp)
        os.replace(tmp, self.link)
        self.pair = pair

    def unplug(self) -> None:
        with self.lock:
            if self.pair is not None:
                self.pair.close()
                self.pair = None

    def write(self, data: bytes) -> None:
        with self.lock:
            if self.pair is None:
                return
            try:
                self.pair.write(data)
            except OSError:  # the pty transport's TransportError is an OSError
                pass  # nobody has the port open: bytes on a dead line are lost

    def read(self, timeout: float) -> bytes:
        pair = self.pair
        if pair is None:
            time.sleep(timeout)
            return b""
        try:
            return pair.read(4096, timeout)
        except OSError:
            return b""

    def close(self) -> None:
        self.unplug()
        self.link.unlink(missing_ok=True)


def _requests(dev: str, buf: bytearray) -> list[bytes]:
    """Complete host requests in ``buf`` (consumed)."""
    out: list[bytes] = []
    if dev == "rfid":
        while True:
            i = buf.find(0xBB)
            if i < 0:
                buf.clear()
                return out
            del buf[:i]
            if len(buf) < 7:
                return out
            n = 7 + (buf[3] << 8 | buf[4])
            if len(buf) < n:
                return out
            out.append(bytes(buf[:n]))
            del buf[:n]
    while True:
        i = buf.find(b"\n")
        if i < 0:
            return out
        out.append(bytes(buf[:i]).rstrip(b"\r"))
        del buf[:i + 1]


class LiveStation:
    """``start()``, then ``wait()`` until the last parcel's X-ray file is written (and,
    with a controller, the last parcel has passed the diverter).

    ``controller_key``: also play the station controller (``simulators.firmware``'s
    :class:`StationFirmware`, the bridge protocol signed with this secret) on a pty
    behind ``workdir/dev/station``: it reports the diverter's photo-eye as each parcel
    passes and pushes a parcel a DIVERT names only while that parcel is in front of the
    pusher (``xray_to_diverter_m`` after the tunnel), so a late divert comes back
    ``too_late`` whatever deadline the agent computed. ``controller.diverted`` /
    ``controller.late`` list what it pushed and missed.
    """

    def __init__(self, plan: StationPlan, workdir: Path, *,
                 controller_key: bytes | None = None) -> None:
        self.plan = plan
        self.workdir = workdir
        (workdir / "dev").mkdir(parents=True, exist_ok=True)
        self.xray_dir = workdir / "xray"
        self.xray_dir.mkdir(exist_ok=True)
        self.ports = {d: _Port(workdir / "dev" / d) for d in ("scanner", *POLLED)}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._m0 = 0.0
        self.replies = dict.fromkeys(POLLED, 0)
        self.controller: StationFirmware | None = None
        self._controller_pty: PtyPair | None = None
        self._by_waybill = {p.waybill: p for p in plan.parcels}
        # the depot's export exists before the belt runs (the agent reads it at start)
        (workdir / "waybills.jsonl").write_bytes(waybill_lines(plan))
        if controller_key is not None:
            pair = self._controller_pty = PtyPair("station")
            link = workdir / "dev" / "station"
            link.unlink(missing_ok=True)
            os.symlink(pair.slave_path, link)
            self.controller = StationFirmware(pair, key=LinkKey(controller_key, 1),
                                              passes=self._passes, name="station",
                                              faults=Faults(seed=plan.cfg.seed))
            self.controller.start()  # powered up with the station, before the belt runs

    def _window(self, p: Any) -> tuple[float, float]:
        """Station seconds when parcel ``p``'s leading edge reaches the pusher and its
        trailing edge leaves it."""
        c = self.plan.cfg
        arrive = p.anchor + (c.xray_at_m + c.xray_len_m + c.xray_to_diverter_m) / c.belt_mps
        return arrive, arrive + p.length_m / c.belt_mps

    def _passes(self, msg: Any) -> tuple[float, float] | None:
        """Wall-clock window of the parcel a DIVERT names (by waybill), if known."""
        p = self._by_waybill.get(msg.waybill) if msg.waybill else None
        if p is None or self.plan.cfg.lane != msg.lane:
            return None
        a, b = self._window(p)
        return self.plan.wall(a), self.plan.wall(b)

    def link(self, dev: str) -> str:
        return str(self.workdir / "dev" / dev)

    def now(self) -> float:
        return (time.monotonic() - self._m0) * self.plan.cfg.speed

    def start(self, lead_s: float = 1.0) -> None:
        """Start the belt ``lead_s`` (wall) from now; the truth's times follow."""
        self.plan.cfg.start_ts = time.time() + lead_s
        self._m0 = time.monotonic() + lead_s
        write_truth(self.plan, self.workdir)
        models = _models(self.plan)
        for dev in POLLED:
            self._spawn(self._responder, dev, models[dev])
        self._spawn(self._timeline)

    def _spawn(self, fn: Any, *args: Any) -> None:
        th = threading.Thread(target=fn, args=args, daemon=True, name=f"sim-{fn.__name__}")
        th.start()
        self._threads.append(th)

    def _sleep_until(self, t: float) -> bool:
        while not self._stop.is_set():
            left = (t - self.now()) / self.plan.cfg.speed
            if left <= 0:
                return True
            self._stop.wait(min(left, 0.05))
        return False

    def _responder(self, dev: str, model: Any) -> None:
        port = self.ports[dev]
        rng = random.Random(self.plan.cfg.seed + sum(dev.encode()))
        buf = bytearray()
        while not self._stop.is_set():
            data = port.read(0.05)
            if not data:
                continue
            buf += data
            for req in _requests(dev, buf):
                t = self.now()
                if _away(self.plan, dev, t):
                    continue
                for chunk in _split(rng, model.respond(req, t)):
                    port.write(chunk)
                self.replies[dev] += 1

    def _timeline(self) -> None:
        plan = self.plan
        rng = random.Random(plan.cfg.seed + 202)
        events: list[tuple[float, int, str, Any]] = []
        for t, d in plan.noise["scanner"]:
            events.append((t, 0, "scan", d))
        for p in plan.parcels:
            for t, d in p.scan_events:
                events.append((t, 1, "scan", d))
            events.append((p.xray_write, 2, "png", p))
            if p.sidecar is not None:
                events.append((p.xray_write + rng.uniform(0.05, 0.4), 3, "json", p))
        for dev, a, b in plan.unplugs:
            events.append((a, 4, "unplug", dev))
            events.append((b, 5, "replug", dev))
        if self.controller is not None:
            for p in plan.parcels:
                a, b = self._window(p)
                events.append((a, 6, "eye", True))
                events.append((b, 6, "eye", False))
        events.sort(key=lambda e: (e[0], e[1]))
        for t, _, kind, obj in events:
            if not self._sleep_until(t):
                return
            if kind == "scan":
                if not _away(plan, "scanner", t):
                    for chunk in _split(rng, obj):
                        self.ports["scanner"].write(chunk)
            elif kind == "png":
                path = self.xray_dir / (xray_name(plan, obj) + ".png")
                half = len(obj.xray_png) // 2
                with path.open("wb") as f:  # written in two goes, as a real writer does
                    f.write(obj.xray_png[:half])
                    f.flush()
                    time.sleep(0.002)
                    f.write(obj.xray_png[half:])
            elif kind == "json":
                side = sidecar_bytes(plan, obj)
                assert side is not None
                (self.xray_dir / (xray_name(plan, obj) + ".json")).write_bytes(side)
            elif kind == "unplug":
                self.ports[obj].unplug()
            elif kind == "replug":
                self.ports[obj].plug()
            elif kind == "eye" and self.controller is not None:
                self.controller.beam(plan.cfg.lane, "divert", bool(obj), plan.wall(t))
        self.done = True

    def wait(self, timeout: float) -> bool:
        """True when the whole timeline has been played."""
        th = self._threads[-1]
        th.join(timeout)
        return not th.is_alive()

    def stop(self) -> None:
        self._stop.set()
        for th in self._threads:
            th.join(2.0)
        for port in self.ports.values():
            port.close()
        if self.controller is not None and self._controller_pty is not None:
            self.controller.stop()
            self._controller_pty.close()
            (self.workdir / "dev" / "station").unlink(missing_ok=True)
