"""RTP/RTCP flow statistics, sans-IO: (arrival time, UDP payload) in, per-flow stats out.

:class:`RtpFlow` keeps what RFC 3550 appendix A keeps per source: the extended
highest sequence number, packets received and expected (hence loss) and the
interarrival jitter estimator ``J += (|D| - J) / 16``, plus packet timing (mean
inter-packet gap). :func:`rtp_header` is the V=2 pre-check and header read.
"""

from __future__ import annotations

from dataclasses import dataclass

# RFC 3551 static payload types -> clock rate; dynamic types default to 8 kHz
# (telephone-event and narrow-band voice, which is what gateways send).
CLOCK = {0: 8000, 3: 8000, 4: 8000, 5: 8000, 6: 16000, 7: 8000, 8: 8000, 9: 8000,
         10: 44100, 11: 44100, 12: 8000, 13: 8000, 15: 8000, 16: 11025, 17: 22050,
         18: 8000, 26: 90000, 31: 90000, 32: 90000, 33: 90000, 34: 90000}
RTCP_TYPES = frozenset(range(200, 208))


def rtp_header(payload: bytes) -> tuple[int, int, int, int] | None:
    """(payload type, sequence, timestamp, ssrc) if the bytes look like RTP, else None.

    RTCP (second byte 200..207) and anything without version 2 return None.
    """
    if len(payload) < 12 or payload[0] & 0xC0 != 0x80:
        return None
    b1 = payload[1]
    if b1 in RTCP_TYPES:
        return None
    pt = b1 & 0x7F
    if 72 <= pt <= 76:  # would collide with RTCP when the marker bit is set
        return None
    seq = (payload[2] << 8) | payload[3]
    ts = int.from_bytes(payload[4:8], "big")
    ssrc = int.from_bytes(payload[8:12], "big")
    return pt, seq, ts, ssrc


def is_rtcp(payload: bytes) -> bool:
    return len(payload) >= 8 and payload[0] & 0xC0 == 0x80 and payload[1] in RTCP_TYPES


@dataclass(slots=True)
class RtpFlow:
    """Statistics of one RTP stream (one direction, one SSRC at a time)."""

    first_ts: float
    last_ts: float
    call_id: str = ""
    ssrc: int = -1
    pt: int = -1
    packets: int = 0
    bytes: int = 0
    rtcp: int = 0
    base_seq: int = 0
    max_seq: int = 0
    cycles: int = 0
    transit: float | None = None
    jitter: float = 0.0  # RFC 3550, in timestamp units
    gap_sum: float = 0.0
    gap_sq: float = 0.0
    ssrc_changes: int = 0
    batch_lost: int = 0  # from decoder-side aggregates (RtpBatch), when used
    batch_jitter_w: float = 0.0  # sum of jitter_s x pairs over batches
    batch_pairs: int = 0

    def add(self, ts: float, pt: int, seq: int, rtp_ts: int, ssrc: int, size: int) -> None:
        if self.packets == 0 or ssrc != self.ssrc:
            if self.packets:
                self.ssrc_changes += 1
            self.ssrc, self.pt = ssrc, pt
            self.base_seq = self.max_seq = seq
            self.cycles = 0
            self.transit = None
        else:
            gap = ts - self.last_ts
            self.gap_sum += gap
            self.gap_sq += gap * gap
            udelta = (seq - self.max_seq) & 0xFFFF
            if udelta < 3000:  # in order, possibly with loss (RFC 3550 A.1)
                if seq < self.max_seq:
                    self.cycles += 65536
                self.max_seq = seq
        self.packets += 1
        self.bytes += size
        self.last_ts = ts
        if pt == self.pt:  # telephone-event packets share the clock but not the pacing
            arrival = ts * CLOCK.get(pt, 8000)
            transit = arrival - rtp_ts
            if self.transit is not None:
                d = abs(transit - self.transit)
                if d < 1e7:  # a timestamp jump (new talk spurt base) is not jitter
                    self.jitter += (d - self.jitter) / 16.0
            self.transit = transit

    def add_batch(self, first_ts: float, ts: float, pt: int, ssrc: int, packets: int,
                  size: int, lost: int, jitter_s: float) -> None:
        """Fold in a decoder-side aggregate of ``packets`` packets (see edge.records.RtpBatch)."""
        if self.packets and ssrc != self.ssrc:
            self.ssrc_changes += 1
        if self.packets:
            gap = first_ts - self.last_ts
            self.gap_sum += gap
        self.gap_sum += max(0.0, ts - first_ts)
        self.ssrc, self.pt = ssrc, pt
        self.packets += packets
        self.bytes += size
        self.batch_lost += max(0, lost)
        if packets > 1:
            self.batch_jitter_w += jitter_s * (packets - 1)
            self.batch_pairs += packets - 1
        self.last_ts = ts

    @property
    def expected(self) -> int:
        if self.batch_pairs or self.batch_lost:
            return self.packets + self.batch_lost
        return self.cycles + self.max_seq - self.base_seq + 1 if self.packets else 0

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.packets)

    @property
    def loss_ratio(self) -> float:
        exp = self.expected
        return self.lost / exp if exp > 0 else 0.0

    @property
    def jitter_ms(self) -> float:
        if self.batch_pairs:
            return 1000.0 * self.batch_jitter_w / self.batch_pairs
        return 1000.0 * self.jitter / CLOCK.get(self.pt, 8000)

    @property
    def mean_gap_ms(self) -> float:
        n = self.packets - 1 - self.ssrc_changes
        return 1000.0 * self.gap_sum / n if n > 0 else 0.0
