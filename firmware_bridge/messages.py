"""Every message of the bridge protocol: a frozen dataclass per message type, with its
type number and field list (:mod:`firmware_bridge.schema`), and the compiled construct
parser built from that list.

``encode_payload(msg) -> bytes`` and ``decode_payload(type_id, payload) -> Message``
are the payload layer; framing, CRC and signing are :mod:`firmware_bridge.frame`.
Decoding raises :class:`PayloadError` (counted by the codec) for a payload that does
not parse, has bytes left over, or carries a value the message cannot hold.

Type numbers: 0x01-0x0F link control, 0x10-0x1F device events and commands,
0x20-0x2F image transfer. HELLO (0x01) and HELLO_ACK (0x02) are frozen: their layout
never changes between protocol versions, so two ends can always tell each other
which version they speak.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import construct as C

from firmware_bridge.fastcodec import FastPayloadError, generate
from firmware_bridge.schema import (
    FieldSpec,
    base_kind,
    build_struct,
    crc32c,
    pack_str,
    schema_id,
    schema_text,
    unpack_str,
)

PROTO_MAJOR = 1
PROTO_MINOR = 0

ROLE_AGENT, ROLE_BASE_STATION, ROLE_STATION = 0, 1, 2
ROLES = {ROLE_AGENT: "agent", ROLE_BASE_STATION: "base_station", ROLE_STATION: "station"}

# HELLO_ACK status
HELLO_OK, HELLO_BAD_VERSION, HELLO_BAD_SCHEMA, HELLO_BAD_ROLE, HELLO_BAD_AUTH = 0, 1, 2, 3, 4

# NACK codes
NACK_UNKNOWN_TYPE, NACK_BAD_PAYLOAD, NACK_NOT_NEGOTIATED, NACK_BUSY = 1, 2, 3, 4
NACK_BAD_CHUNK_CRC, NACK_BAD_OFFSET, NACK_UNAUTHENTICATED, NACK_BAD_ARGS = 5, 6, 7, 8

# SUBSCRIBER_EVENT.type, in wire order (field-formats 1b)
EVENT_TYPE_CODES = ("attach", "detach", "call_start", "call_end", "sms", "data", "handover")
EVENT_TYPE_NUM = {t: i for i, t in enumerate(EVENT_TYPE_CODES)}
DIR_CODES = ("mo", "mt")
DIR_NUM = {d: i for i, d in enumerate(DIR_CODES)}

# PHOTO_EYE.eye
EYE_CODES = ("scan", "xray", "divert")
EYE_NUM = {e: i for i, e in enumerate(EYE_CODES)}

# DIVERT_RESULT.status (the CommandOutcome status it maps to)
DIVERT_ACTED, DIVERT_TOO_LATE, DIVERT_FAILED, DIVERT_REJECTED = 0, 1, 2, 3
DIVERT_STATUS = ("acted", "too_late", "failed", "rejected")

# IMAGE_OFFER.kind, IMAGE_STATUS.state
IMAGE_KINDS = ("firmware", "config")
IMG_RECEIVING, IMG_DONE, IMG_BAD_SIGNATURE, IMG_BAD_HASH, IMG_UNKNOWN, IMG_BUSY, \
    IMG_REFUSED = 0, 1, 2, 3, 4, 5, 6
IMAGE_STATES = ("receiving", "done", "bad_signature", "bad_hash", "unknown", "busy",
                "refused")


class PayloadError(ValueError):
    """A payload that does not decode, or a message that cannot be encoded."""


@dataclass(frozen=True, slots=True)
class MessageType:
    """One message's definition, and the functions derived from it."""

    type_id: int
    name: str
    cls: type
    fields: tuple[FieldSpec, ...]
    reliable: bool
    """Sent with ACK_REQ and retransmitted until acknowledged."""
    schema_id: int
    parser: Any  # compiled construct
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    ref_encode: Callable[[Any], bytes]
    """Through construct (the reference the fast codec is checked against)."""
    ref_decode: Callable[[bytes], Any]

    @property
    def text(self) -> str:
        return schema_text(self.name, self.type_id, self.fields)


BY_TYPE: dict[int, MessageType] = {}
BY_CLASS: dict[type, MessageType] = {}


