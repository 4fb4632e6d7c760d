"""The device end of a TCP link (a serial-to-Ethernet converter in front of the
firmware): listens, takes one connection at a time, and offers the Transport
read/write API to the simulated firmware. ``read`` gives b"" while nobody is
connected; a new connection replaces a dropped one."""

from __future__ import annotations

import select
import socket


class TcpDeviceEnd:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._srv = socket.create_server((host, port))
        self._srv.setblocking(False)
        self.port = int(self._srv.getsockname()[1])
        self.name = f"tcp-device:{self.port}"
        self._conn: socket.socket | None = None
        self.accepted = 0

    def _accept(self, timeout: float) -> bool:
        ready, _, _ = select.select([self._srv], [], [], timeout)
        if not ready:
            return False
        try:
            conn, _ = self._srv.accept()
        except BlockingIOError:
            return False
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._conn is not None:
            self._conn.close()
        self._conn = conn
        self.accepted += 1
        return True

    def read(self, max_bytes: int, timeout: float) -> bytes:
        if self._conn is None and not self._accept(timeout):
            return b""
        assert self._conn is not None
        ready, _, _ = select.select([self._conn, self._srv], [], [], timeout)
        if self._srv in ready:
            self._accept(0)
            return b""
        if not ready:
            return b""
        try:
            data = self._conn.recv(max_bytes)
        except OSError:
            data = b""
        if not data:  # the agent went away: wait for the next connection
            self._conn.close()
            self._conn = None
        return data

    def write(self, data: bytes) -> None:
        if self._conn is None:
            return  # nobody listening: the bytes are lost, as on an unplugged line
        try:
            self._conn.sendall(data)
        except OSError:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._srv.close()
