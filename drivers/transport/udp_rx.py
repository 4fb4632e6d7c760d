"""A bound UDP socket for live inputs that never loses silently.

IPv4 or IPv6 (``::`` listens dual-stack), a receive buffer of the asked size (root
may exceed ``net.core.rmem_max``; a smaller buffer is logged), and the kernel's count
of datagrams it dropped because the buffer was full, read from ``SO_RXQ_OVFL`` on
every datagram (Linux), logged and kept in ``kernel_drops``. Used by the event and
HEP listeners.
"""

from __future__ import annotations

import logging
import socket
import struct

log = logging.getLogger(__name__)

SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)  # Linux value; Python may not name it
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


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
            return None
        for level, kind, raw in cmsgs:
            if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(raw) >= 4:
                total = struct.unpack("I", raw[:4])[0]  # cumulative for the socket
                if total > self.kernel_drops:
                    log.warning("%s: the kernel dropped %d datagrams (receive buffer full; "
                                "%d in total)", self.name, total - self.kernel_drops, total)
                    self.kernel_drops = total
        return data, addr

    def close(self) -> None:
        self.sock.close()
