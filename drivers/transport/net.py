"""TCP and UDP transports (serial-to-Ethernet converters, controllers on the LAN).

:class:`TcpTransport` connects to ``host:port`` (a peer closing the connection is a
TransportError: reconnect). :class:`UdpTransport` sends to ``remote`` and/or receives
on ``bind``; each ``read`` returns one datagram (truncated to ``max_bytes``).
"""

from __future__ import annotations

import socket

from drivers.transport.base import TransportCounters
from edge.errors import TransportError


def parse_hostport(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise TransportError(f"expected host:port, got {text!r}", transport=text)
    return (host.strip("[]") or default_host), int(port)


class _SocketTransport:
    """What both socket transports share: the socket slot, byte accounting, close."""

    name: str
    _sock: socket.socket | None
    stats: TransportCounters

    def _s(self) -> socket.socket:
        if self._sock is None:
            raise TransportError("not open", transport=self.name)
        return self._sock

    def _count_read(self, data: bytes) -> bytes:
        self.stats.reads += 1
        self.stats.bytes_in += len(data)
        return data

    def _count_write(self, n: int) -> None:
        self.stats.writes += 1
        self.stats.bytes_out += n

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def counters(self) -> dict[str, int | float]:
        return self.stats.as_dict()


class TcpTransport(_SocketTransport):
    def __init__(self, host: str, port: int, *, connect_timeout_s: float = 5.0,
                 name: str | None = None) -> None:
        self.host, self.port = host, port
        self.connect_timeout_s = connect_timeout_s
        self.name = name or f"tcp:{host}:{port}"
        self._sock: socket.socket | None = None
        self.stats = TransportCounters()

    def open(self) -> None:
        self.close()
        try:
            sock = socket.create_connection((self.host, self.port), self.connect_timeout_s)
        except OSError as exc:
            raise TransportError(f"cannot connect: {exc}", transport=self.name) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self.stats.opens += 1

    def read(self, max_bytes: int, timeout: float) -> bytes:
        s = self._s()
        try:
            s.settimeout(timeout)
            data = s.recv(max_bytes)
        except TimeoutError:
            return b""
        except OSError as exc:
            raise TransportError(f"read failed: {exc}", transport=self.name) from None
        if not data:
            raise TransportError("connection closed by the peer", transport=self.name)
        return self._count_read(data)

    def write(self, data: bytes) -> None:
        s = self._s()
        try:
            s.settimeout(self.connect_timeout_s)
            s.sendall(data)
        except OSError as exc:
            raise TransportError(f"write failed: {exc}", transport=self.name) from None
        self._count_write(len(data))


class UdpTransport(_SocketTransport):
    def __init__(self, *, remote: tuple[str, int] | None = None,
                 bind: tuple[str, int] | None = None, name: str | None = None) -> None:
        if remote is None and bind is None:
            raise TransportError("UDP needs a remote address, a bind address or both")
        self.remote, self.bind = remote, bind
        where = remote or bind
        assert where is not None
        self.name = name or f"udp:{where[0]}:{where[1]}"
        self._sock: socket.socket | None = None
        self.last_peer: tuple[str, int] | None = None
        self.stats = TransportCounters()

    def open(self) -> None:
        self.close()
        host = (self.remote or self.bind or ("", 0))[0]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            # bursts of small datagrams (a scanner's reads) overflow the default buffer
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            if self.bind is not None:
                sock.bind(self.bind)
        except OSError as exc:
            raise TransportError(f"cannot bind: {exc}", transport=self.name) from None
        self._sock = sock
        self.stats.opens += 1

    @property
    def local_address(self) -> tuple[str, int]:
        """Where datagrams to this transport go (after ``open``; port 0 binds pick one)."""
        addr = self._s().getsockname()
        return str(addr[0]), int(addr[1])

    def read(self, max_bytes: int, timeout: float) -> bytes:
        s = self._s()
        try:
            s.settimeout(timeout)
            data, peer = s.recvfrom(max(max_bytes, 1))
        except TimeoutError:
            return b""
        except OSError as exc:
            raise TransportError(f"read failed: {exc}", transport=self.name) from None
        self.last_peer = (str(peer[0]), int(peer[1]))
        return self._count_read(data)

    def write(self, data: bytes) -> None:
        to = self.remote or self.last_peer
        if to is None:
            raise TransportError("no remote address to send to yet", transport=self.name)
        try:
            self._s().sendto(data, to)
        except OSError as exc:
            raise TransportError(f"write failed: {exc}", transport=self.name) from None
        self._count_write(len(data))