def _codec_for(cls: type, fields: tuple[FieldSpec, ...]) -> tuple[Any, Callable[[Any], bytes],
                                                                 Callable[[bytes], Any]]:
    """The compiled parser and the encode/decode functions of one message.

    construct parses and builds the wire layout; around it, tagged strings become
    ``str``, absent optional fields ``None``, and the bitmaps are computed from which
    optional fields are set (so the dataclasses carry no bitmap fields)."""
    parser = build_struct(fields).compile()
    names = [n for n, k in fields if k != "bitmap"]
    strs = [n for n, k in fields if base_kind(k) == "str"]
    blobs = [n for n, k in fields if base_kind(k) == "bytes"]
    raws = [(n, int(k[3:])) for n, k in fields if base_kind(k).startswith("raw")]
    bitmaps: list[tuple[str, list[str]]] = []
    for n, k in fields:
        if k == "bitmap":
            bitmaps.append((n, []))
        elif k.endswith("?"):
            bitmaps[-1][1].append(n)
    parse = parser.parse
    build = parser.build

    def decode(payload: bytes) -> Any:
        try:
            c = parse(payload)
        except (C.ConstructError, OverflowError, ValueError, struct.error) as exc:
            raise PayloadError(f"does not parse: {type(exc).__name__}") from None
        # construct's compiled Bytes does not check for a short read: a payload cut
        # inside a string or blob would parse, shorter
        for n in strs:
            if c[n] is not None and len(c[n]) != c[n + "__tag"] & 0x7F:
                raise PayloadError(f"{n} cut short")
        for n in blobs:
            if c[n] is not None and len(c[n]) != c[n + "__len"]:
                raise PayloadError(f"{n} cut short")
        for n, size in raws:
            if len(c[n]) != size:
                raise PayloadError(f"{n} cut short")
        try:
            for n in strs:
                v = c[n]
                if v is not None:
                    c[n] = unpack_str(c[n + "__tag"], v)
        except ValueError as exc:  # bad packing or UTF-8
            raise PayloadError(f"bad string: {exc}") from None
        for bm, opt in bitmaps:  # bits beyond the defined fields: a newer sender?
            if c[bm] >> len(opt):
                raise PayloadError(f"{bm} has undefined bits set")
        return cls(*[c[n] for n in names])

    def encode(msg: Any) -> bytes:
        d: dict[str, Any] = {}
        for n in names:
            d[n] = getattr(msg, n)
        for bm, opt in bitmaps:
            d[bm] = sum(1 << i for i, n in enumerate(opt) if d[n] is not None)
        try:
            for n in strs:
                v = d[n]
                if v is not None:
                    d[n + "__tag"], d[n] = pack_str(v)
                else:
                    d[n + "__tag"] = None
            for n in blobs:
                d[n + "__len"] = None if d[n] is None else len(d[n])
            return build(d)  # type: ignore[no-any-return]
        except (C.ConstructError, ValueError, OverflowError, TypeError, AttributeError) \
                as exc:
            raise PayloadError(f"cannot encode {type(msg).__name__}: {exc}") from None

    return parser, encode, decode


def _fast_for(cls: type, fields: tuple[FieldSpec, ...]) -> tuple[Callable[[Any], bytes],
                                                                 Callable[[bytes], Any]]:
    fdec, fenc, _src = generate(cls, fields)

    def decode(payload: bytes) -> Any:
        try:
            return fdec(payload)
        except (FastPayloadError, IndexError, struct.error, ValueError) as exc:
            raise PayloadError(f"does not parse: {exc}") from None

    def encode(msg: Any) -> bytes:
        try:
            return fenc(msg)  # type: ignore[no-any-return]
        except (ValueError, OverflowError, TypeError, AttributeError, struct.error) as exc:
            raise PayloadError(f"cannot encode {type(msg).__name__}: {exc}") from None

    return encode, decode


def message(type_id: int, name: str, fields: list[FieldSpec], *,
            reliable: bool = False) -> Callable[[type], type]:
    """Class decorator registering a message dataclass under ``type_id``."""

    def register(cls: type) -> type:
        fs = tuple(fields)
        declared = [f.name for f in dataclasses.fields(cls)]
        wire = [n for n, k in fs if k != "bitmap"]
        if declared != wire:
            raise TypeError(f"{cls.__name__}: fields {declared} != wire fields {wire}")
        if type_id in BY_TYPE:
            raise TypeError(f"type {type_id:#x} registered twice")
        parser, ref_enc, ref_dec = _codec_for(cls, fs)
        enc, dec = _fast_for(cls, fs)
        mt = MessageType(type_id, name, cls, fs, reliable, schema_id(name, type_id, fs),
                         parser, enc, dec, ref_enc, ref_dec)
        BY_TYPE[type_id] = mt
        BY_CLASS[cls] = mt
        cls.TYPE = type_id  # type: ignore[attr-defined]
        return cls

    return register


