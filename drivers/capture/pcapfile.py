"""Reading pcap and pcapng files as raw frames (no dissection: decoding is elsewhere)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

from edge.errors import InputError
from edge.records import Frame, Malformed
from edge.timeguard import MAX_EPOCH


class PcapFileSource:
    """Yields :class:`Frame` records from a pcap or pcapng file, via scapy's raw readers.

    A truncated or corrupt file ends with a :class:`Malformed` record naming the frame
    number; frames read before the damage are kept.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"pcap:{path.name}"
        self.frames = 0
        self.errors = 0

    def __iter__(self) -> Iterator[Frame | Malformed]:
        from scapy.error import Scapy_Exception
        from scapy.utils import RawPcapReader

        try:
            reader = RawPcapReader(str(self.path))
        except (Scapy_Exception, OSError, EOFError) as exc:
            raise InputError(f"not a pcap/pcapng file: {exc}", source=str(self.path)) from None
        linktype = getattr(reader, "linktype", 1)
        div = 1e9 if getattr(reader, "nano", False) else 1e6
        idx = 0
        with reader:
            it = iter(reader)
            while True:
                try:
                    data, meta = next(it)
                except StopIteration:
                    break
                except (Scapy_Exception, ValueError, OSError, struct.error) as exc:
                    self.errors += 1
                    yield Malformed(self.name, f"frame {idx + 1}", f"unreadable record: {exc}")
                    break
                idx += 1
                lt = getattr(meta, "linktype", None) or linktype
                if hasattr(meta, "sec"):
                    ts = meta.sec + meta.usec / div
                else:  # pcapng: tshigh/tslow in tsresol units
                    hi, lo = getattr(meta, "tshigh", 0), getattr(meta, "tslow", 0)
                    ts = ((hi << 32) | lo) / float(getattr(meta, "tsresol", 1_000_000))
                if not 0.0 <= ts < MAX_EPOCH:  # e.g. pcapng, 1 s resolution, 2**64 s
                    self.errors += 1
                    yield Malformed(self.name, f"frame {idx}", f"packet time {ts:.6g} is "
                                    "impossible")
                    continue
                self.frames += 1
                yield Frame(ts, lt, bytes(data), idx, self.name)

    def close(self) -> None:
        pass


    def counters(self) -> dict[str, int | float]:
        return {"frames": self.frames, "errors": self.errors}
