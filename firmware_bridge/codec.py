"""The sans-IO frame codec: bytes in -> decoded frames and counted errors out;
messages in -> bytes out. No I/O, no clock of its own (``now`` is passed in).

Wire format (PROTOCOL.md has the diagram)::

    0x00 | COBS( header(7) | payload(len) | [signature(15)] | crc32c(4) ) | 0x00

header = version u8, type u8, flags u8, seq u16, len u16 (little-endian).
The CRC is CRC-32C over the 4 little-endian bytes of the message's schema id followed
by every byte before the CRC. The signature block (flag SIGNED) is link_id u8,
timestamp u48 (10 µs units since 2015-01-01T00:00:00Z) and the first 8 bytes of
HMAC-SHA256(link key, every byte before the MAC).

A frame is delimited by a zero byte on both sides, so garbage between frames ends at
the next frame's leading zero and can never take a valid frame with it; a corrupt
frame costs exactly itself. Every rejected frame is counted under its reason.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from typing import Any

from cobs import cobs

from firmware_bridge.messages import BY_CLASS, BY_TYPE, PROTO_MAJOR, PayloadError
from firmware_bridge.schema import crc32c

HEADER = struct.Struct("<BBBHH")
HEADER_LEN = HEADER.size  # 7
CRC_LEN = 4
SIG_LEN = 15  # link_id 1 + timestamp 6 + mac 8
MAC_LEN = 8
MAX_PAYLOAD = 1024
MAX_FRAME = HEADER_LEN + MAX_PAYLOAD + SIG_LEN + CRC_LEN
# COBS adds one byte per 254 and one overhead byte
MAX_ENCODED = MAX_FRAME + MAX_FRAME // 254 + 2

FLAG_SIGNED = 0x01
FLAG_ACK_REQ = 0x02
FLAG_RETRANSMIT = 0x04
FLAGS_DEFINED = FLAG_SIGNED | FLAG_ACK_REQ | FLAG_RETRANSMIT

#: 2015-01-01T00:00:00Z, the epoch of signing timestamps (as MAVLink 2)
SIGN_EPOCH = 1_420_070_400
TS_MAX = (1 << 48) - 1

_U32 = struct.Struct("<I")
_SIGHDR = struct.Struct("<BIH")  # link_id, timestamp low 32, high 16

#: CRC state after the 4 schema-id bytes of each message type (the CRC seed)
SEEDS = {t: crc32c(_U32.pack(mt.schema_id)) for t, mt in BY_TYPE.items()}

#: Reasons a frame is rejected (counter names ``errors.<reason>``).
ERROR_REASONS = ("cobs", "short", "too_long", "version", "unknown_type", "crc", "length",
                 "flags", "payload", "unsigned", "forged", "replayed", "stale", "future",
                 "reflected", "no_key")
AUTH_REASONS = frozenset(("unsigned", "forged", "replayed", "stale", "future", "reflected",
                          "no_key"))


@dataclass(slots=True, frozen=True)
class Decoded:
    """One accepted frame. ``link_id``/``timestamp`` are set when it was signed."""

    seq: int
    flags: int
    msg: Any
    link_id: int | None = None
    timestamp: int | None = None

    @property
    def ack_req(self) -> bool:
        return bool(self.flags & FLAG_ACK_REQ)


@dataclass(slots=True, frozen=True)
class DecodeError:
    """Bytes that did not make an accepted frame; ``reason`` is in ERROR_REASONS."""

    reason: str
    detail: str = ""
    data: bytes = b""


def sign_timestamp(now: float) -> int:
    """Unix seconds -> signing timestamp (10 µs units since SIGN_EPOCH)."""
    return max(0, min(TS_MAX, int((now - SIGN_EPOCH) * 100_000)))


@dataclass(slots=True)
class LinkKey:
    """The secret of one link and which link id this end signs with.

    ``window_s``: a signed frame older than the receiver's clock by more than this is
    ``stale``, newer by more than this ``future``. Within it, each sending link id's
    timestamps must grow strictly: an equal or older one is ``replayed``."""

    secret: bytes
    link_id: int
    window_s: float = 60.0

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise ValueError("link secret must be at least 16 bytes")
        if not 0 <= self.link_id <= 255:
            raise ValueError("link id must be 0..255")


class Codec:
    """Encodes and decodes frames of one link.

    ``key``: sign every frame sent and verify signed frames received; with
    ``require_auth`` (default when a key is given) unsigned frames are rejected.
    """

    def __init__(self, key: LinkKey | None = None, *, require_auth: bool | None = None,
                 max_payload: int = MAX_PAYLOAD) -> None:
        self.key = key
        self.require_auth = key is not None if require_auth is None else require_auth
        self.max_payload = max_payload
        self._buf = b""
        self._skipping = False
        self._last_ts: dict[int, int] = {}
        self._last_sent_ts = 0
        self.frames_in = 0
        self.frames_out = 0
        self.bytes_in = 0
        self.errors: dict[str, int] = {}
        self.signed_in = 0

    # ------------------------------------------------------------------ encode
    def encode(self, msg: Any, seq: int, flags: int = 0, now: float = 0.0) -> bytes:
        """The wire bytes of ``msg`` (delimiters included). Signed when the codec has
        a key (``now`` then gives the timestamp). Raises PayloadError."""
        mt = BY_CLASS.get(type(msg))
        if mt is None:
            raise PayloadError(f"{type(msg).__name__} is not a bridge message")
        return self.encode_raw(mt.type_id, mt.encode(msg), seq, flags, now)

    def encode_raw(self, type_id: int, payload: bytes, seq: int, flags: int = 0,
                   now: float = 0.0, schema: int | None = None) -> bytes:
        if len(payload) > self.max_payload:
            raise PayloadError(f"payload of {len(payload)} bytes (at most {self.max_payload})")
        seed = SEEDS[type_id] if schema is None else crc32c(_U32.pack(schema))
        key = self.key
        if key is not None:
            flags |= FLAG_SIGNED
        body = HEADER.pack(PROTO_MAJOR, type_id, flags, seq & 0xFFFF, len(payload)) + payload
        if key is not None:
            ts = max(sign_timestamp(now), self._last_sent_ts + 1)
            self._last_sent_ts = ts
            body += _SIGHDR.pack(key.link_id, ts & 0xFFFFFFFF, ts >> 32)
            body += hmac.digest(key.secret, body, hashlib.sha256)[:MAC_LEN]
        body += _U32.pack(crc32c(body, seed))
        self.frames_out += 1
        return b"\x00" + cobs.encode(body) + b"\x00"

    # ------------------------------------------------------------------ decode
    def feed(self, data: bytes, now: float = 0.0) -> list[Decoded | DecodeError]:
        """Every frame completed by ``data``, accepted or rejected, in order. ``now``
        (Unix seconds) is the receiver's clock for the signature's time window."""
        self.bytes_in += len(data)
        buf = self._buf + data if self._buf else data
        parts = buf.split(b"\x00")
        tail = parts.pop()
        out: list[Decoded | DecodeError] = []
        for part in parts:
            if self._skipping:  # the end of an overlong frame
                self._skipping = False
                continue
            if part:
                out.append(self._frame(part, now))
        if len(tail) > MAX_ENCODED:
            if not self._skipping:
                out.append(self._err("too_long", f"no delimiter within {MAX_ENCODED} bytes"))
            self._skipping = True
            tail = b""
        self._buf = tail
        return out

    def reset(self) -> None:
        """Forget a partial frame (the link broke). Replay state is kept."""
        self._buf = b""
        self._skipping = False

    def forget_peer(self, link_id: int) -> None:
        """Drop the replay state of ``link_id`` (never needed in normal operation:
        timestamps stay monotonic across reboots)."""
        self._last_ts.pop(link_id, None)

    def _err(self, reason: str, detail: str = "", data: bytes = b"") -> DecodeError:
        self.errors[reason] = self.errors.get(reason, 0) + 1
        return DecodeError(reason, detail, data[:64])

    def _frame(self, enc: bytes, now: float) -> Decoded | DecodeError:
        if len(enc) > MAX_ENCODED:
            return self._err("too_long", f"{len(enc)} bytes encoded", enc)
        try:
            body = cobs.decode(enc)
        except cobs.DecodeError:
            return self._err("cobs", "bad COBS encoding", enc)
        n = len(body)
        if n < HEADER_LEN + CRC_LEN:
            return self._err("short", f"{n} bytes", body)
        ver, type_id, flags, seq, plen = HEADER.unpack_from(body)
        if ver != PROTO_MAJOR:
            return self._err("version", f"frame version {ver}, this end speaks {PROTO_MAJOR}",
                             body)
        mt = BY_TYPE.get(type_id)
        if mt is None:
            return self._err("unknown_type", f"type {type_id:#04x}", body)
        if _U32.unpack_from(body, n - CRC_LEN)[0] != crc32c(body[:n - CRC_LEN],
                                                          SEEDS[type_id]):
            return self._err("crc", f"{mt.name}", body)
        signed = flags & FLAG_SIGNED
        if flags & ~FLAGS_DEFINED:
            return self._err("flags", f"undefined flags {flags:#04x}", body)
        if HEADER_LEN + plen + (SIG_LEN if signed else 0) + CRC_LEN != n:
            return self._err("length", f"len {plen} in a {n}-byte frame", body)
        link_id = ts = None
        if signed:
            key = self.key
            if key is None:
                return self._err("no_key", "signed frame and no link key configured", body)
            s = HEADER_LEN + plen
            link_id, lo, hi = _SIGHDR.unpack_from(body, s)
            ts = lo | (hi << 32)
            mac_at = s + SIG_LEN - MAC_LEN
            want = hmac.digest(key.secret, body[:mac_at], hashlib.sha256)[:MAC_LEN]
            if not hmac.compare_digest(want, body[mac_at:mac_at + MAC_LEN]):
                return self._err("forged", f"{mt.name}: MAC does not verify", body)
            if link_id == key.link_id:
                return self._err("reflected", f"{mt.name} signed with this end's own "
                                 f"link id {link_id}", body)
            window = int(key.window_s * 100_000)
            mine = sign_timestamp(now)
            if ts < mine - window:
                return self._err("stale", f"{mt.name}: {(mine - ts) / 1e5:.1f} s old", body)
            if ts > mine + window:
                return self._err("future", f"{mt.name}: {(ts - mine) / 1e5:.1f} s ahead", body)
            # a copy of an earlier frame, or one overtaken by a later one: the two
            # cannot be told apart and both are refused
            last = self._last_ts.get(link_id, -1)
            if ts <= last:
                return self._err("replayed", f"{mt.name}: timestamp {ts} <= last {last} "
                                 f"of link {link_id}", body)
        elif self.require_auth:
            return self._err("unsigned", f"{mt.name} not signed", body)
        try:
            msg = mt.decode(body[HEADER_LEN:HEADER_LEN + plen])
        except PayloadError as exc:
            return self._err("payload", f"{mt.name}: {exc}", body)
        if signed:  # only a frame that verified and decoded moves the replay window
            self._last_ts[link_id] = ts  # type: ignore[index,assignment]
            self.signed_in += 1
        self.frames_in += 1
        return Decoded(seq, flags, msg, link_id, ts)

    def counters(self) -> dict[str, int | float]:
        c: dict[str, int | float] = {"frames_in": self.frames_in, "frames_out": self.frames_out,
                                     "bytes_in": self.bytes_in, "signed_in": self.signed_in}
        errors = self.errors.copy()  # one C call: safe against the I/O thread adding keys
        for k, v in sorted(errors.items()):
            c[f"errors.{k}"] = v
        auth = sum(v for k, v in errors.items() if k in AUTH_REASONS)
        if auth:
            c["errors.auth"] = auth
        return c


def split_frames(data: bytes) -> list[bytes]:
    """The frames in a run of encoded bytes, each with its two delimiters (for fault
    injection and tests: drop, duplicate or corrupt one frame at a time)."""
    return [b"\x00" + p + b"\x00" for p in data.split(b"\x00") if p]
