"""The ``station`` actuator: divert :class:`~edge.records.Command` records go to the
station controller over the bridge; its DIVERT_RESULT comes back as the
:class:`~edge.records.CommandOutcome`.

``Command(target="station", action="divert", args={"lane": "L1", "parcel_seq": n,
"waybill": "SF..."}, deadline=...)``. Outcomes: ``acted`` / ``too_late`` / ``failed``
as the controller reports them; ``failed`` too when the link gave up before the
deadline (device unreachable) or no result came within ``result_grace_s`` after the
deadline; ``too_late`` when the deadline passed before the controller acknowledged it;
``rejected`` for another action, bad arguments, or a NACK.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edge.actuators import outcome
from edge.records import Command, CommandOutcome
from firmware_bridge import messages as M
from firmware_bridge.client import BridgeClient, LinkEvent


@dataclass(slots=True)
class _Issued:
    cmd: Command
    sent_wall: float
    deadline_wall: float
    acked_wall: float | None = None


class StationActuator:
    def __init__(self, client: BridgeClient, *, name: str = "station",
                 result_grace_s: float = 2.0, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.client = client
        self.result_grace_s = result_grace_s
        self._clock = clock
        self._next_id = 1
        self._issued: dict[int, _Issued] = {}
        self.c: dict[str, int] = {"submitted": 0, "acked": 0, "acked_in_time": 0,
                                  "acted": 0, "too_late": 0, "failed": 0, "rejected": 0,
                                  "acked_by_result": 0}
        self.ack_latency_max_s = 0.0

    def submit(self, cmd: Command) -> Sequence[CommandOutcome]:
        if cmd.action != "divert":
            self.c["rejected"] += 1
            return (outcome(cmd, "rejected", cmd.ts, f"station cannot {cmd.action!r}"),)
        a = cmd.args
        lane, seq, waybill = a.get("lane"), a.get("parcel_seq"), a.get("waybill") or ""
        if not isinstance(lane, str) or not isinstance(seq, int) or isinstance(seq, bool) \
                or not 0 <= seq <= 0xFFFFFFFF or not isinstance(waybill, str):
            self.c["rejected"] += 1
            return (outcome(cmd, "rejected", cmd.ts,
                            "divert needs lane (str), parcel_seq (u32), waybill (str)"),)
        cmd_id = self._next_id
        self._next_id = self._next_id % 0xFFFFFFFF + 1
        wall = self._clock()
        # event time and wall time run at the same rate live: what is left of the
        # deadline in event time is what is left on the wall clock
        deadline = wall + max(0.0, cmd.deadline - cmd.ts)
        self._issued[cmd_id] = _Issued(cmd, wall, deadline)
        self.c["submitted"] += 1
        self.client.send(M.Divert(cmd_id, 0, seq, lane, waybill), deadline=deadline)
        return ()

    def poll(self, now: float) -> Sequence[CommandOutcome]:
        out: list[CommandOutcome] = []
        q = self.client.results
        while not q.empty():
            ev: LinkEvent = q.get_nowait()
            msg = ev.msg
            if isinstance(msg, M.DivertResult):
                it = self._issued.pop(msg.cmd_id, None)
                if it is None:
                    continue  # a result for a command already given up on
                if it.acked_wall is None:
                    # the controller's result proves it had the command: the link's
                    # ACK for it was lost (a retry's ACK then finds it done) or is still
                    # behind the result in the queue, so the result is the acknowledgement
                    self.c["acked_by_result"] += 1
                    self._acked(it, ev.at)
                status = M.DIVERT_STATUS[msg.status] if msg.status < len(M.DIVERT_STATUS) \
                    else "failed"
                out.append(self._done(it, status, now, msg.reason, ev.at))
            elif isinstance(msg, M.Divert):
                it = self._issued.get(msg.cmd_id)
                if it is None:
                    continue
                if ev.kind == "acked":
                    if it.acked_wall is None:  # a retry's duplicate ACK counts once
                        self._acked(it, ev.at)
                elif ev.kind in ("gave_up", "nacked"):
                    del self._issued[msg.cmd_id]
                    status = "rejected" if ev.kind == "nacked" else \
                        "too_late" if ev.detail == "deadline" else "failed"
                    out.append(self._done(it, status, now, f"link {ev.kind}: {ev.detail}",
                                          ev.at))
        wall = self._clock()
        for cid, it in list(self._issued.items()):
            if wall > it.deadline_wall + self.result_grace_s:
                del self._issued[cid]
                out.append(self._done(it, "failed", now, "no result from the controller",
                                      wall))
        return out

    def _acked(self, it: _Issued, at: float) -> None:
        it.acked_wall = at
        self.c["acked"] += 1
        self.ack_latency_max_s = max(self.ack_latency_max_s, at - it.sent_wall)
        if at <= it.deadline_wall:
            self.c["acked_in_time"] += 1

    def _done(self, it: _Issued, status: str, now: float, detail: str,
              at: float) -> CommandOutcome:
        """The outcome, timed when the link saw it (``at``), not when the pipeline next
        polled: its margin to the deadline is then the controller's, not the poll's."""
        self.c[status] = self.c.get(status, 0) + 1
        if it.acked_wall is not None:
            left = it.deadline_wall - it.acked_wall
            ack = (f"acknowledged {left:.3f} s before the deadline" if left >= 0
                   else f"acknowledged {-left:.3f} s after the deadline")
            detail = f"{detail}; {ack}" if detail else ack
        return outcome(it.cmd, status, at, detail, latency_s=round(at - it.sent_wall, 6))

    def counters(self) -> dict[str, int | float]:
        out: dict[str, int | float] = dict(self.c)
        out["in_flight"] = len(self._issued)
        out["ack_latency_max_s"] = round(self.ack_latency_max_s, 6)
        return out

    def close(self) -> None:
        self.client.close()
