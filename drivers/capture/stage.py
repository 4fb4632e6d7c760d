"""A pipeline Stage turning raw ``Frame`` records into ``Packet`` / ``RtpBatch`` records.

For sources that hand over undecoded frames (the scapy-based ``PcapFileSource``, or
an embedding application's own capture): one :class:`FrameDecoder` per source, so
fragment and RTP state never mixes between captures. The fast file source and the
live source decode themselves and do not need this stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from drivers.capture.decode import FrameDecoder
from edge.records import Frame


class FrameDecoderStage:
    name = "capture.decoder"
    consumes: tuple[type, ...] = (Frame,)

    def __init__(self, *, max_sources: int = 64) -> None:
        self.max_sources = max_sources
        self._decoders: dict[str, FrameDecoder] = {}

    def _decoder(self, source: str) -> FrameDecoder:
        dec = self._decoders.get(source)
        if dec is None:
            if len(self._decoders) >= self.max_sources:
                self._decoders.pop(next(iter(self._decoders)))
            dec = self._decoders[source] = FrameDecoder(source)
        return dec

    def feed(self, item: Frame) -> Sequence[Any]:
        out: list[Any] = []
        self._decoder(item.source).decode(item.ts, item.linktype, item.data, item.index, out)
        return out

    def tick(self, now: float) -> Sequence[Any]:
        out: list[Any] = []
        for dec in self._decoders.values():
            dec.sweep(now, out)
        return out

    def flush(self, now: float) -> Sequence[Any]:
        out: list[Any] = []
        for dec in self._decoders.values():
            dec.flush(out)
        return out

    def counters(self) -> dict[str, int | float]:
        total: dict[str, int | float] = {}
        for dec in self._decoders.values():
            for k, v in dec.counters().items():
                total[k] = total.get(k, 0) + v
        return total

