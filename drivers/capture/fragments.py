"""IP fragment reassembly (IPv4 and IPv6) with a bounded table and idle eviction.

Sans-IO: fragments (bytes plus event time) in, a whole L4 payload out once every
piece is there. The table holds at most ``max_datagrams`` partial datagrams and
``max_bytes`` buffered bytes; the oldest partial datagram is dropped (and counted)
when either limit is hit, and ``sweep(now)`` drops those idle longer than
``timeout_s``. Overlapping pieces are accepted first-come (the later copy of a byte
range is ignored), which is what Linux does for non-malicious overlaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_DATAGRAM = 65535 + 40  # IPv6 jumbograms are not reassembled


@dataclass(slots=True)
class _Partial:
    first_ts: float
    last_ts: float
    pieces: dict[int, bytes] = field(default_factory=dict)  # offset -> data
    total: int = -1  # known once the last fragment (MF=0) arrived
    size: int = 0


class Reassembler:
    """Collects fragments keyed by (version, src, dst, proto, id)."""

    def __init__(self, *, max_datagrams: int = 4096, max_bytes: int = 32 << 20,
                 timeout_s: float = 30.0) -> None:
        self.max_datagrams = max_datagrams
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self._table: dict[tuple[object, ...], _Partial] = {}
        self._bytes = 0
        self.fragments = 0
        self.reassembled = 0
        self.evicted_full = 0
        self.evicted_idle = 0
        self.invalid = 0

    def __len__(self) -> int:
        return len(self._table)

    def add(self, key: tuple[object, ...], ts: float, offset: int, more: bool,
            data: bytes) -> bytes | None:
        """Add one fragment (``offset`` in bytes). Returns the whole payload when complete."""
        self.fragments += 1
        end = offset + len(data)
        if end > MAX_DATAGRAM or (more and len(data) % 8) or (not data and more):
            self.invalid += 1
            return None
        part = self._table.get(key)
        if part is None:
            while self._table and (len(self._table) >= self.max_datagrams
                                   or self._bytes + len(data) > self.max_bytes):
                self._drop(next(iter(self._table)))
                self.evicted_full += 1
            part = self._table[key] = _Partial(ts, ts)
        else:
            part.last_ts = ts
        if not more:
            if part.total not in (-1, end):
                self.invalid += 1
                self._drop(key)
                return None
            part.total = end
        if offset not in part.pieces:
            part.pieces[offset] = data
            part.size += len(data)
            self._bytes += len(data)
        if part.total < 0:
            return None
        # complete when the pieces tile [0, total) without a hole
        pos = 0
        chunks: list[bytes] = []
        for off in sorted(part.pieces):
            piece = part.pieces[off]
            if off > pos:
                return None
            if off + len(piece) > pos:
                chunks.append(piece[pos - off:])
                pos = off + len(piece)
        if pos < part.total:
            return None
        self._drop(key)
        self.reassembled += 1
        return b"".join(chunks)[: part.total]

    def sweep(self, now: float) -> int:
        """Drop partial datagrams idle for more than ``timeout_s``; returns how many."""
        limit = now - self.timeout_s
        stale = [k for k, p in self._table.items() if p.last_ts < limit]
        for k in stale:
            self._drop(k)
        self.evicted_idle += len(stale)
        return len(stale)

    def _drop(self, key: tuple[object, ...]) -> None:
        part = self._table.pop(key)
        self._bytes -= part.size

    def counters(self) -> dict[str, int]:
        return {"fragments": self.fragments, "reassembled": self.reassembled,
                "frag_evicted_full": self.evicted_full, "frag_evicted_idle": self.evicted_idle,
                "frag_invalid": self.invalid, "frag_pending": len(self._table)}
