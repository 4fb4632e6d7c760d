"""RTP media classification and per-flow aggregation into ``RtpBatch`` records.

Sans-IO: RTP packets (or partial aggregates computed over numpy batches) plus event
time in, :class:`~edge.records.RtpBatch` records out. A batch covers one flow
(addresses, ports, SSRC, TEID) inside one aligned one-second bucket; it is emitted
when the flow's next packet falls into a later bucket, when ``sweep(now)`` finds the
bucket closed, or on ``flush()``. The flow table is bounded (oldest flow dropped and
counted) and idle flows are evicted by ``sweep``.
"""

from __future__ import annotations

from edge.records import RtpBatch

# Signalling / GoIP service ports never treated as media even if a payload starts 0x80.
NOT_MEDIA_PORTS = frozenset({2152, 5060, 5061, 1920, 39800, 44444, 56000})
RTP_CLOCK_HZ = 8000.0

FlowKey = tuple[str, str, int, int, int, "int | None"]


def looks_like_rtp(payload: bytes, sport: int, dport: int) -> bool:
    """Cheap RTP test for a UDP payload: version 2, not RTCP, ephemeral non-service ports."""
    if len(payload) < 12 or payload[0] & 0xC0 != 0x80:
        return False
    if 72 <= (payload[1] & 0x7F) <= 76:  # RTCP SR/RR/SDES/BYE/APP
        return False
    return (sport >= 1024 and dport >= 1024 and sport not in NOT_MEDIA_PORTS
            and dport not in NOT_MEDIA_PORTS)


class _Flow:
    __slots__ = ("bucket", "first_ts", "last_ts", "pt", "packets", "bytes", "seq_first",
                 "seq_last", "lost", "jit_sum", "pairs", "max_gap", "last_rtp_ts", "frame",
                 "has_prev")

    def __init__(self) -> None:
        self.bucket = 0
        self.first_ts = 0.0
        self.last_ts = 0.0
        self.pt = 0
        self.packets = 0  # packets in the open batch (0: no open batch)
        self.bytes = 0
        self.seq_first = 0
        self.seq_last = 0
        self.lost = 0
        self.jit_sum = 0.0
        self.pairs = 0
        self.max_gap = 0.0
        self.last_rtp_ts = 0
        self.frame = 0
        self.has_prev = False  # seq_last/last_ts/last_rtp_ts carry over between batches


def _seq_gap(prev: int, seq: int) -> int:
    """Missing sequence numbers between two packets (0 for in-order, duplicates, reorder)."""
    d = (seq - prev) & 0xFFFF
    return d - 1 if 1 < d < 0x8000 else 0


