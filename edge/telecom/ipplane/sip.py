"""SIP message parsing, sans-IO: bytes in, :class:`SipMessage` out.

:func:`parse_message` frames and parses one message from the front of a buffer
(start line, headers with compact forms folded to their full names, body framed by
Content-Length). :class:`SipStream` reassembles one direction of a TCP flow from
(sequence number, segment) pairs and yields every complete message, several per
segment or one across many. :func:`looks_like_sip` is the cheap pre-check the hot
path runs before any parsing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# RFC 3261 7.3.3 and later RFCs: compact header forms.
COMPACT = {
    "i": "call-id", "f": "from", "t": "to", "m": "contact", "v": "via",
    "l": "content-length", "c": "content-type", "k": "supported", "s": "subject",
    "e": "content-encoding", "o": "event", "r": "refer-to", "b": "referred-by",
    "x": "session-expires", "u": "allow-events", "a": "accept-contact",
    "j": "reject-contact", "d": "request-disposition", "y": "identity", "n": "identity-info",
}

METHODS = frozenset({
    "INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "MESSAGE", "INFO",
    "NOTIFY", "SUBSCRIBE", "PRACK", "UPDATE", "REFER", "PUBLISH",
})
# First three bytes of every start line we parse: one set lookup rejects almost
# every non-SIP payload (RTP, TLS, DNS...) before anything else is done.
PREFIXES = frozenset(m[:3].encode() for m in METHODS) | {b"SIP"}

MAX_HEADER_BYTES = 16_384
MAX_BODY_BYTES = 65_536


@dataclass(slots=True, frozen=True)
class SipMessage:
    """One SIP request or response.

    ``method`` is the request method, or for a response the CSeq method it answers.
    ``headers`` maps lower-case full header names to the first value seen (compact
    forms already expanded); ``vias`` keeps the count of Via values for loop checks.
    """

    is_request: bool
    method: str
    uri: str
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def call_id(self) -> str:
        return self.headers.get("call-id", "")

    @property
    def cseq(self) -> tuple[int, str]:
        raw = self.headers.get("cseq", "")
        num, _, meth = raw.strip().partition(" ")
        try:
            return int(num), meth.strip().upper()
        except ValueError:
            return -1, meth.strip().upper()


@dataclass(slots=True, frozen=True)
class SipError:
    """Why bytes that looked like SIP could not be parsed."""

    reason: str


def looks_like_sip(payload: bytes) -> bool:
    """Cheap pre-check: does the payload start like a SIP start line?"""
    return payload[:3] in PREFIXES


def _find_header_end(buf: bytes, start: int = 0) -> tuple[int, int]:
    """(index of the blank line, its length) or (-1, 0) when headers are incomplete."""
    i = buf.find(b"\r\n\r\n", start)
    j = buf.find(b"\n\n", start)
    if i >= 0 and (j < 0 or i <= j):
        return i, 4
    if j >= 0:
        return j, 2
    return -1, 0


def parse_message(buf: bytes, *, stream: bool = False
                  ) -> tuple[SipMessage | SipError | None, int]:
    """Parse one SIP message from the front of ``buf``.

    Returns ``(message, used)``. ``(None, 0)`` means more bytes are needed (only when
    ``stream`` is true: over UDP a datagram is one message, so a missing blank line or
    a short body is an error). A :class:`SipError` comes with the number of bytes to
    skip (the whole buffer for datagrams). Over a stream, a missing Content-Length
    means an empty body (RFC 3261 18.3); over UDP the body is the rest of the datagram.
    """
    end, sep = _find_header_end(buf)
    if end < 0:
        if stream and len(buf) < MAX_HEADER_BYTES:
            return None, 0
        if not stream:
            # a datagram without a body may lack the final blank line
            end, sep = len(buf), 0
        else:
            return SipError("headers too long"), len(buf)
    if end > MAX_HEADER_BYTES:
        return SipError("headers too long"), (end + sep if stream else len(buf))
    try:
        head = buf[:end].decode("utf-8", "replace")
    except Exception:  # pragma: no cover - decode with "replace" does not raise
        return SipError("undecodable"), len(buf)
    lines = head.replace("\r\n", "\n").split("\n")
    start = lines[0].strip()
    parts = start.split(" ", 2)
    if len(parts) < 3:
        return SipError("bad start line"), (end + sep if stream else len(buf))
    is_request = parts[0] != "SIP/2.0"
    status = 0
    reason = ""
    uri = ""
    method = ""
    if is_request:
        method = parts[0].upper()
        if method not in METHODS or parts[2].strip().upper() != "SIP/2.0":
            return SipError("bad request line"), (end + sep if stream else len(buf))
        uri = parts[1]
    else:
        if not (len(parts[1]) == 3 and parts[1].isdigit()):
            return SipError("bad status code"), (end + sep if stream else len(buf))
        status = int(parts[1])
        reason = parts[2]
    headers: dict[str, str] = {}
    last = ""
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and last:  # folded continuation line
            headers[last] = headers[last] + " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue  # tolerate junk header lines, as deployed stacks do
        name = name.strip().lower()
        name = COMPACT.get(name, name)
        last = name
        if name not in headers:
            headers[name] = value.strip()
    body_start = end + sep
    cl_raw = headers.get("content-length")
    if cl_raw is not None:
        try:
            cl = int(cl_raw.split()[0]) if cl_raw.strip() else 0
        except ValueError:
            return SipError("bad content-length"), (body_start if stream else len(buf))
        if cl < 0 or cl > MAX_BODY_BYTES:
            return SipError("bad content-length"), (body_start if stream else len(buf))
        if len(buf) - body_start < cl:
            if stream:
                return None, 0
            return SipError("short body"), len(buf)
        body = buf[body_start:body_start + cl]
        used = body_start + cl
    elif stream:
        body, used = b"", body_start
    else:
        body, used = buf[body_start:], len(buf)
    if not is_request:
        _, method = _cseq_method(headers.get("cseq", ""))
    return SipMessage(is_request, method, uri, status, reason, headers, body), used


def _cseq_method(raw: str) -> tuple[str, str]:
    num, _, meth = raw.strip().partition(" ")
    return num, meth.strip().upper()


def _uri_body(value: str) -> str:
    """The URI inside a header value, scheme and (outside <>) parameters dropped."""
    lt = value.find("<")
    if lt >= 0:
        gt = value.find(">", lt)
        value = value[lt + 1:gt if gt > 0 else len(value)]
    else:
        value = value.split(";", 1)[0]
    colon = value.find(":")
    return value[colon + 1:] if colon >= 0 else value


def uri_user(value: str) -> str:
    """The user part of a SIP URI inside a header value or request URI ('' if none).

    ``"Bob" <sip:+8613800138000@example.com;user=phone>;tag=1`` -> ``+8613800138000``.
    """
    value = _uri_body(value)
    at = value.find("@")
    if at < 0:
        return ""
    return value[:at].split(";", 1)[0]


def uri_aor(value: str) -> str:
    """user@host of a URI inside a header value (parameters dropped)."""
    return _uri_body(value).split(";", 1)[0].split("?", 1)[0].lower()


def tag_of(value: str) -> str:
    i = value.find(";tag=")
    if i < 0:
        return ""
    return value[i + 5:].split(";", 1)[0].strip()


@dataclass(slots=True)
class SipStream:
    """Reassembles one direction of a TCP flow into SIP messages.

    Feed ``(seq, payload)`` in arrival order. Retransmitted bytes are trimmed; a gap
    (lost segment) drops the partial buffer and resynchronises at the next segment
    that starts with a SIP start line. Counters say what was dropped.
    """

    next_seq: int | None = None
    buf: bytearray = field(default_factory=bytearray)
    last_ts: float = 0.0
    gaps: int = 0
    errors: int = 0
    overflows: int = 0
    max_buffer: int = MAX_HEADER_BYTES + MAX_BODY_BYTES

    def feed(self, seq: int, payload: bytes) -> list[SipMessage]:
        """Add one segment; return the messages it completed."""
        if not payload:
            return []
        if self.next_seq is None:
            self.next_seq = seq
        delta = (seq - self.next_seq) & 0xFFFFFFFF
        start = seq
        if delta >= 0x80000000:  # segment starts before what we have: retransmission
            overlap = (self.next_seq - seq) & 0xFFFFFFFF
            if overlap >= len(payload):
                return []
            payload = payload[overlap:]
            start = self.next_seq
        elif delta:  # a gap: the bytes in between are lost
            self.gaps += 1
            self.buf.clear()
            if not self._resync(payload):
                self.next_seq = (seq + len(payload)) & 0xFFFFFFFF
                return []
        self.next_seq = (start + len(payload)) & 0xFFFFFFFF
        self.buf += payload
        return self._drain()

    def _resync(self, payload: bytes) -> bool:
        """After a gap: can parsing start again at this segment?"""
        return looks_like_sip(payload)

    def _drain(self) -> list[SipMessage]:
        """Every complete message at the front of the buffer, taken out of it."""
        out: list[SipMessage] = []
        while self.buf:
            # skip keepalive CRLFs (RFC 5626) and resync on garbage
            while self.buf[:2] == b"\r\n":
                del self.buf[:2]
            if not self.buf:
                break
            if not looks_like_sip(bytes(self.buf[:3])):
                self.errors += 1
                self.buf.clear()
                break
            msg, used = parse_message(bytes(self.buf), stream=True)
            if msg is None:
                if len(self.buf) > self.max_buffer:
                    self.overflows += 1
                    self.buf.clear()
                break
            del self.buf[:used]
            if isinstance(msg, SipError):
                self.errors += 1
                continue
            out.append(msg)
        return out
