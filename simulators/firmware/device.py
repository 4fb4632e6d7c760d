"""Simulated firmware speaking the bridge protocol from the device side.

Two roles: :class:`BaseStationFirmware` (replays a JSONL event feed as
SUBSCRIBER_EVENT messages) and :class:`StationFirmware` (photo-eye beam breaks, and a
diverter that acts on DIVERT and reports DIVERT_RESULT with the time it acted). Both
run the protocol's reference link layer (:mod:`firmware_bridge.link`, the shared
wire spec) on a transport end such as a :class:`~drivers.transport.pty.PtyPair`, in a
thread. Nothing here reads the agent's decoders or detectors: the feed is parsed with
orjson and the device decides from its own state.

Fault injection (:class:`Faults`), per frame, seeded: garbage bytes between frames, bit
flips, dropped and duplicated frames in both directions, a slow link (writes paced to
``baud`` 8N1), and :meth:`FirmwareSim.reboot` (a new boot id; RAM state lost, "flash"
state such as a partly received image kept).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from firmware_bridge import messages as M
from firmware_bridge.codec import Codec, LinkKey, split_frames
from firmware_bridge.image import ImageReceiver
from firmware_bridge.link import Link, Received


@dataclass
class Faults:
    """Per-frame probabilities (0..1) of what the device does to the traffic."""

    drop_out: float = 0.0
    """A frame the device sends is lost."""
    drop_in: float = 0.0
    """A frame sent to the device is lost."""
    dup_out: float = 0.0
    flip_out: float = 0.0
    """One random bit of the frame is flipped."""
    garbage_out: float = 0.0
    """1..40 random bytes are written before the frame."""
    baud: int = 0
    """Pace writes as a UART at this rate (10 bits a byte); 0: as fast as possible."""
    seed: int = 1


class FirmwareSim:
    """The device end of one link: a thread running the reference link over
    ``transport`` (Transport API: read(max, timeout)/write)."""

    role = M.ROLE_BASE_STATION

    def __init__(self, transport: Any, *, key: LinkKey | None = None,
                 faults: Faults | None = None, name: str = "sim",
                 clock: Callable[[], float] = time.time,
                 link_options: dict[str, Any] | None = None,
                 image_keys: Mapping[str, Any] | None = None) -> None:
        self.transport = transport
        # the image receiver's flash survives reboots; the issuer keys are the
        # device's trust anchor
        self.images = ImageReceiver(image_keys or {})
        self.key = key
        self.faults = faults or Faults()
        self.rng = random.Random(self.faults.seed)
        self.name = name
        self.clock = clock
        self.link_options = link_options or {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.boots = 0
        self.injected = {"dropped_out": 0, "dropped_in": 0, "duplicated": 0, "flipped": 0,
                         "garbage": 0}
        self._inbuf = b""
        self.link = self._new_link()

    def _new_link(self) -> Link:
        self.boots += 1
        now = self.clock()
        return Link(Codec(self.key), role=self.role, name=f"{self.name}-boot{self.boots}",
                    boot_id=self.rng.getrandbits(32), peer_role=M.ROLE_AGENT, started=now,
                    **self.link_options)

    def reboot(self) -> None:
        """Power-cycle: RAM state (link, sequence numbers, queues) is lost; the flash
        (a partly received image) is kept."""
        with self._lock:
            self.link = self._new_link()
            self.images = ImageReceiver(self.images.keys, self.images.flash)
            self.on_reboot()

    def on_reboot(self) -> None:
        pass

    # ------------------------------------------------------------------ thread
    def start(self) -> FirmwareSim:
        self._thread = threading.Thread(target=self._run, name=f"fw-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.transport.read(4096, 0.002)
            except OSError:
                time.sleep(0.01)
                continue
            with self._lock:
                now = self.clock()
                link = self.link
                if data:
                    for ev in link.receive(self._lose_in(data), now):
                        if isinstance(ev, Received):
                            self.on_message(ev.msg, now)
                link.poll(now)
                self.step(now)
                out = link.output()
            if out:
                self._write(out)

    def _lose_in(self, data: bytes) -> bytes:
        f = self.faults
        if not f.drop_in:
            return data
        # loss is decided per complete frame: hold back a frame cut across reads
        data = self._inbuf + data
        cut = data.rfind(b"\x00") + 1
        data, self._inbuf = data[:cut], data[cut:]
        keep = []
        for frame in split_frames(data):
            if self.rng.random() < f.drop_in:
                self.injected["dropped_in"] += 1
                continue
            keep.append(frame)
        return b"".join(keep)

    def _write(self, out: bytes) -> None:
        f, rng = self.faults, self.rng
        if f.drop_out or f.dup_out or f.flip_out or f.garbage_out:
            parts = []
            for frame in split_frames(out):
                if rng.random() < f.garbage_out:
                    self.injected["garbage"] += 1
                    parts.append(rng.randbytes(rng.randint(1, 40)))
                if rng.random() < f.drop_out:
                    self.injected["dropped_out"] += 1
                    continue
                if rng.random() < f.flip_out:
                    self.injected["flipped"] += 1
                    b = bytearray(frame)
                    b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
                    frame = bytes(b)
                parts.append(frame)
                if rng.random() < f.dup_out:
                    self.injected["duplicated"] += 1
                    parts.append(frame)
            out = b"".join(parts)
        if f.baud:
            # a UART sends 10 bits a byte; write in small pieces at that pace
            per_byte = 10.0 / f.baud
            for i in range(0, len(out), 64):
                piece = out[i:i + 64]
                t0 = time.monotonic()
                self.transport.write(piece)
                rest = len(piece) * per_byte - (time.monotonic() - t0)
                if rest > 0:
                    time.sleep(rest)
        else:
            self.transport.write(out)

    # ------------------------------------------------------------------ role hooks
    def on_message(self, msg: Any, now: float) -> None:
        if isinstance(msg, (M.ImageOffer, M.ImageChunk, M.ImageQuery)):
            st = self.images.handle(msg)
            if st is not None:
                self.link.send(st, now)
            return
        if isinstance(msg, M.DeviceInfoReq):
            self.link.send(M.DeviceInfo(self.role, self.link.boot_id,
                                        self.link.uptime_us(now), "sim-board-1",
                                        "sim-fw-1.0", f"SIM{self.faults.seed:06d}"), now)

    def step(self, now: float) -> None:
        pass


class BaseStationFirmware(FirmwareSim):
    """Replays event records (dicts of field-formats 1b) as SUBSCRIBER_EVENT messages,
    as fast as the link takes them (at most ``window`` unacknowledged)."""

    role = M.ROLE_BASE_STATION

    def __init__(self, transport: Any, events: Iterable[dict[str, Any]], *,
                 window: int = 64, **kw: Any) -> None:
        super().__init__(transport, **kw)
        self._events = iter(events)
        self.window = window
        self.sent = 0
        self.skipped = 0
        self.exhausted = False

    @staticmethod
    def read_feed(path: Path) -> list[dict[str, Any]]:
        out = []
        for line in path.read_bytes().splitlines():
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out

    def done(self) -> bool:
        """Every event sent and acknowledged."""
        return self.exhausted and self.link.pending() == 0

    def step(self, now: float) -> None:
        link = self.link
        while link.up and link.pending() < self.window and not self.exhausted:
            try:
                obj = next(self._events)
            except StopIteration:
                self.exhausted = True
                return
            msg = _to_wire(obj)
            if msg is None:
                self.skipped += 1
                continue
            link.send(msg, now)
            self.sent += 1


def _to_wire(o: dict[str, Any]) -> M.SubscriberEvent | None:
    """One feed object -> SUBSCRIBER_EVENT, or None if the wire cannot carry it (the
    firmware would not have produced it)."""
    t = M.EVENT_TYPE_NUM.get(o.get("type"))  # type: ignore[arg-type]
    ts, imsi = o.get("ts"), o.get("imsi")
    if t is None or not isinstance(ts, (int, float)) or not isinstance(imsi, str):
        return None
    d = o.get("dir")
    dcode = M.DIR_NUM.get(d) if isinstance(d, str) else None

    def s(k: str) -> str | None:
        v = o.get(k)
        return v if isinstance(v, str) else None

    def f(k: str) -> float | None:
        v = o.get(k)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    b = o.get("bytes")
    msg = M.SubscriberEvent(float(ts), t, imsi, s("imei"), s("msisdn"), s("cell"), dcode,
                            s("peer"), s("call_id"), f("duration_s"), s("cause"),
                            f("auth_ms"), b if isinstance(b, int) and b >= 0 else None,
                            s("target_cell"))
    try:
        M.encode_payload(msg)
    except M.PayloadError:
        return None
    return msg


class StationFirmware(FirmwareSim):
    """A station controller: photo-eye edges (:meth:`beam`, from the test or a depot
    simulator) and a diverter. A DIVERT is acted on ``act_s`` after it arrives if
    that is within its deadline (``too_late`` otherwise; ``failed`` with probability
    ``fail_rate``, a jammed flap), and DIVERT_RESULT reports when. With ``passes`` (a
    simulated belt tells where the named parcel is) the pusher fires when the parcel
    is in front of it and reports ``too_late`` for one already past; ``diverted`` and
    ``late`` list (parcel_seq, waybill) of what it pushed and what it missed."""

    role = M.ROLE_STATION

    def __init__(self, transport: Any, *, act_s: float = 0.02, fail_rate: float = 0.0,
                 passes: Callable[[M.Divert], tuple[float, float] | None] | None = None,
                 **kw: Any) -> None:
        super().__init__(transport, **kw)
        self.act_s = act_s
        self.fail_rate = fail_rate
        # when the belt is simulated too: (arrives, leaves) clock times of the parcel a
        # divert names at the pusher, or None when the controller cannot tell; the
        # pusher waits for a parcel still on its way and is too late for one gone
        self.passes = passes
        self.late: list[tuple[int, str]] = []
        self._eye_seq: dict[tuple[str, str], int] = {}
        self._pending: list[tuple[float, float, M.Divert]] = []  # (act_at, deadline, cmd)
        self._done: set[int] = set()
        self.diverted: list[tuple[int, str]] = []
        self._beams: list[tuple[str, str, bool, float | None]] = []

    def beam(self, lane: str, eye: str, blocked: bool, at: float | None = None) -> None:
        """Report a beam edge (thread-safe); ``at``: the edge's time (default now)."""
        with self._lock:
            self._beams.append((lane, eye, blocked, at))

    def on_reboot(self) -> None:
        self._pending.clear()  # a command in RAM is lost with the reboot

    def on_message(self, msg: Any, now: float) -> None:
        super().on_message(msg, now)
        if isinstance(msg, M.Divert):
            if msg.cmd_id in self._done:  # already handled (the agent retransmitted)
                return
            self._done.add(msg.cmd_id)
            act_at = now + self.act_s
            window = self.passes(msg) if self.passes is not None else None
            if window is not None and act_at <= window[1]:
                act_at = max(act_at, window[0])  # the pusher fires when the parcel is there
            elif window is not None:
                act_at = max(act_at, window[1] + 1e-6)  # gone: reported too late at once
            self._pending.append((act_at, now + msg.deadline_ms / 1000, msg))

    def step(self, now: float) -> None:
        link = self.link
        if not link.up:
            return
        for lane, eye, blocked, at in self._beams:
            k = (lane, eye)
            self._eye_seq[k] = self._eye_seq.get(k, 0) + 1
            link.send(M.PhotoEye(int((at if at is not None else now) * 1e6), self._eye_seq[k],
                                 lane, M.EYE_NUM[eye], int(blocked)), now)
        self._beams.clear()
        keep = []
        for act_at, deadline, cmd in self._pending:
            if now < act_at:
                keep.append((act_at, deadline, cmd))
                continue
            window = self.passes(cmd) if self.passes is not None else None
            if act_at > deadline or (window is not None and act_at > window[1]):
                status, reason = M.DIVERT_TOO_LATE, "parcel past the diverter"
                self.late.append((cmd.parcel_seq, cmd.waybill))
            elif self.rng.random() < self.fail_rate:
                status, reason = M.DIVERT_FAILED, "flap jammed"
            else:
                status, reason = M.DIVERT_ACTED, ""
                self.diverted.append((cmd.parcel_seq, cmd.waybill))
            link.send(M.DivertResult(cmd.cmd_id, status, int(act_at * 1e6), reason), now)
        self._pending = keep
