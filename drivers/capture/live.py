"""Live capture from an interface with scapy's PF_PACKET socket (``edge-agent run``).

A capture thread reads frames (BPF filter from the config, applied in the kernel)
into a bounded queue; when the queue is full the frame is dropped and counted, so a
slow pipeline never makes the capture block or grow without bound. Iterating the
source decodes frames with the same :class:`~drivers.capture.decode.FrameDecoder`
as replay (so the same records come out), closing RTP batches on wall-clock time
when traffic is quiet. ``close()`` stops the thread and makes iteration end after
the frames already queued (and the open RTP batches) are handed out. Needs root.
"""

from __future__ import annotations

import logging
import queue
import select
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from drivers.capture.decode import LINKTYPE_ETHERNET, LINKTYPE_RAW, FrameDecoder
from edge.config import CaptureInput
from edge.errors import ConfigError

log = logging.getLogger(__name__)

SOL_PACKET = 263
PACKET_STATISTICS = 6
ARPHRD_NONE = 65534
ARPHRD_LOOPBACK = 772
SO_RCVBUFFORCE = 33


def interface_linktype(iface: str) -> int:
    """The pcap link type PF_PACKET frames of ``iface`` carry (Ethernet unless raw IP)."""
    try:
        arphrd = int(Path(f"/sys/class/net/{iface}/type").read_text().strip())
    except (OSError, ValueError):
        return LINKTYPE_ETHERNET
    return LINKTYPE_RAW if arphrd in (ARPHRD_NONE, 512, 776, 778, 823) else LINKTYPE_ETHERNET


def is_loopback(iface: str) -> bool:
    try:
        return int(Path(f"/sys/class/net/{iface}/type").read_text().strip()) == ARPHRD_LOOPBACK
    except (OSError, ValueError):
        return iface == "lo"


class LiveCaptureSource:
    """Frames from one interface, decoded; the Source API (iterate, counters, close)."""

    def __init__(self, iface: str, *, bpf: str | None = "udp or tcp", queue_size: int = 100_000,
                 snaplen: int = 65_535, idle_flush_s: float = 0.5,
                 rcvbuf: int = 32 << 20) -> None:
        from scapy.arch.linux import L2ListenSocket
        from scapy.error import Scapy_Exception

        self.iface = iface
        self.name = f"capture:{iface}"
        self.snaplen = snaplen
        self.idle_flush_s = idle_flush_s
        self.linktype = interface_linktype(iface)
        self.loopback = is_loopback(iface)
        self.decoder = FrameDecoder(self.name)
        self._q: queue.Queue[tuple[float, bytes]] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self.captured = 0
        self.dropped = 0
        self.read_errors = 0
        self._kernel = (0, 0)
        scapy_log = logging.getLogger("scapy.runtime")
        level = scapy_log.level
        scapy_log.setLevel(logging.ERROR)  # "unable to guess type" on lo: we decode ourselves
        try:
            self._sock = L2ListenSocket(iface=iface, filter=bpf or None)
        except (OSError, ValueError, Scapy_Exception) as exc:
            raise ConfigError(f"cannot capture on {iface!r} with filter {bpf!r}: {exc}",
                              key="inputs.capture.interface") from None
        finally:
            scapy_log.setLevel(level)
        try:  # a deep kernel buffer absorbs bursts while Python catches up (root: FORCE)
            self._sock.ins.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except OSError:
            self._sock.ins.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self._sock.ins.setblocking(False)
        self._thread = threading.Thread(target=self._capture, name=f"capture-{iface}",
                                        daemon=True)
        self._thread.start()

    # -- capture thread
    def _capture(self) -> None:
        sock = self._sock
        fd = sock.ins
        put = self._q.put_nowait
        try:
            while not self._stop.is_set():
                try:
                    ready, _, _ = select.select([fd], [], [], 0.2)
                except (OSError, ValueError):
                    break
                if not ready:
                    continue
                while True:  # drain everything the kernel holds, then select again
                    try:
                        # scapy's lower-level read: it also returns the sockaddr_ll,
                        # whose packet type tells lo's outgoing copies apart
                        data, sa_ll, ts = sock._recv_raw(fd, self.snaplen)
                    except BlockingIOError:
                        break
                    except OSError:
                        self.read_errors += 1
                        break
                    if not data:
                        continue
                    # lo shows every frame twice (out and in); keep the incoming copy
                    if self.loopback and sa_ll[2] == socket.PACKET_OUTGOING:
                        continue
                    self.captured += 1
                    try:
                        put((ts or time.time(), data))
                    except queue.Full:
                        self.dropped += 1
        finally:
            self._read_kernel_stats()

    def _read_kernel_stats(self) -> None:
        try:
            raw = self._sock.ins.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
            pk, dr = struct.unpack("II", raw)
            self._kernel = (self._kernel[0] + pk, self._kernel[1] + dr)
        except (OSError, AttributeError, struct.error):
            pass

    # -- consumer side
    def __iter__(self) -> Iterator[Any]:
        dec = self.decoder
        get = self._q.get
        idx = 0
        last_ts: float | None = None
        last_wall = time.monotonic()
        out: list[Any] = []
        while not (self._stop.is_set() and self._q.empty()):
            try:
                ts, data = get(timeout=self.idle_flush_s)
            except queue.Empty:
                if last_ts is not None:  # quiet: close RTP seconds on wall-clock time
                    dec.sweep(last_ts + (time.monotonic() - last_wall), out)
                    if out:
                        yield from out
                        out.clear()
                continue
            idx += 1
            last_ts, last_wall = ts, time.monotonic()
            dec.decode(ts, self.linktype, data, idx, out)
            if out:
                yield from out
                out.clear()
        dec.flush(out)
        yield from out

    def close(self) -> None:
        """Stop capturing; iteration ends once the queued frames are decoded."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=2.0)
        try:
            self._sock.close()
        except OSError:
            pass

    def counters(self) -> dict[str, int | float]:
        c: dict[str, int | float] = {"captured": self.captured, "queue_drops": self.dropped,
                                     "queued": self._q.qsize(), "read_errors": self.read_errors,
                                     "kernel_drops": self._kernel[1]}
        c.update(self.decoder.counters())
        return c


def open_live_source(cfg: CaptureInput) -> LiveCaptureSource:
    """The live source for ``[inputs.capture]`` (interface, bpf, queue_size, snaplen)."""
    if not cfg.interface:
        raise ConfigError("no capture interface configured", key="inputs.capture.interface")
    return LiveCaptureSource(cfg.interface, bpf=cfg.bpf, queue_size=cfg.queue_size,
                             snaplen=cfg.snaplen)
