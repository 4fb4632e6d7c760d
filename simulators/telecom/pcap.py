"""Seeded, labelled SIP/RTP/GoIP traffic written as a pcap, with a truth file.

Personas (one IP endpoint each):
- negatives: ``softphone`` (few calls both ways, some with 30 s NAT keepalives, some
  over IPv6, some with compact headers), ``ipphone`` (wired, polled by OPTIONS every
  60 s), ``pbx_trunk`` (many concurrent calls both ways: the hard negative, behind a
  VLAN tag);
- positives: ``goip_plain`` (User-Agent ``dble``, DBL SDP, X-ACrypt on some, DBL MAC
  OUI, DHCP vendor class ``dbl``, gontp.com look-up, SMS-server keepalives to UDP
  44444, DDNS 56000 -> 39800, remote admin on TCP 1920), ``goip_masked`` (User-Agent
  and SDP rewritten, only behaviour left: several lines registering from one address
  every 30-180 s (each box its own interval, with jitter), keepalives every 15-60 s,
  challenged or not like ordinary phones, back-to-back short calls to many distinct
  numbers, INVITEs arriving from the VoIP server), ``simbank_client`` (a masked GoIP
  whose SIMs sit in a remote bank: UDP packets starting 78 56 21 43).
A share of endpoints is carried inside GTP-U (its mobile data), a share of benign
ones speaks SIP over TCP (sometimes two messages in one segment), and big INVITEs are
IP-fragmented. RTP flows both ways on the SDP-negotiated ports.

Generation is event-list based: signalling is built up front (it is small), RTP is
produced second by second from per-stream templates (constant header bytes, only
the RTP header changes), so a million frames take seconds.
"""

from __future__ import annotations

import json
import random
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO

from simulators.telecom import pcap_sip as sip
from simulators.telecom.pcap_encap import Encapsulator
from simulators.telecom.pcap_frames import (
    PcapWriter,
    Tunnel,
    ethernet,
    fragment_ipv4,
    gtpu,
    is_v6,
    tcp,
    udp,
)

BENIGN_PROXY = "203.0.113.10"
BENIGN_PROXY6 = "2001:db8:100::10"
BENIGN_MEDIA = "203.0.113.11"
FRAUD_SERVER = "198.51.100.20"
FRAUD_MEDIA = "198.51.100.21"
SMS_SERVER = "198.51.100.30"
SIMBANK_SERVER = "198.51.100.40"
ADMIN_HOST = "198.51.100.50"
DDNS_SERVER = "202.104.186.90"
DNS_SERVER = "203.0.113.53"
SGW = "172.16.1.1"
ROUTER_MAC = bytes.fromhex("001b21aabb01")
SGW_MAC = bytes.fromhex("001b21aabb02")
DBL_OUI = bytes.fromhex("383f10")
PTIME = 0.02
RTP_PAYLOAD = 160

SOFTPHONE_UAS = ["Linphone/5.2.0 (belle-sip/5.2.0)", "Zoiper rv2.10.19.3", "MicroSIP/3.21.3",
                 "Bria 6 release 6.5.4", "Telephone 1.5"]
IPPHONE_UAS = ["Yealink SIP-T46S 66.85.0.5", "Grandstream GXP2170 1.0.11.3",
               "Cisco-CP8841/11.0", "Polycom/5.9.5.0614 PolycomVVX-VVX_411-UA/5.9.5.0614"]
PBX_UAS = ["Asterisk PBX 18.10.0", "FreeSWITCH-mod_sofia/1.10.9-release"]
MASK_UAS = ["Yealink SIP-T46S 66.85.0.5", "Asterisk PBX 16.2.1", "Grandstream HT802 1.0.33.4",
            "Linphone/4.4.0"]
POSITIVE = {"goip_plain", "goip_masked", "simbank_client"}


@dataclass
class PcapSimConfig:
    """Parameters of one simulated capture (all written into the truth file)."""

    seed: int = 1
    duration_s: float = 600.0
    start_ts: float = 1_767_225_600.0
    softphones: int = 12
    ipphones: int = 6
    pbx_trunks: int = 2
    goip_plain: int = 2
    goip_masked: int = 2
    simbank_clients: int = 1
    lines: int = 8
    """Lines (SIM ports) per GoIP."""
    gtp_share: float = 0.3
    """Share of softphones and GoIPs whose traffic is carried inside GTP-U."""
    tcp_share: float = 0.25
    """Share of softphones / IP phones / PBX trunks using SIP over TCP."""
    compact_share: float = 0.3
    """Share of softphones writing compact SIP header names."""
    ipv6_softphones: int = 1
    rtp: bool = True
    loss: float = 0.005
    """RTP packet loss probability."""
    max_packets: int | None = None
    goip_challenge_share: float = 0.5
    """Share of GoIPs whose softswitch challenges their REGISTERs (401 then digest)."""
    benign_challenge_share: float = 0.8
    """Share of ordinary phones whose registrar challenges them: neither side always
    gets a challenge, so a challenge says nothing about the device."""
    nat_offices: int = 0
    """Offices of 3-30 desk phones behind one NAT address (one wired endpoint each)."""
    dialers: int = 0
    """Outbound diallers on a provider trunk (bursts of parallel calls, no SIM lines)."""
    encap: str | None = None
    """Wrap every frame in this tunnel (``pcap_encap.KINDS``: erspan2, mpls, pppoe, ...)."""


