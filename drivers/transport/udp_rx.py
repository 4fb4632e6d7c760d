"""A bound UDP socket for live inputs that never loses silently.

IPv4 or IPv6 (``::`` listens dual-stack), a receive buffer of the asked size (root
may exceed ``net.core.rmem_max``; a smaller buffer is logged), and the kernel's count
of datagrams it dropped because the buffer was full, read from ``SO_RXQ_OVFL`` on
every datagram (Linux), logged and kept in ``kernel_drops``. Used by the event and
HEP listeners.

``SO_RXQ_OVFL`` rides on a datagram that is received: drops at the end of a burst,
with nothing after them, would never be seen. So when the socket is idle (a receive
timed out) the same counter is also read from ``/proc/net/udp`` (``udp6``), the
socket found by its inode, at most once per :data:`IDLE_POLL_S`.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import time

log = logging.getLogger(__name__)

SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)  # Linux value; Python may not name it
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
#: how often an idle socket's drop count is read from /proc
IDLE_POLL_S = 1.0


def proc_drops(inode: int, family: int) -> int | None:
    """The kernel's drop count of the UDP socket with ``inode`` (``/proc/net/udp``,
    last column), or None where it cannot be read (not Linux, not found)."""
    name = "/proc/self/net/udp6" if family == socket.AF_INET6 else "/proc/self/net/udp"
    want = str(inode)
    try:
        with open(name, "rb") as fh:
            next(fh, None)  # the header
            for line in fh:
                f = line.split()
                if len(f) >= 13 and f[9].decode() == want:
                    return int(f[-1])
    except (OSError, ValueError):
        return None
    return None


class UdpReceiver:
    def __init__(self, name: str, host: str, port: int, *, rcvbuf: int = 0,
                 timeout_s: float = 0.5) -> None:
        self.name = name
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            if fam == socket.AF_INET6 and host == "::":
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            self.rcvbuf = self._set_rcvbuf(rcvbuf) if rcvbuf else \
                int(self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
                self._anc = socket.CMSG_SPACE(4)
            except OSError:  # not Linux: drops cannot be read from the socket
                self._anc = 0
                log.warning("%s: SO_RXQ_OVFL unavailable; kernel drops are not counted",
                            name)
            self.sock.bind((host, port))
        except OSError:
            self.sock.close()
            raise
        self.sock.settimeout(timeout_s)
        self.kernel_drops = 0
        self._family = fam
        self._inode = os.fstat(self.sock.fileno()).st_ino
        self._next_poll = 0.0

    def _set_rcvbuf(self, want: int) -> int:
        try:  # root (CAP_NET_ADMIN) may exceed net.core.rmem_max
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, want)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, want)
        got = int(self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
        if got < want:  # Linux reports twice the usable size, so this is a real cap
            log.warning("%s: receive buffer is %d bytes, %d asked for (raise "
                        "net.core.rmem_max)", self.name, got, want)
        return got

    @property
    def address(self) -> tuple[str, int]:
        return self.sock.getsockname()[:2]  # type: ignore[no-any-return]

    def recv(self, max_bytes: int = 65535) -> tuple[bytes, tuple[str, int]] | None:
        """(datagram, sender) or None on timeout; OSError once the socket is closed."""
        try:
            data, cmsgs, _flags, addr = self.sock.recvmsg(max_bytes, self._anc)
        except TimeoutError:
            self.poll_drops()
            return None
        for level, kind, raw in cmsgs:
            if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(raw) >= 4:
                self._dropped(struct.unpack("I", raw[:4])[0])  # cumulative for the socket
        return data, addr

    def poll_drops(self, *, force: bool = False) -> None:
        """Read the drop count from /proc (idle turns, at most every IDLE_POLL_S)."""
        now = time.monotonic()
        if not force and now < self._next_poll:
            return
        self._next_poll = now + IDLE_POLL_S
        total = proc_drops(self._inode, self._family)
        if total is not None:
            self._dropped(total)

    def _dropped(self, total: int) -> None:
        if total > self.kernel_drops:
            log.warning("%s: the kernel dropped %d datagrams (receive buffer full; "
                        "%d in total)", self.name, total - self.kernel_drops, total)
            self.kernel_drops = total

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.poll_drops(force=True)  # the last word on what was lost
        self.sock.close()