# ----------------------------------------------------------------------- link control


@message(0x01, "HELLO", [("proto_major", "u8"), ("proto_minor", "u8"), ("role", "u8"),
                         ("catalogue", "u32"), ("boot_id", "u32"), ("uptime_us", "u64"),
                         ("max_payload", "u16"), ("name", "str")])
@dataclass(frozen=True, slots=True)
class Hello:
    """Opens a link (either end may send it; the other answers HELLO_ACK).
    ``catalogue`` is the schema id of the whole message catalogue (:func:`catalogue_id`):
    equal on both ends means every message is understood alike. A new ``boot_id``
    tells the peer the sender restarted (sequence numbers and dedup state reset)."""

    TYPE: ClassVar[int]
    proto_major: int
    proto_minor: int
    role: int
    catalogue: int
    boot_id: int
    uptime_us: int
    max_payload: int
    name: str


@message(0x02, "HELLO_ACK", [("proto_major", "u8"), ("proto_minor", "u8"),
                             ("status", "u8"), ("catalogue", "u32"),
                             ("agent_time_us", "u64"), ("reason", "str")])
@dataclass(frozen=True, slots=True)
class HelloAck:
    """The answer to HELLO: ``status`` 0 accepted, else refused with ``reason`` (the
    link stays closed: fail closed). ``agent_time_us`` (Unix µs) lets a device without
    a clock of its own set one for signing timestamps."""

    TYPE: ClassVar[int]
    proto_major: int
    proto_minor: int
    status: int
    catalogue: int
    agent_time_us: int
    reason: str


