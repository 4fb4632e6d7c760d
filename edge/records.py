"""Typed records that cross module boundaries on the way into detectors.

Every record carries ``ts``: event time in Unix epoch seconds. The pipeline runs on
event time only, so replay and live share one code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal, get_args

import msgspec

from edge.detection import Scalar

_EVENT_TYPE = Literal["attach", "detach", "call_start", "call_end", "sms", "data", "handover"]
EVENT_TYPES = frozenset(get_args(_EVENT_TYPE))
# Constraints msgspec checks while decoding an event line (in C, for free); building a
# record in Python checks nothing. The decoder checks what msgspec cannot (ASCII
# digits) and gives any line that fails to its detailed path. To the type checker
# ``type`` and ``dir`` are plain strings (records are built from strings everywhere);
# to msgspec, which reads the annotations at run time, they are the closed sets.
if TYPE_CHECKING:
    _TYPE = str
    _DIR = str
else:
    _TYPE = _EVENT_TYPE
    _DIR = Literal["mo", "mt"]
_FINITE_NONNEG = Annotated[float, msgspec.Meta(ge=0.0, le=1.7976931348623157e308)]
_IMSI = Annotated[str, msgspec.Meta(min_length=15, max_length=15)]
_IMEI = Annotated[str, msgspec.Meta(min_length=14, max_length=16)]
_NONNEG_INT = Annotated[int, msgspec.Meta(ge=0)]


class BaseStationEvent(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """One subscriber action from the base station's monitoring feed (field-formats 1b).

    A msgspec struct, not a dataclass: the events decoder builds it straight from a
    JSON line in C (types checked there; values checked by the decoder), and with
    ``gc=False`` the millions of short-lived events are never tracked by the garbage
    collector (they hold only strings and numbers, so they cannot form cycles).
    Unknown fields make msgspec decoding fail on purpose: the decoder's detailed path
    then counts them and decodes the line anyway."""

    ts: _FINITE_NONNEG
    type: _TYPE
    imsi: _IMSI
    imei: _IMEI | None = None
    msisdn: str | None = None
    cell: str | None = None
    dir: _DIR | None = None
    peer: str | None = None
    call_id: str | None = None
    duration_s: _FINITE_NONNEG | None = None
    cause: str | None = None
    auth_ms: _FINITE_NONNEG | None = None
    bytes: _NONNEG_INT | None = None
    target_cell: str | None = None


@dataclass(slots=True, frozen=True)
class Frame:
    """One captured link-layer frame, undecoded.

    ``linktype`` is the pcap LINKTYPE_* value (1 Ethernet, 113 Linux cooked SLL,
    276 SLL2, 101 raw IP, ...). ``index`` is the 1-based frame number in its source.
    """

    ts: float
    linktype: int
    data: bytes
    index: int
    source: str = ""


@dataclass(slots=True, frozen=True)
class Malformed:
    """An input record that could not be decoded; counted, logged, skipped."""

    source: str
    position: str  # "line 12", "frame 7", "byte 1024"
    reason: str
    ts: float | None = None


@dataclass(slots=True)
class Packet:
    """An IP packet's L3/L4 view after link-layer decoding and GTP-U decapsulation.

    Produced by the capture decoder (drivers/capture) for UDP and TCP; consumed by the
    IP-plane stages. ``payload`` is the L4 payload. For GTP-U traffic the addresses are
    the *inner* ones and ``teid`` is set. ``eth_src`` is the outer source MAC (6 bytes)
    when the link layer carries one, for OUI signatures. ``tunnel`` names the tunnels
    the packet was taken out of (outermost first, e.g. ``"erspan2(session=5)@a>b"``),
    None when it arrived plain.
    """

    ts: float
    src: str
    dst: str
    sport: int
    dport: int
    proto: int  # 6 TCP, 17 UDP
    payload: bytes
    frame: int = 0
    source: str = ""
    tcp_seq: int = 0
    tcp_flags: int = 0
    teid: int | None = None
    eth_src: bytes | None = None
    tunnel: str | None = None


@dataclass(slots=True)
class RtpBatch:
    """RTP media of one flow and SSRC, aggregated over part of one 1-second bucket.

    Produced by the capture decoders (drivers/capture) instead of one ``Packet`` per
    RTP packet, so media costs a few records per flow-second. Batches never span two
    aligned buckets (``floor(ts)``) but a flow-second may arrive in several pieces, so
    consumers sum them. ``lost`` counts missing sequence numbers inside the batch and
    since the flow's previous batch; ``jitter_s`` is the mean |D| of RFC 3550 transit
    differences over consecutive pairs (RTP clock assumed 8 kHz); ``ts`` is the time
    of the last packet and ``frame`` its index. For GTP-U the addresses are inner ones.
    """

    ts: float
    first_ts: float
    src: str
    dst: str
    sport: int
    dport: int
    ssrc: int
    payload_type: int
    packets: int
    bytes: int
    seq_first: int
    seq_last: int
    lost: int = 0
    jitter_s: float = 0.0
    max_gap_s: float = 0.0
    frame: int = 0
    source: str = ""
    teid: int | None = None


COMMAND_STATUSES = ("acted", "too_late", "failed", "rejected", "dry_run")


@dataclass(slots=True, frozen=True)
class Command:
    """Something the agent asks a device or the network to do.

    A stage returns it like any output; the pipeline hands it to the actuator whose
    ``name`` is ``target`` and routes the :class:`CommandOutcome` that comes back.
    ``deadline`` is event time: a command the pipeline sees after it is not submitted
    (outcome ``too_late``). ``correlation_id`` is unique and comes back on the outcome.
    """

    ts: float
    target: str  # actuator name: "station" (bridge), "nftables", "carrier", ...
    action: str  # "divert", "block_ip", "unblock_ip", "suspend_sim", ...
    args: dict[str, Scalar]
    deadline: float
    correlation_id: str
    origin: str = ""  # name of the stage that issued it


@dataclass(slots=True, frozen=True)
class CommandOutcome:
    """What became of a :class:`Command`. ``status`` is one of COMMAND_STATUSES:
    acted, too_late (deadline passed), failed (the actuator tried and could not),
    rejected (no such actuator / action, bad arguments) or dry_run (not executed by
    configuration). ``latency_s`` is issue-to-outcome time where the actuator knows it."""

    ts: float
    correlation_id: str
    target: str
    action: str
    status: str
    detail: str = ""
    latency_s: float | None = None


@dataclass(slots=True, frozen=True)
class PhotoEyeEvent:
    """A photo-eye edge from the station controller over the firmware bridge.

    ``ts`` is the event time of the edge (controller clock mapped to agent time);
    ``eye`` is ``"scan"`` (before the barcode scanner), ``"xray"`` (X-ray entry) or
    ``"divert"`` (at the diverter); ``blocked`` is True on the beam break (leading
    edge) and False when it clears; ``seq`` is the controller's counter per eye.
    """

    ts: float
    lane: str
    eye: str
    blocked: bool
    seq: int
