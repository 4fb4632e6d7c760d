"""Just enough DHCP and DNS to read device fingerprints, sans-IO.

:func:`parse_dhcp` returns the client hardware address, message type, vendor class
(option 60), requested address (option 50) and the address the server assigned;
:func:`dns_query_name` returns the first question name of a DNS query. Both return
``None`` on anything malformed instead of raising.
"""

from __future__ import annotations

from dataclasses import dataclass

DHCP_MAGIC = b"\x63\x82\x53\x63"


@dataclass(slots=True, frozen=True)
class Dhcp:
    op: int  # 1 request (client), 2 reply (server)
    msg_type: int  # option 53: 1 discover, 2 offer, 3 request, 5 ack...
    chaddr: bytes
    yiaddr: str
    ciaddr: str
    vendor_class: bytes
    requested: str


def _ip4(b: bytes) -> str:
    return f"{b[0]}.{b[1]}.{b[2]}.{b[3]}"


def parse_dhcp(p: bytes) -> Dhcp | None:
    """Parse a BOOTP/DHCP payload (UDP 67/68); ``None`` if it is not DHCP."""
    if len(p) < 240 or p[236:240] != DHCP_MAGIC or p[0] not in (1, 2):
        return None
    hlen = min(p[2], 16)
    chaddr = p[28:28 + hlen]
    msg_type = 0
    vendor = b""
    requested = ""
    i = 240
    n = len(p)
    while i < n:
        code = p[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        if i + 1 >= n:
            return None
        ln = p[i + 1]
        val = p[i + 2:i + 2 + ln]
        if len(val) < ln:
            return None
        if code == 53 and ln >= 1:
            msg_type = val[0]
        elif code == 60:
            vendor = val
        elif code == 50 and ln == 4:
            requested = _ip4(val)
        i += 2 + ln
    return Dhcp(p[0], msg_type, chaddr, _ip4(p[16:20]), _ip4(p[12:16]), vendor, requested)


def dns_query_name(p: bytes) -> str | None:
    """First QNAME of a DNS query (QR=0, QDCOUNT>=1), lower-case, or ``None``."""
    if len(p) < 17 or p[2] & 0x80 or not (p[4] or p[5]):
        return None
    labels: list[str] = []
    i = 12
    n = len(p)
    while i < n:
        ln = p[i]
        if ln == 0:
            return ".".join(labels).lower()
        if ln & 0xC0 or i + 1 + ln > n or len(labels) > 64:
            return None  # compression pointers do not occur in a question's first name
        labels.append(p[i + 1:i + 1 + ln].decode("ascii", "replace"))
        i += 1 + ln
    return None
