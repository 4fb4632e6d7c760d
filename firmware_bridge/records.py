"""Wire messages <-> the pipeline's records (sans-IO, no clock).

``SUBSCRIBER_EVENT`` <-> :class:`~edge.records.BaseStationEvent` (every field of
field-formats 1b; the round trip is exact, so the call plane sees the same records
live over the bridge as from the JSONL file), ``PHOTO_EYE`` ->
:class:`~edge.records.PhotoEyeEvent` with the controller's clock mapped by
:class:`ClockMap`.
"""

from __future__ import annotations

from edge.records import BaseStationEvent, PhotoEyeEvent
from firmware_bridge import messages as M


def event_to_wire(ev: BaseStationEvent) -> M.SubscriberEvent:
    """Raises PayloadError for an event the wire cannot carry (unknown type/dir)."""
    t = M.EVENT_TYPE_NUM.get(ev.type)
    if t is None:
        raise M.PayloadError(f"event type {ev.type!r} has no wire code")
    d = None
    if ev.dir is not None:
        d = M.DIR_NUM.get(ev.dir)
        if d is None:
            raise M.PayloadError(f"dir {ev.dir!r} has no wire code")
    return M.SubscriberEvent(ev.ts, t, ev.imsi, ev.imei, ev.msisdn, ev.cell, d, ev.peer,
                             ev.call_id, ev.duration_s, ev.cause, ev.auth_ms, ev.bytes,
                             ev.target_cell)


_TYPES = M.EVENT_TYPE_CODES
_DIRS = M.DIR_CODES


def wire_to_event(m: M.SubscriberEvent) -> BaseStationEvent:
    """Raises PayloadError for a code outside the catalogue."""
    if m.type >= len(_TYPES) or (m.dir is not None and m.dir >= len(_DIRS)):
        raise M.PayloadError(f"event type {m.type} / dir {m.dir} out of range")
    return BaseStationEvent(m.ts, _TYPES[m.type], m.imsi, m.imei, m.msisdn, m.cell,
                            None if m.dir is None else _DIRS[m.dir], m.peer, m.call_id,
                            m.duration_s, m.cause, m.auth_ms, m.bytes, m.target_cell)


class ClockMap:
    """Maps a device clock (µs) to agent time (Unix seconds).

    Each frame carrying a device time gives one sample ``agent_now - device_time`` =
    offset + transit delay; the smallest sample since the device booted is the best
    estimate of the offset (the frame that waited least). A device whose clock is
    already within ``synced_s`` of the agent's (set from HELLO_ACK's agent time, or
    an RTC) is taken as it is, so its times are used unchanged."""

    def __init__(self, synced_s: float = 1.0) -> None:
        self.synced_s = synced_s
        self.offset: float | None = None

    def sample(self, agent_now: float, device_us: int) -> None:
        off = agent_now - device_us / 1e6
        if self.offset is None or off < self.offset:
            self.offset = off

    def reset(self) -> None:
        self.offset = None

    def to_agent(self, device_us: int, agent_now: float) -> float:
        """Agent time of ``device_us``, received at ``agent_now`` (also a sample)."""
        self.sample(agent_now, device_us)
        assert self.offset is not None
        if abs(self.offset) < self.synced_s:
            return device_us / 1e6
        return device_us / 1e6 + self.offset


def photo_eye_record(m: M.PhotoEye, clock: ClockMap, agent_now: float) -> PhotoEyeEvent:
    if m.eye >= len(M.EYE_CODES):
        raise M.PayloadError(f"eye code {m.eye} out of range")
    return PhotoEyeEvent(clock.to_agent(m.t_us, agent_now), m.lane, M.EYE_CODES[m.eye],
                         bool(m.blocked), m.seq)