@message(0x03, "HEARTBEAT", [("uptime_us", "u64"), ("state", "u8"), ("rx_errors", "u32")])
@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Once a second from each end; a link with no frame for 3 s is considered down."""

    TYPE: ClassVar[int]
    uptime_us: int
    state: int
    rx_errors: int


@message(0x04, "ACK", [("seq", "u16"), ("type", "u8")])
@dataclass(frozen=True, slots=True)
class Ack:
    """Acknowledges the reliable frame ``seq`` of message ``type``."""

    TYPE: ClassVar[int]
    seq: int
    type: int


@message(0x05, "NACK", [("seq", "u16"), ("type", "u8"), ("code", "u8"), ("reason", "str")])
@dataclass(frozen=True, slots=True)
class Nack:
    """Refuses the reliable frame ``seq`` for good (``code``: NACK_*); the sender does
    not retransmit it."""

    TYPE: ClassVar[int]
    seq: int
    type: int
    code: int
    reason: str


@message(0x06, "DEVICE_INFO_REQ", [("what", "u8")])
@dataclass(frozen=True, slots=True)
class DeviceInfoReq:
    """Asks for DEVICE_INFO (``what`` is 0; reserved)."""

    TYPE: ClassVar[int]
    what: int


@message(0x07, "DEVICE_INFO", [("role", "u8"), ("boot_id", "u32"), ("uptime_us", "u64"),
                               ("hw", "str"), ("fw", "str"), ("serial", "str")])
@dataclass(frozen=True, slots=True)
class DeviceInfo:
    TYPE: ClassVar[int]
    role: int
    boot_id: int
    uptime_us: int
    hw: str
    fw: str
    serial: str


# ----------------------------------------------------------------------- device traffic


@message(0x10, "SUBSCRIBER_EVENT",
         [("ts", "f64"), ("type", "u8"), ("present", "bitmap"), ("imsi", "str"),
          ("imei", "str?"), ("msisdn", "str?"), ("cell", "str?"), ("dir", "u8?"),
          ("peer", "str?"), ("call_id", "str?"), ("duration_s", "f64?"), ("cause", "str?"),
          ("auth_ms", "f64?"), ("bytes", "varint?"), ("target_cell", "str?")],
         reliable=True)
@dataclass(frozen=True, slots=True)
class SubscriberEvent:
    """One base-station event, every field of field-formats 1b. ``type`` and ``dir``
    are codes (EVENT_TYPE_CODES, DIR_CODES); absent fields take no bytes."""

    TYPE: ClassVar[int]
    ts: float
    type: int
    imsi: str
    imei: str | None = None
    msisdn: str | None = None
    cell: str | None = None
    dir: int | None = None
    peer: str | None = None
    call_id: str | None = None
    duration_s: float | None = None
    cause: str | None = None
    auth_ms: float | None = None
    bytes: int | None = None
    target_cell: str | None = None


@message(0x11, "PHOTO_EYE", [("t_us", "u64"), ("seq", "u32"), ("lane", "str"),
                             ("eye", "u8"), ("blocked", "u8")], reliable=True)
@dataclass(frozen=True, slots=True)
class PhotoEye:
    """A beam edge. ``t_us`` is the controller's clock (µs; the agent maps it to its
    own time); ``seq`` counts edges per eye; ``eye`` a code of EYE_CODES."""

    TYPE: ClassVar[int]
    t_us: int
    seq: int
    lane: str
    eye: int
    blocked: int


@message(0x12, "DIVERT", [("cmd_id", "u32"), ("deadline_ms", "u32"), ("parcel_seq", "u32"),
                          ("lane", "str"), ("waybill", "str")], reliable=True)
@dataclass(frozen=True, slots=True)
class Divert:
    """Divert parcel ``parcel_seq`` on ``lane``. ``deadline_ms`` is the time left, as
    of sending this copy, after which the diverter must not act (a retransmission
    carries the smaller remainder, so the two clocks need not agree)."""

    TYPE: ClassVar[int]
    cmd_id: int
    deadline_ms: int
    parcel_seq: int
    lane: str
    waybill: str


@message(0x13, "DIVERT_RESULT", [("cmd_id", "u32"), ("status", "u8"), ("t_us", "u64"),
                                 ("reason", "str")], reliable=True)
@dataclass(frozen=True, slots=True)
class DivertResult:
    """What the diverter did with ``cmd_id``: ``status`` a code of DIVERT_STATUS;
    ``t_us`` when it acted (controller clock)."""

    TYPE: ClassVar[int]
    cmd_id: int
    status: int
    t_us: int
    reason: str


# ----------------------------------------------------------------------- image transfer


@message(0x20, "IMAGE_OFFER", [("image_id", "u32"), ("kind", "u8"), ("size", "u32"),
                               ("chunk_size", "u16"), ("sha256", "raw32"),
                               ("key_id", "raw8"), ("signature", "raw64")], reliable=True)
@dataclass(frozen=True, slots=True)
class ImageOffer:
    """Announces an image: its size, the chunk size, its SHA-256 and the Ed25519
    signature (``key_id`` = the 8 bytes of the issuer key id). The receiver answers
    IMAGE_STATUS with the offset to continue from (0 for a new image, more when
    resuming one it already has part of)."""

    TYPE: ClassVar[int]
    image_id: int
    kind: int
    size: int
    chunk_size: int
    sha256: bytes
    key_id: bytes
    signature: bytes


@message(0x21, "IMAGE_CHUNK", [("image_id", "u32"), ("offset", "u32"), ("crc", "u32"),
                               ("data", "bytes")])
@dataclass(frozen=True, slots=True)
class ImageChunk:
    """``data`` at ``offset``; ``crc`` is CRC-32C of ``data``. Answered by IMAGE_STATUS
    (so not sent with ACK_REQ: the status is the acknowledgement)."""

    TYPE: ClassVar[int]
    image_id: int
    offset: int
    crc: int
    data: bytes


@message(0x22, "IMAGE_STATUS", [("image_id", "u32"), ("next_offset", "u32"), ("state", "u8"),
                                ("reason", "str")])
@dataclass(frozen=True, slots=True)
class ImageStatus:
    TYPE: ClassVar[int]
    image_id: int
    next_offset: int
    state: int
    reason: str


@message(0x23, "IMAGE_QUERY", [("image_id", "u32")])
@dataclass(frozen=True, slots=True)
class ImageQuery:
    """Asks where the receiver is with ``image_id`` (after a reconnect or reboot)."""

    TYPE: ClassVar[int]
    image_id: int


def catalogue_id() -> int:
    """CRC-32C over the schema texts of every message, in type order, joined by
    ``\\n``: what HELLO compares."""
    text = "\n".join(BY_TYPE[t].text for t in sorted(BY_TYPE))
    return crc32c(text.encode("ascii"))


CATALOGUE_ID = catalogue_id()


def encode_payload(msg: Any) -> bytes:
    mt = BY_CLASS.get(type(msg))
    if mt is None:
        raise PayloadError(f"{type(msg).__name__} is not a bridge message")
    return mt.encode(msg)


def decode_payload(type_id: int, payload: bytes) -> Any:
    mt = BY_TYPE.get(type_id)
    if mt is None:
        raise PayloadError(f"unknown message type {type_id:#04x}")
    return mt.decode(payload)
