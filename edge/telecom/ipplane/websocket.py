"""SIP over WebSocket (RFC 7118) in clear, sans-IO: TCP segments in, SIP messages out.

A browser or WebRTC softphone opens ``GET ... Upgrade: websocket`` with
``Sec-WebSocket-Protocol: sip`` and then sends one SIP message per WebSocket message
(text or binary, possibly fragmented over several frames, client frames masked).
:class:`WsSipStream` reassembles one direction of such a flow: it skips the HTTP
upgrade, cuts frames (RFC 6455 5.2), unmasks them, joins fragments and parses each
complete message as a datagram. After a lost segment the frame boundaries are
unknown, so the direction is given up (counted) rather than guessed.
:func:`open_stream` picks the reader for a TCP flow from its first payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.telecom.ipplane.sip import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    SipError,
    SipMessage,
    SipStream,
    looks_like_sip,
    parse_message,
)

MAX_UPGRADE_BYTES = 16_384


def is_ws_upgrade(payload: bytes) -> bool:
    """Does this segment start the HTTP upgrade (request or 101 answer) to WebSocket?"""
    if payload[:4] != b"GET " and payload[:9] not in (b"HTTP/1.1 ", b"HTTP/1.0 "):
        return False
    head = payload[:MAX_UPGRADE_BYTES].lower()
    return b"upgrade: websocket" in head or b"sec-websocket-" in head


def unmask(data: bytes, key: bytes) -> bytes:
    """XOR ``data`` with the repeating 4-byte masking key (one big-int operation)."""
    n = len(data)
    if not n:
        return data
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


@dataclass(slots=True)
class WsSipStream(SipStream):
    """One direction of a SIP-over-WebSocket flow (see the module docstring)."""

    upgraded: bool = False
    lost: bool = False
    frames: int = 0
    fragments: bytearray = field(default_factory=bytearray)

    def _resync(self, payload: bytes) -> bool:
        self.lost = True  # frame boundaries unknown from here on
        self.fragments.clear()
        return False

    def _drain(self) -> list[SipMessage]:
        out: list[SipMessage] = []
        buf = self.buf
        if self.lost:
            buf.clear()
            return out
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_UPGRADE_BYTES:
                    self.overflows += 1
                    buf.clear()
                return out
            del buf[:end + 4]
            self.upgraded = True
        limit = MAX_HEADER_BYTES + MAX_BODY_BYTES
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            ln = b1 & 0x7F
            hl = 2
            if ln == 126:
                hl = 4
                if len(buf) < hl:
                    break
                ln = (buf[2] << 8) | buf[3]
            elif ln == 127:
                hl = 10
                if len(buf) < hl:
                    break
                ln = int.from_bytes(buf[2:10], "big")
            masked = b1 & 0x80
            if masked:
                hl += 4
            if ln > limit or b0 & 0x70:  # oversized, or extension bits we cannot read
                self.errors += 1
                self.lost = True
                buf.clear()
                break
            if len(buf) < hl + ln:
                break
            data = bytes(buf[hl:hl + ln])
            if masked:
                data = unmask(data, bytes(buf[hl - 4:hl]))
            del buf[:hl + ln]
            self.frames += 1
            opcode = b0 & 0x0F
            if opcode >= 8:  # close, ping, pong: control frames, no SIP
                continue
            if opcode == 0 and not self.fragments:
                self.errors += 1  # a continuation without a start
                continue
            self.fragments += data
            if len(self.fragments) > limit:
                self.overflows += 1
                self.fragments.clear()
                continue
            if not b0 & 0x80:  # FIN not set: more fragments follow
                continue
            msg_bytes = bytes(self.fragments)
            self.fragments.clear()
            if not looks_like_sip(msg_bytes):
                self.errors += 1
                continue
            msg, _ = parse_message(msg_bytes)
            if isinstance(msg, SipError) or msg is None:
                self.errors += 1
                continue
            out.append(msg)
        return out


def open_stream(payload: bytes) -> SipStream | None:
    """The reader for a TCP flow whose first payload is ``payload``: plain SIP, SIP
    over WebSocket, or None when the flow is neither."""
    if looks_like_sip(payload):
        return SipStream()
    if is_ws_upgrade(payload):
        return WsSipStream()
    return None