@dataclass
class Endpoint:
    ip: str
    label: str
    persona: str
    positive: bool
    lines: int = 1
    gtp: bool = False
    transport: str = "UDP"
    user_agent: str | None = None
    notes: str = ""


@dataclass(slots=True)
class _Stream:
    start: float
    end: float
    prefix: bytes
    ssrc: int
    pt: int
    payload: bytes
    loss: float
    seq: int
    rtp_ts: int
    k: int = 0
    frame_fn: Callable[[bytes], bytes] | None = None  # IPv6: builds the whole frame


@dataclass
class SimResult:
    packets: int
    truth: dict[str, object] = field(default_factory=dict)


class _Sim:
    def __init__(self, cfg: PcapSimConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.t0 = cfg.start_ts
        self.end = cfg.start_ts + cfg.duration_s
        self.sig: list[tuple[float, int, bytes]] = []
        self.streams: list[_Stream] = []
        self.endpoints: list[Endpoint] = []
        self.tunnels: dict[str, Tunnel] = {}
        self.macs: dict[str, bytes] = {}
        self.vlans: dict[str, int] = {}
        self.tcp_conns: dict[tuple[str, int, str, int], list[int]] = {}
        self.tcp_pending: list[tuple[float, int, str, int, str, int, bytes, bool]] = []
        self.gtp_seq = 0
        self.last_ts = cfg.start_ts
        self.ident = 1
        self.n = 0
        self.counts: Counter[str] = Counter()
        self.pool: Counter[str] = Counter()
        self.encap = Encapsulator(cfg.encap) if cfg.encap else None

    # ------------------------------------------------------------------ plumbing
    def _addr(self, kind: str) -> str:
        self.pool[kind] += 1
        k = self.pool[kind]
        base = {"wired": "10.20", "ue": "10.45", "goip": "100.64"}[kind]
        return f"{base}.{k // 250}.{k % 250 + 2}"

    def _mac(self, ip: str, oui: bytes | None = None) -> bytes:
        mac = (oui or bytes([0x02, 0x1A, 0x2B])) + self.rng.randbytes(3)
        self.macs[ip] = mac
        return mac

    def _tunnel(self, ip: str) -> None:
        k = len(self.tunnels) + 1
        self.tunnels[ip] = Tunnel(self.rng.getrandbits(32), self.rng.getrandbits(32),
                                  f"172.16.0.{k % 250 + 2}", SGW,
                                  bytes.fromhex("00a0c9") + self.rng.randbytes(3), SGW_MAC,
                                  with_seq=self.rng.random() < 0.3)

    def frame(self, src: str, dst: str, pkt: bytes, *, seq: bool = True) -> bytes:
        """The frame on the wire: link layer, GTP-U, and the capture's tunnel if any."""
        f = self._link(src, dst, pkt, seq=seq)
        return f if self.encap is None else self.encap.wrap(f)

    def _link(self, src: str, dst: str, pkt: bytes, *, seq: bool = True) -> bytes:
        """Link-layer framing of an IP packet (GTP-U when either end is a tunnelled UE)."""
        t = self.tunnels.get(src)
        if t is not None:
            self.gtp_seq += 1
            g = gtpu(t.teid_up, pkt, seq=self.gtp_seq if (t.with_seq and seq) else None)
            return ethernet(t.enb_mac, t.sgw_mac, udp(t.enb, t.sgw, 2152, 2152, g))
        t = self.tunnels.get(dst)
        if t is not None:
            self.gtp_seq += 1
            g = gtpu(t.teid_down, pkt, seq=self.gtp_seq if (t.with_seq and seq) else None)
            return ethernet(t.sgw_mac, t.enb_mac, udp(t.sgw, t.enb, 2152, 2152, g))
        vlan = self.vlans.get(src, self.vlans.get(dst))
        return ethernet(self.macs.get(src, ROUTER_MAC), self.macs.get(dst, ROUTER_MAC), pkt,
                        vlan)

    def put(self, ts: float, frame: bytes) -> None:
        if self.t0 <= ts:
            self.n += 1
            self.sig.append((ts, self.n, frame))

    def send_udp(self, ts: float, src: str, sport: int, dst: str, dport: int,
                 payload: bytes) -> None:
        mtu = 1400 if (src in self.tunnels or dst in self.tunnels) else 1500
        if not is_v6(src) and len(payload) + 28 > mtu:
            self.ident += 1
            pkt = udp(src, dst, sport, dport, payload, ident=self.ident, df=False)
            for i, frag in enumerate(fragment_ipv4(pkt, mtu)):
                self.put(ts + i * 1e-5, self.frame(src, dst, frag))
            self.counts["fragmented_datagrams"] += 1
            return
        self.put(ts, self.frame(src, dst, udp(src, dst, sport, dport, payload)))

    def send_tcp(self, ts: float, src: str, sport: int, dst: str, dport: int,
                 payload: bytes, *, client: bool) -> None:
        """Queue one data segment; sequence numbers are given in time order at the end."""
        self.n += 1
        self.tcp_pending.append((ts, self.n, src, sport, dst, dport, payload, client))

    def _finish_tcp(self) -> None:
        for ts, _, src, sport, dst, dport, payload, client in sorted(self.tcp_pending):
            self._tcp_segment(ts, src, sport, dst, dport, payload, client=client)
        self.tcp_pending.clear()

    def _tcp_segment(self, ts: float, src: str, sport: int, dst: str, dport: int,
                     payload: bytes, *, client: bool) -> None:
        """One data segment on a (lazily opened) connection; the peer ACKs some."""
        key = (src, sport, dst, dport) if client else (dst, dport, src, sport)
        conn = self.tcp_conns.get(key)
        if conn is None:
            c, s = self.rng.getrandbits(32), self.rng.getrandbits(32)
            cip, cp, sip_, sp = key
            hs = ts - 0.004
            self.put(hs, self.frame(cip, sip_, tcp(cip, sip_, cp, sp, c, 0, 0x02)))
            self.put(hs + 0.001, self.frame(sip_, cip, tcp(sip_, cip, sp, cp, s, c + 1, 0x12)))
            self.put(hs + 0.002, self.frame(cip, sip_, tcp(cip, sip_, cp, sp, c + 1, s + 1,
                                                           0x10)))
            conn = self.tcp_conns[key] = [c + 1, s + 1]
        mine, theirs = (0, 1) if client else (1, 0)
        self.put(ts, self.frame(src, dst, tcp(src, dst, sport, dport, conn[mine],
                                              conn[theirs], 0x18, payload)))
        conn[mine] += len(payload)
        if self.rng.random() < 0.3:
            self.put(ts + 0.0005, self.frame(dst, src, tcp(dst, src, dport, sport,
                                                           conn[theirs], conn[mine], 0x10)))

    def send_sip(self, ts: float, a: sip.Party, b: sip.Party, data: bytes) -> None:
        first = data.split(b" ", 1)[0]
        self.counts["sip_messages"] += 1
        self.counts[f"sip_{'response' if first == b'SIP/2.0' else first.decode()}"] += 1
        if a.transport == "TCP":
            self.send_tcp(ts, a.ip, a.port, b.ip, b.port, data, client=not a.server)
        else:
            self.send_udp(ts, a.ip, a.port, b.ip, b.port, data)

    def tok(self, n: int = 8) -> str:
        return self.rng.randbytes(n).hex()

    # ------------------------------------------------------------------ media
    def stream(self, start: float, end: float, src: str, sport: int, dst: str, dport: int,
               pt: int) -> None:
        if not self.cfg.rtp or end <= start:
            return
        self.counts["rtp_streams"] += 1
        payload = self.rng.randbytes(RTP_PAYLOAD)
        ssrc = self.rng.getrandbits(32)
        st = _Stream(start, min(end, self.end), b"", ssrc, pt, payload, self.cfg.loss,
                     self.rng.getrandbits(16), self.rng.getrandbits(32))
        if is_v6(src) or (self.encap is not None and self.encap.per_packet):
            st.frame_fn = lambda rtp: self.frame(src, dst, udp(src, dst, sport, dport, rtp))
        else:
            body = bytes(12) + payload
            full = self.frame(src, dst, udp(src, dst, sport, dport, body), seq=False)
            st.prefix = full[: len(full) - len(body)]
        self.streams.append(st)

    # ------------------------------------------------------------------ dialogs
    def call(self, t0: float, caller: sip.Party, callee: sip.Party, callee_user: str, *,
             caller_media: tuple[str, int], callee_media: tuple[str, int],
             caller_sdp: str, callee_sdp: str, answered: bool, ring_s: float, dur_s: float,
             savp: bool = False, acrypt: bool = False, bye_by_caller: bool = True,
             ice: int = 0, answer_ice: int = 0) -> None:
        """One INVITE dialog: offer, provisional responses, answer, RTP both ways, BYE."""
        self.counts["calls"] += 1
        call_id = f"{self.tok(12)}@{caller.host()}"
        ftag, ttag = self.tok(4), self.tok(4)
        extra = (("X-ACrypt", f"RC4:{self.tok(8)}"),) if acrypt else ()
        offer = sip.sdp(caller_sdp, caller_media[0], caller_media[1],
                        self.rng.getrandbits(30), savp=savp, ice=ice)
        ruri = f"sip:{callee_user}@{callee.host()}:{callee.port}"
        inv = sip.request("INVITE", ruri, caller, ruri, call_id=call_id, cseq=1,
                          branch=self.tok(6), from_tag=ftag, body=offer, extra=extra)
        self.send_sip(t0, caller, callee, inv.data)
        trying = sip.response(inv, 100, callee)
        ringing = sip.response(inv, 180, callee, to_tag=ttag)
        if callee.transport == "TCP" and self.rng.random() < 0.5:
            self.counts["sip_messages"] += 1  # two messages, one segment
            self.counts["sip_response"] += 2
            self.counts["multi_message_segments"] += 1
            self.send_tcp(t0 + 0.02, callee.ip, callee.port, caller.ip, caller.port,
                          trying + ringing, client=not callee.server)
        else:
            self.send_sip(t0 + 0.01, callee, caller, trying)
            self.send_sip(t0 + 0.05 + self.rng.random() * 0.4, callee, caller, ringing)
        t1 = t0 + ring_s
        ack_to = f"{ruri}"
        if not answered:
            code = self.rng.choice([480, 486, 487])
            self.send_sip(t1, callee, caller, sip.response(inv, code, callee, to_tag=ttag))
            ack = sip.request("ACK", ruri, caller, ack_to, call_id=call_id, cseq=1,
                              branch=inv.via.split("branch=z9hG4bK")[1].split(";")[0],
                              from_tag=ftag, to_tag=ttag)
            self.send_sip(t1 + 0.02, caller, callee, ack.data)
            return
        answer = sip.sdp(callee_sdp, callee_media[0], callee_media[1],
                         self.rng.getrandbits(30), savp=savp, ice=answer_ice)
        self.send_sip(t1, callee, caller, sip.response(inv, 200, callee, to_tag=ttag,
                                                       body=answer, extra=extra))
        ack = sip.request("ACK", ruri, caller, ack_to, call_id=call_id, cseq=1,
                          branch=self.tok(6), from_tag=ftag, to_tag=ttag)
        self.send_sip(t1 + 0.02, caller, callee, ack.data)
        m0, m1 = t1 + 0.03, t1 + 0.03 + dur_s
        pt = 8
        self.stream(m0, m1, caller_media[0], caller_media[1], callee_media[0], callee_media[1],
                    pt)
        self.stream(m0 + 0.004, m1, callee_media[0], callee_media[1], caller_media[0],
                    caller_media[1], pt)
        t = m0 + 5.0
        while t < m1:  # RTCP sender reports, both ways
            for (a, ap), (b, bp) in ((caller_media, callee_media), (callee_media, caller_media)):
                sr = struct.pack("!BBHI", 0x80, 200, 6, self.rng.getrandbits(32)) + bytes(20)
                self.send_udp(t + self.rng.random() * 0.01, a, ap + 1, b, bp + 1, sr)
            t += 5.0
        by, to = (caller, callee) if bye_by_caller else (callee, caller)
        bt, bf = (ttag, ftag) if bye_by_caller else (ftag, ttag)
        bye = sip.request("BYE", to.uri(), by, to.uri(), call_id=call_id, cseq=2,
                          branch=self.tok(6), from_tag=bf, to_tag=bt)
        self.send_sip(m1 + 0.01, by, to, bye.data)
        self.send_sip(m1 + 0.04, to, by, sip.response(bye, 200, to))

    def register(self, t: float, ua: sip.Party, server: sip.Party, call_id: str, cseq: int,
                 expires: int, *, challenge: bool) -> None:
        aor = f"sip:{ua.user}@{server.host()}"
        if challenge:
            r = sip.request("REGISTER", f"sip:{server.host()}", ua, aor, call_id=call_id,
                            cseq=cseq, branch=self.tok(6), from_tag=self.tok(4), expires=expires)
            self.send_sip(t, ua, server, r.data)
            nonce = self.tok(8)
            self.send_sip(t + 0.02, server, ua, sip.response(
                r, 401, server, to_tag=self.tok(4),
                extra=(("WWW-Authenticate", f'Digest realm="voip", nonce="{nonce}"'),)))
            t += 0.05
            cseq += 1
        auth = (("Authorization", f'Digest username="{ua.user}", realm="voip", '
                 f'uri="sip:{server.host()}", response="{self.tok(16)}"'),)
        r = sip.request("REGISTER", f"sip:{server.host()}", ua, aor, call_id=call_id,
                        cseq=cseq, branch=self.tok(6), from_tag=self.tok(4), expires=expires,
                        extra=auth)
        self.send_sip(t, ua, server, r.data)
        self.send_sip(t + 0.02, server, ua, sip.response(r, 200, server, to_tag=self.tok(4)))

    def options(self, t: float, a: sip.Party, b: sip.Party) -> None:
        r = sip.request("OPTIONS", f"sip:{b.host()}", a, f"sip:{b.host()}",
                        call_id=f"{self.tok(10)}@{a.host()}", cseq=1, branch=self.tok(6),
                        from_tag=self.tok(4))
        self.send_sip(t, a, b, r.data)
        self.send_sip(t + 0.01, b, a, sip.response(r, 200, b, to_tag=self.tok(4)))

    def number(self) -> str:
        return "1" + self.rng.choice("3578") + "".join(self.rng.choices("0123456789", k=9))

    # ------------------------------------------------------------------ personas
    def benign(self, persona: str) -> None:
        rng, cfg = self.rng, self.cfg
        v6 = persona == "softphone6"
        gtp = persona.startswith("softphone") and not v6 and rng.random() < cfg.gtp_share
        if v6:
            self.pool["v6"] += 1
            ip = f"2001:db8:20::{self.pool['v6'] + 1:x}"
        else:
            ip = self._addr("ue" if gtp else "wired")
        transport = "TCP" if rng.random() < cfg.tcp_share else "UDP"
        uas = PBX_UAS if persona == "pbx_trunk" else IPPHONE_UAS if persona == "ipphone" \
            else SOFTPHONE_UAS
        ua_s = rng.choice(uas)
        compact = persona.startswith("softphone") and rng.random() < cfg.compact_share
        label = "softphone" if v6 else persona
        user = self.number()[-8:]
        me = sip.Party(ip, rng.choice([5060, 5060, rng.randrange(5062, 65000)]), user, transport,
                       ua_s, compact)
        proxy = sip.Party(BENIGN_PROXY6 if v6 else BENIGN_PROXY, 5060, "proxy", transport,
                          "Kamailio (5.7.2 (x86_64/linux))", server=True)
        media_srv = BENIGN_PROXY6 if v6 else BENIGN_MEDIA
        if gtp:
            self._tunnel(ip)
        else:
            self._mac(ip)
        if persona == "pbx_trunk":
            self.vlans[ip] = 100
        self.endpoints.append(Endpoint(ip, label, persona, False, 1, gtp, transport, ua_s))
        t_end = self.end
        reg_every = {"softphone": 600, "ipphone": 1800, "pbx_trunk": 3600}.get(label, 600)
        reg_cid = f"{self.tok(10)}@{me.host()}"
        t, cseq = self.t0 + rng.uniform(0, 20), 1
        challenged = rng.random() < cfg.benign_challenge_share
        while t < t_end:
            self.register(t, me, proxy, reg_cid, cseq, reg_every, challenge=challenged)
            cseq += 2
            t += reg_every * rng.uniform(0.45, 0.55)
        if "Zoiper" in ua_s and transport == "UDP":  # NAT keepalive every 30 s
            t = self.t0 + rng.uniform(0, 30)
            while t < t_end:
                self.send_udp(t, me.ip, me.port, proxy.ip, proxy.port, b"\r\n\r\n")
                t += 30.0
        if persona == "ipphone":  # the proxy qualifies the phone every 60 s
            t = self.t0 + rng.uniform(0, 60)
            while t < t_end:
                self.options(t, proxy, me)
                t += 60.0
        if persona == "pbx_trunk":
            t = self.t0 + rng.uniform(0, 60)
            while t < t_end:
                self.options(t, me, proxy)
                t += 60.0
        rate = {"softphone": 1 / 240, "ipphone": 1 / 300, "pbx_trunk": 1 / 8}[label]
        contacts = [self.number() for _ in range(8)]
        ice_ua = ua_s.startswith(("Linphone", "Bria", "MicroSIP"))
        t = self.t0 + rng.expovariate(rate)
        while t < t_end - 5:
            outgoing = rng.random() < (0.55 if persona == "pbx_trunk" else 0.5)
            peer = self.number() if persona == "pbx_trunk" else rng.choice(contacts)
            my_media = (ip, rng.randrange(8000, 30000) & ~1)
            srv_media = (media_srv, rng.randrange(20000, 40000) & ~1)
            dur = min(rng.lognormvariate(4.3, 0.9), 1800.0)
            kw = dict(answered=rng.random() < 0.8, ring_s=rng.uniform(2, 15), dur_s=dur,
                      caller_sdp="normal", callee_sdp="normal")
            ice = 12 if (ice_ua and transport == "UDP" and not v6) else 0
            if outgoing:
                self.call(t, me, proxy, peer, caller_media=my_media, callee_media=srv_media,
                          ice=ice, **kw)  # type: ignore[arg-type]
            else:
                self.call(t, proxy, me, me.user, caller_media=srv_media, callee_media=my_media,
                          bye_by_caller=rng.random() < 0.5, answer_ice=ice,
                          **kw)  # type: ignore[arg-type]
            t += rng.expovariate(rate)

    def office(self) -> None:
        """Desk phones of one office behind a NAT router: each phone its own extension,
        NAT port and registration; calls in on the extensions, out to the public
        network, and between extensions through the hosted PBX (both legs cross the NAT)."""
        rng, cfg = self.rng, self.cfg
        ip = self._addr("wired")
        self._mac(ip)
        n = rng.randint(3, 30)
        exts = [str(e) for e in rng.sample(range(200, 900), n)]
        makes = rng.sample(IPPHONE_UAS + SOFTPHONE_UAS[:2], rng.choice((1, 2, 3)))
        ports = rng.sample(range(1024, 65000), n)
        phones = [sip.Party(ip, ports[i], exts[i], "UDP", rng.choice(makes)) for i in range(n)]
        proxy = sip.Party(BENIGN_PROXY, 5060, "proxy", "UDP", "Kamailio (5.7.2 (x86_64/linux))",
                          server=True)
        self.endpoints.append(Endpoint(ip, "nat_office", "nat_office", False, n, False, "UDP",
                                       ",".join(sorted(set(p.user_agent or "" for p in phones)))))
        reg_every = rng.choice((120, 300, 600, 1800, 3600))
        challenged = rng.random() < cfg.benign_challenge_share
        for me in phones:
            t, cseq = self.t0 + rng.uniform(0, min(reg_every, 60)), 1
            cid = f"{self.tok(10)}@{ip}"
            while t < self.end:
                self.register(t, me, proxy, cid, cseq, reg_every, challenge=challenged)
                cseq += 2
                t += reg_every * rng.uniform(0.45, 0.55)
        rate = rng.uniform(1 / 1800, 1 / 300)  # per phone
        for i, me in enumerate(phones):
            t = self.t0 + rng.expovariate(rate)
            while t < self.end - 5:
                my_media = (ip, rng.randrange(8000, 30000) & ~1)
                srv_media = (BENIGN_MEDIA, rng.randrange(20000, 40000) & ~1)
                dur = min(rng.lognormvariate(4.5, 1.0), 1800.0)
                kw = dict(answered=rng.random() < 0.65, ring_s=rng.uniform(3, 25), dur_s=dur,
                          caller_sdp="normal", callee_sdp="normal")
                r = rng.random()
                if r < 0.2 and n > 1:
                    other = phones[(i + rng.randrange(1, n)) % n]
                    self.call(t, me, proxy, other.user, caller_media=my_media,
                              callee_media=srv_media, **kw)  # type: ignore[arg-type]
                    self.call(t + 0.1, proxy, other, other.user, callee_media=(
                        ip, rng.randrange(8000, 30000) & ~1), caller_media=srv_media,
                        **kw)  # type: ignore[arg-type]
                elif r < 0.6:
                    self.call(t, proxy, me, me.user, caller_media=srv_media,
                              callee_media=my_media, **kw)  # type: ignore[arg-type]
                else:
                    self.call(t, me, proxy, self.number(), caller_media=my_media,
                              callee_media=srv_media, **kw)  # type: ignore[arg-type]
                t += dur + rng.expovariate(rate)

    def dialer(self) -> None:
        """An outbound dialler: campaigns of parallel INVITEs to a provider trunk, most
        unanswered, answered ones short, caller ID fixed or from a pool."""
        rng = self.rng
        ip = self._addr("wired")
        self._mac(ip)
        clis = [self.number() for _ in range(rng.choice((1, 3, 50)))]
        me = sip.Party(ip, 5060, clis[0], "UDP", rng.choice(("VICIdial", "Asterisk PBX 16.2.1",
                                                            "FreeSWITCH-mod_sofia/1.10.9")))
        trunk = sip.Party(BENIGN_PROXY, 5060, "proxy", "UDP", "Kamailio (5.7.2 (x86_64/linux))",
                          server=True)
        self.endpoints.append(Endpoint(ip, "dialer", "dialer", False, 0, False, "UDP",
                                       me.user_agent))
        burst, every = rng.randint(3, 25), rng.uniform(5, 40)
        t = self.t0 + rng.uniform(0, 10)
        while t < self.end - 40:
            for _ in range(burst):
                caller = sip.Party(ip, 5060, rng.choice(clis), "UDP", me.user_agent)
                answered = rng.random() < 0.25
                self.call(t + rng.uniform(0, 1.0), caller, trunk, self.number(),
                          caller_media=(ip, rng.randrange(8000, 30000) & ~1),
                          callee_media=(BENIGN_MEDIA, rng.randrange(20000, 40000) & ~1),
                          caller_sdp="normal", callee_sdp="normal", answered=answered,
                          ring_s=rng.uniform(10, 30), dur_s=rng.uniform(3, 60))
            t += rng.expovariate(1.0 / every)

    def goip(self, persona: str, idx: int) -> None:
        rng, cfg = self.rng, self.cfg
        plain = persona == "goip_plain"
        gtp = rng.random() < cfg.gtp_share
        ip = self._addr("ue" if gtp else "goip")
        if gtp:
            self._tunnel(ip)
        mac = self._mac(ip, DBL_OUI if plain else None)
        if gtp:
            del self.macs[ip]  # its MAC never reaches the wire we capture
        ua = "dble" if plain else rng.choice(MASK_UAS)
        acrypt = plain and rng.random() < 0.5
        lines = cfg.lines
        self.endpoints.append(Endpoint(ip, persona, "simbank" if persona == "simbank_client"
                                       else persona, True, lines, gtp, "UDP", ua,
                                       "X-ACrypt + RTP/SAVP" if acrypt else ""))
        server = sip.Party(FRAUD_SERVER, 5060, "gw", "UDP", None, server=True)
        if plain:
            ports = [5060 + i for i in range(lines)]
        else:
            ports = rng.sample(range(5060, 6061), lines)
        t_end = self.end
        serial = f"GOIP{idx:02d}{rng.randrange(10**6):06d}"
        if plain:
            if not gtp:
                self.send_udp(self.t0 + 0.5, "0.0.0.0", 68, "255.255.255.255", 67,
                              sip.dhcp_discover(rng.getrandbits(32), mac, "dbl"))
            self.send_udp(self.t0 + 1.0, ip, rng.randrange(1024, 65000), DNS_SERVER, 53,
                          sip.dns_query(rng.getrandbits(16), "gontp.com"))
            t = self.t0 + rng.uniform(2, 60)
            while t < t_end:  # DDNS
                self.send_udp(t, ip, 56000, DDNS_SERVER, 39800,
                              b"\x86\x70\x14\x13\x01" + serial.encode())
                self.send_udp(t + 0.03, DDNS_SERVER, 39800, ip, 56000,
                              b"\x86\x70\x14\x13\x00" + f"{ip}\twww.{serial}.com".encode())
                t += 300.0
            ta = self.t0 + rng.uniform(10, max(11.0, cfg.duration_s - 10))
            ap = rng.randrange(30000, 60000)
            self.send_tcp(ta, ADMIN_HOST, ap, ip, 1920, b"GET / HTTP/1.0\r\n\r\n", client=True)
            self.send_tcp(ta + 0.05, ip, 1920, ADMIN_HOST, ap,
                          b"HTTP/1.0 401 Unauthorized\r\nServer: GoIP\r\n\r\n", client=False)
        if persona == "simbank_client":
            sp = rng.randrange(1024, 65000)
            t, n = self.t0 + rng.uniform(0, 10), 0
            while t < t_end:
                n += 1
                body = struct.pack("!I", n) + rng.randbytes(24)
                self.send_udp(t, ip, sp, SIMBANK_SERVER, 56011, b"\x78\x56\x21\x43" + body)
                self.send_udp(t + 0.04, SIMBANK_SERVER, 56011, ip, sp,
                              b"\x78\x56\x21\x43" + struct.pack("!I", n) + rng.randbytes(12))
                t += 10.0
        reg_iv = rng.choice((30.0, 60.0, 60.0, 90.0, 120.0, 180.0)) * rng.uniform(0.97, 1.03)
        reg_sd = rng.uniform(0.05, 3.0)
        ka_iv = rng.choice((15.0, 20.0, 30.0, 30.0, 60.0))
        challenged = rng.random() < cfg.goip_challenge_share
        for li in range(lines):
            user = f"{800 + idx * 100 + li}"
            me = sip.Party(ip, ports[li], user, "UDP", ua)
            imsi = "46000" + "".join(rng.choices("0123456789", k=10))
            # regular, but not a clock: each box's own interval, with jitter
            reg_cid = f"{self.tok(10)}@{ip}"
            t, cseq = self.t0 + rng.uniform(0, reg_iv), 1
            while t < t_end:
                self.register(t, me, server, reg_cid, cseq, int(reg_iv),
                              challenge=challenged)
                cseq += 2 if challenged else 1
                t += max(1.0, rng.gauss(reg_iv, reg_sd))
            t = self.t0 + rng.uniform(0, ka_iv)
            while t < t_end:
                self.send_udp(t, ip, me.port, server.ip, server.port, b"\r\n\r\n")
                t += max(1.0, rng.gauss(ka_iv, reg_sd))
            if plain:
                sp, req = rng.randrange(1024, 65000), 0
                t = self.t0 + rng.uniform(0, 30)
                while t < t_end:
                    req += 1
                    self.send_udp(t, ip, sp, SMS_SERVER, 44444, sip.goip_keepalive(
                        req, f"goip{idx}{li + 1}", "pw123", "", rng.randrange(15, 31),
                        "86" + "".join(rng.choices("0123456789", k=13)), imsi,
                        "8986" + "".join(rng.choices("0123456789", k=16))))
                    self.send_udp(t + 0.02, SMS_SERVER, 44444, ip, sp,
                                  sip.goip_keepalive_reply(req))
                    t += 30.0
            t = self.t0 + rng.uniform(3, 30)
            rtp_port = 10000 + 2 * li if plain else rng.randrange(16384, 32000) & ~1
            while t < t_end - 5:
                inbound = rng.random() < 0.9  # the VoIP server hands the call to the box
                srv_media = (FRAUD_MEDIA, rng.randrange(20000, 40000) & ~1)
                answered = rng.random() < 0.65
                ring = rng.uniform(3, 12)
                dur = rng.uniform(8, 50)
                style = "goip" if plain else "normal"
                if inbound:
                    self.call(t, server, me, self.number(), caller_media=srv_media,
                              callee_media=(ip, rtp_port), caller_sdp="normal",
                              callee_sdp=style, answered=answered, ring_s=ring, dur_s=dur,
                              savp=acrypt, acrypt=acrypt, bye_by_caller=rng.random() < 0.5)
                else:
                    self.call(t, me, server, self.number(), caller_media=(ip, rtp_port),
                              callee_media=srv_media, caller_sdp=style, callee_sdp="normal",
                              answered=answered, ring_s=ring, dur_s=dur, savp=acrypt,
                              acrypt=acrypt)
                t += ring + (dur if answered else 0) + rng.uniform(2, 10)

    def build(self) -> None:
        c = self.cfg
        for _ in range(c.softphones):
            self.benign("softphone")
        for _ in range(c.ipv6_softphones):
            self.benign("softphone6")
        for _ in range(c.ipphones):
            self.benign("ipphone")
        for _ in range(c.pbx_trunks):
            self.benign("pbx_trunk")
        for _ in range(c.nat_offices):
            self.office()
        for _ in range(c.dialers):
            self.dialer()
        idx = 0
        for persona, n in (("goip_plain", c.goip_plain), ("goip_masked", c.goip_masked),
                           ("simbank_client", c.simbank_clients)):
            for _ in range(n):
                idx += 1
                self.goip(persona, idx)
        for ip, label in ((BENIGN_PROXY, "sip_registrar"), (BENIGN_MEDIA, "media_relay"),
                          (FRAUD_SERVER, "voip_server"), (FRAUD_MEDIA, "voip_media"),
                          (SMS_SERVER, "goip_sms_server"), (SIMBANK_SERVER, "simbank_server"),
                          (DDNS_SERVER, "ddns_server")):
            self.endpoints.append(Endpoint(ip, label, "infrastructure", False))
        self._finish_tcp()

    # ------------------------------------------------------------------ output
    def write(self, fh: BinaryIO) -> int:
        """Merge signalling and RTP in time order, one second at a time; returns frames."""
        w = PcapWriter(fh)
        sig = sorted(self.sig)
        streams = sorted(self.streams, key=lambda s: s.start)
        limit = self.cfg.max_packets or 1 << 62
        rand = self.rng.random
        pack = struct.Struct("!BBHII").pack
        si = qi = 0
        active: list[_Stream] = []
        t = self.t0
        total = 0
        rtp = 0
        while total < limit and (si < len(sig) or qi < len(streams) or active):
            w_end = t + 1.0
            items: list[tuple[float, bytes]] = []
            while si < len(sig) and sig[si][0] < w_end:
                items.append((sig[si][0], sig[si][2]))
                si += 1
            while qi < len(streams) and streams[qi].start < w_end:
                active.append(streams[qi])
                qi += 1
            keep = []
            for s in active:
                while True:
                    ts = s.start + s.k * PTIME + rand() * 0.002
                    if ts >= s.end:  # the stream is over (the jitter must not be drawn
                        s.end = -1.0  # again in a later window: frames would go back)
                        break
                    if ts >= w_end:
                        break
                    seq = (s.seq + s.k) & 0xFFFF
                    rts = (s.rtp_ts + s.k * RTP_PAYLOAD) & 0xFFFFFFFF
                    first = s.k == 0
                    s.k += 1
                    if not first and rand() < s.loss:
                        continue
                    hdr = pack(0x80, s.pt | (0x80 if first else 0), seq, rts, s.ssrc)
                    if s.frame_fn is not None:
                        items.append((ts, s.frame_fn(hdr + s.payload)))
                    else:
                        items.append((ts, s.prefix + hdr + s.payload))
                    rtp += 1
                if s.start + s.k * PTIME < s.end:
                    keep.append(s)
            active = keep
            items.sort(key=lambda x: x[0])
            if total + len(items) > limit:
                items = items[: limit - total]
            w.write_many(items)
            total += len(items)
            if items:
                self.last_ts = items[-1][0]
            t = w_end
        self.counts["rtp_packets_generated"] = rtp
        return total


def simulate_pcap(cfg: PcapSimConfig, out: Path | BinaryIO,
                  truth: Path | None = None) -> SimResult:
    """Write a labelled capture to ``out`` (and its truth JSON); returns the frame count."""
    sim = _Sim(cfg)
    sim.build()
    if isinstance(out, Path):
        with open(out, "wb") as fh:
            n = sim.write(fh)
    else:
        n = sim.write(out)
    truncated = cfg.max_packets is not None and n >= cfg.max_packets
    truth_doc: dict[str, object] = {
        "seed": cfg.seed, "params": asdict(cfg), "start": cfg.start_ts,
        "end": sim.last_ts if truncated else cfg.start_ts + cfg.duration_s,
        "endpoints": [asdict(e) for e in sim.endpoints],
        "counts": {"packets": n, **dict(sorted(sim.counts.items()))},
        "truncated": truncated,
    }
    if truth is not None:
        truth.write_text(json.dumps(truth_doc, indent=1))
    return SimResult(n, truth_doc)


__all__ = ["POSITIVE", "Endpoint", "PcapSimConfig", "simulate_pcap"]
