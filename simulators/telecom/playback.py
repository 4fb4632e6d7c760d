"""Playing a capture live onto an interface (normally ``lo``) with scapy's L2 socket.

Frames go out as recorded, paced by their timestamps divided by ``speed`` (0 sends
as fast as possible). Ethernet captures are sent as they are; raw-IP captures get
a zero Ethernet header (what ``lo`` carries); other link types are skipped and
counted. Needs root (a raw packet socket).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from drivers.capture.decode import LINKTYPE_ETHERNET, RAW_LINKTYPES
from drivers.capture.pcapio import open_records

_ZERO_ETH4 = bytes(12) + b"\x08\x00"
_ZERO_ETH6 = bytes(12) + b"\x86\xdd"


@dataclass(slots=True)
class PlayStats:
    sent: int = 0
    skipped: int = 0
    errors: int = 0
    elapsed_s: float = 0.0


def play_pcap(path: Path, *, iface: str = "lo", speed: float = 1.0,
              max_packets: int | None = None, stop: threading.Event | None = None
              ) -> PlayStats:
    """Send every frame of ``path`` on ``iface``; returns what was sent."""
    from scapy.arch.linux import L2Socket

    st = PlayStats()
    scapy_log = logging.getLogger("scapy.runtime")
    level = scapy_log.level
    scapy_log.setLevel(logging.ERROR)  # "unable to guess type" on lo: we send raw bytes
    try:
        sock = L2Socket(iface=iface)
    finally:
        scapy_log.setLevel(level)
    t_start = time.monotonic()
    ts0: float | None = None
    try:
        with open(path, "rb") as fh:
            for blk in open_records(fh, str(path)):
                for o, c, ts, lt in zip(blk.off.tolist(), blk.caplen.tolist(),
                                        blk.ts.tolist(), blk.linktype.tolist(), strict=True):
                    if stop is not None and stop.is_set():
                        return st
                    if max_packets is not None and st.sent >= max_packets:
                        return st
                    frame = blk.data[o:o + c]
                    if lt in RAW_LINKTYPES and frame:
                        frame = (_ZERO_ETH6 if frame[0] >> 4 == 6 else _ZERO_ETH4) + frame
                    elif lt != LINKTYPE_ETHERNET:
                        st.skipped += 1
                        continue
                    if speed > 0:
                        if ts0 is None:
                            ts0 = ts
                        delay = (ts - ts0) / speed - (time.monotonic() - t_start)
                        if delay > 0:
                            time.sleep(delay)
                    try:
                        sock.outs.send(frame)  # scapy's PF_PACKET socket, raw bytes
                        st.sent += 1
                    except OSError:
                        st.errors += 1
    finally:
        sock.close()
        st.elapsed_s = time.monotonic() - t_start
    return st
