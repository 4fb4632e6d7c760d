"""Numpy header classification over many frames at once: the RTP media fast path.

Given the raw bytes of a block and the data offsets of a run of frames of one link
type, :func:`find_rtp` marks the frames that are plain IPv4 (no options, not a
fragment, not truncated) UDP carrying RTP-looking payload on media ports (directly,
in GTP-U, or under the GRE/ERSPAN/MPLS tunnels of a mirror, see ``_peel``), exactly
the frames the per-frame decoder would hand to the RTP aggregator, and
:func:`rtp_groups` reduces them per flow to partial aggregates. Every other frame is
left to the per-frame decoder, so the two paths give the same records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from drivers.capture.decode import (
    GTPU_PORT,
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    RAW_LINKTYPES,
)
from drivers.capture.rtp import NOT_MEDIA_PORTS, RTP_CLOCK_HZ

FAST_LINKTYPES = frozenset({LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2}
                           ) | RAW_LINKTYPES
_NOT_MEDIA = np.array(sorted(NOT_MEDIA_PORTS), dtype=np.int64)


@dataclass(slots=True)
class RtpFields:
    """Header fields of the RTP frames of a run (``sel`` indexes into the run)."""

    sel: np.ndarray
    src: np.ndarray  # uint64 IPv4 address
    dst: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    ssrc: np.ndarray
    seq: np.ndarray
    rtp_ts: np.ndarray
    pt: np.ndarray
    plen: np.ndarray
    teid: np.ndarray
    gtp: np.ndarray  # bool: carried in GTP-U (teid valid)


def find_rtp(raw: np.ndarray, off: np.ndarray, caplen: np.ndarray, linktype: int
             ) -> RtpFields | None:
    """RTP frames among frames ``raw[off[i]:off[i]+caplen[i]]``; None if linktype is not fast."""
    if linktype not in FAST_LINKTYPES:
        return None
    last = len(raw) - 1

    def g8(idx: np.ndarray) -> np.ndarray:
        return raw[np.minimum(idx, last)].astype(np.int64)

    lim = off + caplen  # end of what the innermost packet may use (outer lengths)
    if linktype == LINKTYPE_ETHERNET:
        et, l3 = _ether(g8, off)
        et, l3, lim = _peel(g8, et, l3, lim)
    elif linktype == LINKTYPE_LINUX_SLL:
        et = (g8(off + 14) << 8) | g8(off + 15)
        l3 = off + 16
    elif linktype == LINKTYPE_LINUX_SLL2:
        et = (g8(off) << 8) | g8(off + 1)
        l3 = off + 20
    else:
        l3 = off
        et = np.where(g8(off) >> 4 == 4, 0x0800, 0)
    def udp4(l3: np.ndarray, avail: np.ndarray) -> tuple[np.ndarray, ...]:
        """Plain IPv4 (IHL 5, unfragmented, complete within ``avail``) carrying UDP."""
        tot = (g8(l3 + 2) << 8) | g8(l3 + 3)
        ok = (g8(l3) == 0x45) & (tot >= 28) & (tot <= avail) & (g8(l3 + 9) == 17)
        ok &= ((g8(l3 + 6) & 0x3F) | g8(l3 + 7)) == 0
        sport = (g8(l3 + 20) << 8) | g8(l3 + 21)
        dport = (g8(l3 + 22) << 8) | g8(l3 + 23)
        ulen = (g8(l3 + 24) << 8) | g8(l3 + 25)
        ok &= (ulen >= 8) & (ulen <= tot - 20)
        return ok, sport, dport, ulen

    ok, sport, dport, ulen = udp4(l3, np.where(et == 0x0800, lim - l3, 0))
    # GTP-U G-PDU without extension headers, carrying IPv4: look at the inner packet
    gflags = g8(l3 + 28)
    gtp = ok & ((sport == GTPU_PORT) | (dport == GTPU_PORT)) & ((gflags & 0xF4) == 0x30)
    gtp &= (g8(l3 + 29) == 0xFF) & (ulen >= 8 + 12 + 28)
    teid = np.zeros(len(off), dtype=np.int64)
    if gtp.any():
        ghl = np.where(gflags & 0x03, 12, 8)
        glen = (g8(l3 + 30) << 8) | g8(l3 + 31)
        inner_avail = np.minimum(ulen - 8, 8 + glen) - ghl
        il3 = np.where(gtp, l3 + 28 + ghl, l3)
        iok, isport, idport, iulen = udp4(il3, inner_avail)
        gtp &= iok
        ok = np.where(gtp, True, ok)
        sport = np.where(gtp, isport, sport)
        dport = np.where(gtp, idport, dport)
        ulen = np.where(gtp, iulen, ulen)
        teid = np.where(gtp, (g8(l3 + 32) << 24) | (g8(l3 + 33) << 16) | (g8(l3 + 34) << 8)
                        | g8(l3 + 35), 0)
        l3 = np.where(gtp, il3, l3)
    b0 = g8(l3 + 28)
    pt = g8(l3 + 29) & 0x7F
    ok &= (et == 0x0800) & ((b0 & 0xC0) == 0x80) & ~((pt >= 72) & (pt <= 76))
    ok &= (ulen >= 20) & (sport >= 1024) & (dport >= 1024)
    ok &= ~np.isin(sport, _NOT_MEDIA) & ~np.isin(dport, _NOT_MEDIA)
    sel = np.flatnonzero(ok)
    if not len(sel):
        z = np.zeros(0, dtype=np.int64)
        return RtpFields(sel, z, z, z, z, z, z, z, z, z, z, np.zeros(0, dtype=bool))
    b = l3[sel]

    def be32(p: np.ndarray) -> np.ndarray:
        r = raw
        return ((r[p].astype(np.int64) << 24) | (r[p + 1].astype(np.int64) << 16)
                | (r[p + 2].astype(np.int64) << 8) | r[p + 3].astype(np.int64))

    return RtpFields(sel, be32(b + 12), be32(b + 16), sport[sel], dport[sel], be32(b + 36),
                     (raw[b + 30].astype(np.int64) << 8) | raw[b + 31], be32(b + 32), pt[sel],
                     ulen[sel] - 8, teid[sel], gtp[sel])


def _ether(g8: Any, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(EtherType, L3 offset) of Ethernet frames at ``e``; one 802.1Q tag taken off
    (deeper stacks go per frame)."""
    et = (g8(e + 12) << 8) | g8(e + 13)
    l3 = e + 14
    vlan = et == 0x8100
    if vlan.any():
        et = np.where(vlan, (g8(e + 16) << 8) | g8(e + 17), et)
        l3 = np.where(vlan, e + 18, l3)
    return et, l3


