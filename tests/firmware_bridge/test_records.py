"""Wire messages <-> pipeline records, and the device clock mapping."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.records import BaseStationEvent
from firmware_bridge import messages as M
from firmware_bridge.records import ClockMap, event_to_wire, photo_eye_record, wire_to_event

digits = st.text(alphabet="0123456789", min_size=1, max_size=16)
opt_s = st.none() | st.text(max_size=20) | digits
opt_f = st.none() | st.floats(min_value=0, max_value=1e9, allow_nan=False)

events = st.builds(
    BaseStationEvent, ts=st.floats(0, 4e9), type=st.sampled_from(M.EVENT_TYPE_CODES),
    imsi=st.text(alphabet="0123456789", min_size=15, max_size=15), imei=opt_s, msisdn=opt_s,
    cell=opt_s, dir=st.none() | st.sampled_from(M.DIR_CODES), peer=opt_s, call_id=opt_s,
    duration_s=opt_f, cause=opt_s, auth_ms=opt_f,
    bytes=st.none() | st.integers(0, 1 << 62), target_cell=opt_s)


@given(events)
@settings(max_examples=300, deadline=None)
def test_every_base_station_event_crosses_the_wire_exactly(ev: BaseStationEvent) -> None:
    m = event_to_wire(ev)
    back = M.decode_payload(M.SubscriberEvent.TYPE, M.encode_payload(m))  # type: ignore[attr-defined]
    assert wire_to_event(back) == ev


def test_an_unsynchronised_controller_clock_is_mapped_by_the_least_delayed_frame() -> None:
    cm = ClockMap()
    boot = 1_767_225_600.0  # agent time when the controller booted; its clock starts at 0
    # edges at controller times 10 s, 11 s, 12 s arrive 30, 5 and 12 ms late
    for t_dev, delay in ((10.0, 0.030), (11.0, 0.005), (12.0, 0.012)):
        rec = photo_eye_record(M.PhotoEye(int(t_dev * 1e6), 1, "L1", 1, 1), cm,
                               boot + t_dev + delay)
    assert abs(rec.ts - (boot + 12.0)) < 0.006 and rec.eye == "xray" and rec.blocked
    cm.reset()  # the controller rebooted
    assert cm.offset is None
