"""SDP (RFC 4566) parsing, sans-IO: a message body in, :class:`Sdp` out.

Only what call tracking and signatures need: origin, session name, the connection
address (session or media level) and each media line's port, transport and formats.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True, frozen=True)
class Media:
    """One ``m=`` line with the connection address that applies to it."""

    media: str  # audio, video, image...
    port: int
    proto: str  # RTP/AVP, RTP/SAVP, udptl...
    formats: tuple[str, ...]
    addr: str


@dataclass(slots=True, frozen=True)
class Sdp:
    origin: str = ""
    session: str = ""
    addr: str = ""
    media: tuple[Media, ...] = ()
    lines: tuple[str, ...] = field(default=(), repr=False)


def parse_sdp(body: bytes) -> Sdp | None:
    """Parse an SDP body; ``None`` if it does not start with ``v=``."""
    if not body.lstrip()[:2] == b"v=":
        return None
    text = body.decode("utf-8", "replace")
    lines = tuple(ln.strip() for ln in text.replace("\r\n", "\n").split("\n") if ln.strip())
    origin = session = sess_addr = ""
    raw_media: list[tuple[str, int, str, tuple[str, ...], str]] = []
    for ln in lines:
        if len(ln) < 2 or ln[1] != "=":
            continue
        k, v = ln[0], ln[2:]
        if k == "o" and not origin:
            origin = v
        elif k == "s" and not session:
            session = v
        elif k == "c":
            parts = v.split()
            addr = parts[2].split("/", 1)[0] if len(parts) >= 3 else ""
            if raw_media:
                m = raw_media[-1]
                raw_media[-1] = (m[0], m[1], m[2], m[3], addr)
            else:
                sess_addr = addr
        elif k == "m":
            parts = v.split()
            if len(parts) < 3:
                continue
            try:
                port = int(parts[1].split("/", 1)[0])
            except ValueError:
                continue
            if not 0 <= port <= 65535:
                continue
            raw_media.append((parts[0], port, parts[2], tuple(parts[3:]), ""))
    media = tuple(Media(m, p, pr, f, a or sess_addr) for m, p, pr, f, a in raw_media)
    return Sdp(origin, session, sess_addr, media, lines)