def _peel(g8: Any, et: np.ndarray, l3: np.ndarray, lim: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Take off the tunnels a mirror adds, for every frame at once: GRE over plain IPv4
    (checksum/key/sequence options; IPv4, MPLS, TEB, ERSPAN I/II/III inside) and MPLS
    stacks of up to four labels (IPv4, or pseudowire Ethernet with a control word).
    Frames whose tunnel is anything else keep an EtherType the RTP test rejects, so
    they go per frame. Bounded: at most ``_PEEL_ROUNDS`` layers."""
    for _ in range(_PEEL_ROUNDS):
        gre = g8(l3 + 9) == 47  # cheapest test first: plain captures leave here
        mpls = et == 0x8847
        if not (gre.any() or mpls.any()):
            break
        gre &= (et == 0x0800) & (g8(l3) == 0x45) & (((g8(l3 + 6) & 0x3F) | g8(l3 + 7)) == 0)
        if gre.any():
            tot = (g8(l3 + 2) << 8) | g8(l3 + 3)
            g = l3 + 20
            f0, f1 = g8(g), g8(g + 1)
            gproto = (g8(g + 2) << 8) | g8(g + 3)
            gre &= ((f0 & 0x40) == 0) & ((f1 & 0x07) == 0) & (tot >= 24)
            seq = (f0 & 0x10) != 0
            p = g + 4 + 4 * (((f0 >> 7) & 1) + ((f0 >> 5) & 1) + seq.astype(np.int64))
            e2 = (gproto == 0x88BE) & gre
            e3 = (gproto == 0x22EB) & gre
            teb = (gproto == 0x6558) & gre
            eth_at = np.where(e2, p + np.where(seq, 8, 0), p)
            eth_at = np.where(e3, p + np.where(g8(p + 11) & 1, 20, 12), eth_at)
            to_eth = e2 | e3 | teb
            iet, il3 = _ether(g8, eth_at)
            inner_ip = gre & ((gproto == 0x0800) | (gproto == 0x8847))
            lim = np.where(gre, np.minimum(lim, l3 + tot), lim)
            et = np.where(to_eth, iet, np.where(inner_ip, gproto, np.where(gre, 0, et)))
            l3 = np.where(to_eth, il3, np.where(inner_ip, p, l3))
            mpls = et == 0x8847  # MPLS carried in GRE is peeled in this round too
        if mpls.any():
            q = l3
            done = np.zeros(len(l3), dtype=bool)
            for _k in range(4):
                bottom = (g8(q + 2) & 1) == 1
                q = np.where(mpls & ~done, q + 4, q)
                done |= bottom
            mpls &= done
            nib = g8(q) >> 4
            iet, il3 = _ether(g8, q + 4)
            ip = mpls & (nib == 4)
            pw = mpls & (nib == 0)
            et = np.where(ip, 0x0800, np.where(pw, iet, np.where(et == 0x8847, 0, et)))
            l3 = np.where(ip, q, np.where(pw, il3, l3))
    return et, l3, lim


_PEEL_ROUNDS = 3


@dataclass(slots=True)
class RtpGroups:
    """Per-flow partial aggregates, one row per group, in order of first appearance."""

    src: list[int]
    dst: list[int]
    sport: list[int]
    dport: list[int]
    ssrc: list[int]
    first_ts: list[float]
    last_ts: list[float]
    pt: list[int]
    packets: list[int]
    bytes: list[int]
    seq_first: list[int]
    seq_last: list[int]
    lost: list[int]
    jit_sum: list[float]
    max_gap: list[float]
    first_rtp_ts: list[int]
    last_rtp_ts: list[int]
    last_pos: list[int]
    teid: list[int | None]


def rtp_groups(f: RtpFields, ts: np.ndarray) -> RtpGroups:
    """Reduce RTP frames (``ts`` aligned with ``f.sel``) per (addresses, ports, SSRC)."""
    k0 = (f.src << 32) | f.dst
    k1 = (f.sport << 48) | (f.dport << 32) | f.ssrc
    k2 = np.where(f.gtp, f.teid | (1 << 32), 0)
    order = np.lexsort((k2, k1, k0))  # stable: file order within a flow
    k0s, k1s, k2s = k0[order], k1[order], k2[order]
    m = len(order)
    change = np.flatnonzero((k0s[1:] != k0s[:-1]) | (k1s[1:] != k1s[:-1])
                            | (k2s[1:] != k2s[:-1])) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [m]))
    tss = ts[order]
    seq = f.seq[order]
    rts = f.rtp_ts[order]
    gaps = np.empty(m)
    gaps[0] = 0.0
    gaps[1:] = tss[1:] - tss[:-1]
    dseq = np.zeros(m, dtype=np.int64)
    dseq[1:] = (seq[1:] - seq[:-1]) & 0xFFFF
    lost = np.where((dseq > 1) & (dseq < 0x8000), dseq - 1, 0)
    drtp = np.zeros(m, dtype=np.int64)
    drtp[1:] = (rts[1:] - rts[:-1]) & 0xFFFFFFFF
    drtp = np.where(drtp >= 0x80000000, drtp - 0x100000000, drtp)
    jit = np.abs(gaps - drtp / RTP_CLOCK_HZ)
    gaps[starts] = 0.0
    lost[starts] = 0
    jit[starts] = 0.0
    n_bytes = np.add.reduceat(f.plen[order], starts)
    n_lost = np.add.reduceat(lost, starts)
    n_jit = np.add.reduceat(jit, starts)
    n_gap = np.maximum.reduceat(gaps, starts)
    # groups in order of their first frame, so emitted batches keep file order
    go = np.argsort(order[starts], kind="stable")
    starts, ends = starts[go], ends[go]
    fs, ls = order[starts], order[ends - 1]
    return RtpGroups(
        f.src[fs].tolist(), f.dst[fs].tolist(), f.sport[fs].tolist(), f.dport[fs].tolist(),
        f.ssrc[fs].tolist(), ts[fs].tolist(), ts[ls].tolist(), f.pt[fs].tolist(),
        (ends - starts).tolist(), n_bytes[go].tolist(), f.seq[fs].tolist(), f.seq[ls].tolist(),
        n_lost[go].tolist(), n_jit[go].tolist(), n_gap[go].tolist(),
        f.rtp_ts[fs].tolist(), f.rtp_ts[ls].tolist(), ls.tolist(),
        [t if g else None for t, g in zip(f.teid[fs].tolist(), f.gtp[fs].tolist(),
                                          strict=True)])
