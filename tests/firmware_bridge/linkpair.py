"""Two sans-IO links joined by a lossy in-memory wire, on a fake clock."""

from __future__ import annotations

import random
from typing import Any

from firmware_bridge import messages as M
from firmware_bridge.codec import Codec, LinkKey, split_frames
from firmware_bridge.link import Event, Link

T0 = 1_767_225_600.0
SECRET = bytes(range(32))


def make_link(role: int, peer_role: int, boot: int, link_id: int, now: float,
              signed: bool = True, **kw: Any) -> Link:
    codec = Codec(LinkKey(SECRET, link_id) if signed else None)
    return Link(codec, role=role, name=f"{M.ROLES[role]}-{boot}", boot_id=boot,
                peer_role=peer_role, started=now, **kw)


class Wire:
    def __init__(self, a: Link, b: Link, *, loss: float = 0.0, dup: float = 0.0,
                 seed: int = 1, now: float = T0) -> None:
        self.a, self.b = a, b
        self.loss, self.dup = loss, dup
        self.rng = random.Random(seed)
        self.now = now
        self.events: dict[str, list[Event]] = {"a": [], "b": []}
        self.dropped = 0

    def _carry(self, data: bytes) -> bytes:
        out = []
        for f in split_frames(data):
            if self.rng.random() < self.loss:
                self.dropped += 1
                continue
            out.append(f)
            if self.rng.random() < self.dup:
                out.append(f)
        return b"".join(out)

    def step(self, dt: float = 0.005) -> None:
        self.now += dt
        for side, link in (("a", self.a), ("b", self.b)):
            self.events[side] += link.poll(self.now)
        da, db = self._carry(self.a.output()), self._carry(self.b.output())
        if db:
            self.events["a"] += self.a.receive(db, self.now)
        if da:
            self.events["b"] += self.b.receive(da, self.now)

    def run(self, seconds: float, dt: float = 0.005) -> None:
        for _ in range(int(seconds / dt)):
            self.step(dt)

    def of(self, side: str, kind: type) -> list[Any]:
        return [e for e in self.events[side] if isinstance(e, kind)]