class RtpAggregator:
    """Per-flow RTP accumulation; every method returns the batches it closed."""

    def __init__(self, source: str = "", *, max_flows: int = 200_000,
                 idle_s: float = 60.0) -> None:
        self.source = source
        self.max_flows = max_flows
        self.idle_s = idle_s
        self._flows: dict[FlowKey, _Flow] = {}
        self.packets = 0
        self.batches = 0
        self.evicted_full = 0
        self.evicted_idle = 0

    def __len__(self) -> int:
        return len(self._flows)

    def _get(self, key: FlowKey, out: list[RtpBatch]) -> _Flow:
        st = self._flows.get(key)
        if st is None:
            if len(self._flows) >= self.max_flows:
                old = next(iter(self._flows))
                ost = self._flows.pop(old)
                if ost.packets:
                    out.append(self._batch(old, ost))
                self.evicted_full += 1
            st = self._flows[key] = _Flow()
        return st

    def add(self, key: FlowKey, ts: float, payload: bytes, frame: int,
            out: list[RtpBatch]) -> None:
        """Account one RTP packet (``payload`` is the UDP payload, already classified)."""
        self.packets += 1
        st = self._get(key, out)
        bucket = int(ts)
        seq = (payload[2] << 8) | payload[3]
        rtp_ts = int.from_bytes(payload[4:8], "big")
        if st.packets and st.bucket != bucket:
            out.append(self._batch(key, st))
        if st.packets == 0:
            st.bucket = bucket
            st.first_ts = ts
            st.pt = payload[1] & 0x7F
            st.seq_first = seq
            st.lost = _seq_gap(st.seq_last, seq) if st.has_prev else 0
            st.bytes = 0
            st.jit_sum = 0.0
            st.pairs = 0
            st.max_gap = 0.0
        else:
            st.lost += _seq_gap(st.seq_last, seq)
            gap = ts - st.last_ts
            if gap > st.max_gap:
                st.max_gap = gap
            drtp = (rtp_ts - st.last_rtp_ts) & 0xFFFFFFFF
            if drtp >= 0x80000000:
                drtp -= 0x100000000
            st.jit_sum += abs(gap - drtp / RTP_CLOCK_HZ)
            st.pairs += 1
        st.packets += 1
        st.bytes += len(payload)
        st.seq_last = seq
        st.last_ts = ts
        st.last_rtp_ts = rtp_ts
        st.frame = frame
        st.has_prev = True

    def merge(self, key: FlowKey, bucket: int, first_ts: float, last_ts: float, pt: int,
              packets: int, nbytes: int, seq_first: int, seq_last: int, lost: int,
              jit_sum: float, pairs: int, max_gap: float, first_rtp_ts: int, last_rtp_ts: int,
              frame: int, out: list[RtpBatch]) -> None:
        """Account a partial aggregate of consecutive packets of one flow in one bucket."""
        self.packets += packets
        st = self._get(key, out)
        if st.packets and st.bucket != bucket:
            out.append(self._batch(key, st))
        if st.packets == 0:
            st.bucket = bucket
            st.first_ts = first_ts
            st.pt = pt
            st.seq_first = seq_first
            st.lost = (_seq_gap(st.seq_last, seq_first) if st.has_prev else 0) + lost
            st.bytes = nbytes
            st.jit_sum = jit_sum
            st.pairs = pairs
            st.max_gap = max_gap
        else:
            st.lost += _seq_gap(st.seq_last, seq_first) + lost
            st.bytes += nbytes
            gap = first_ts - st.last_ts  # the pair joining the two pieces
            drtp = (first_rtp_ts - st.last_rtp_ts) & 0xFFFFFFFF
            if drtp >= 0x80000000:
                drtp -= 0x100000000
            st.jit_sum += jit_sum + abs(gap - drtp / RTP_CLOCK_HZ)
            st.pairs += pairs + 1
            st.max_gap = max(st.max_gap, max_gap, gap)
        st.packets += packets
        st.seq_last = seq_last
        st.last_ts = last_ts
        st.last_rtp_ts = last_rtp_ts
        st.frame = frame
        st.has_prev = True

    def sweep(self, now: float, out: list[RtpBatch]) -> None:
        """Close batches whose bucket ended before ``now``; evict flows idle > idle_s."""
        cur = int(now)
        idle_before = now - self.idle_s
        stale: list[FlowKey] = []
        for key, st in self._flows.items():
            if st.packets and st.bucket < cur:
                out.append(self._batch(key, st))
            if st.packets == 0 and st.last_ts < idle_before:
                stale.append(key)
        for key in stale:
            del self._flows[key]
        self.evicted_idle += len(stale)

    def flush(self, out: list[RtpBatch]) -> None:
        """Close every open batch (end of input)."""
        for key, st in self._flows.items():
            if st.packets:
                out.append(self._batch(key, st))

    def _batch(self, key: FlowKey, st: _Flow) -> RtpBatch:
        self.batches += 1
        b = RtpBatch(st.last_ts, st.first_ts, key[0], key[1], key[2], key[3], key[4], st.pt,
                     st.packets, st.bytes, st.seq_first, st.seq_last, st.lost,
                     st.jit_sum / st.pairs if st.pairs else 0.0, st.max_gap, st.frame,
                     self.source, key[5])
        st.packets = 0
        return b

    def counters(self) -> dict[str, int]:
        return {"rtp_packets": self.packets, "rtp_batches": self.batches,
                "rtp_flows": len(self._flows), "rtp_evicted_full": self.evicted_full,
                "rtp_evicted_idle": self.evicted_idle}
