"""The IP-plane GoIP detector stage: :class:`Packet` records in, ``goip.endpoint``
detections out.

Per packet the work is a few dictionary lookups on the first payload bytes and the
ports; only payloads that pass them are parsed (SIP, SDP, the GoIP SMS protocol,
DHCP, DNS), and RTP is recognised by the media ports announced in SDP (or the V=2
header bits for unannounced streams). Signature hits and behaviour are kept per IP
endpoint; once per ``eval_interval_s`` of event time the endpoints that changed are
judged: signature weights first (precision), then one batched ONNX call over the
behaviour features (recall for masked gateways). Every table is bounded and its
evictions are counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.detection import Detection, Evidence, ModelInfo, Subject
from edge.pipeline import NOTHING
from edge.records import Packet, RtpBatch
from edge.telecom.ipplane.dhcp_dns import dns_query_name, parse_dhcp
from edge.telecom.ipplane.dialogs import (
    CallEvent,
    DialogTable,
    MediaEvent,
    PingEvent,
    RegisterEvent,
)
from edge.telecom.ipplane.endpoint import FEATURES, EndpointState
from edge.telecom.ipplane.goip_sms import PREFIXES as GOIP_PREFIXES
from edge.telecom.ipplane.goip_sms import parse_goip_sms
from edge.telecom.ipplane.rtp import RtpFlow, is_rtcp, rtp_header
from edge.telecom.ipplane.signatures import Signature, SignatureSet, load_signatures
from edge.telecom.ipplane.sip import PREFIXES as SIP_PREFIXES
from edge.telecom.ipplane.sip import SipError, SipMessage, SipStream, parse_message
from edge.telecom.ipplane.websocket import open_stream

log = logging.getLogger(__name__)

KIND = "goip.endpoint"
_REGS_IN = FEATURES.index("registrars_role")
_LINES = FEATURES.index("lines")
_OWN_IN = FEATURES.index("own_in_share")
_F = {f: i for i, f in enumerate(FEATURES)}
# With fewer calls than this in the window a behaviour verdict rests on registrations
# alone: the gaps between call starts need three calls for a spread (two gaps), and a
# callee or caller ratio over one or two calls says nothing.
MIN_CALLS = 3
# distinct public numbers seen on both sides (called it, called by it) that make a
# conversation pattern: one number could be a softswitch's fixed caller ID that is also
# the box's forward target; two are callers called back
CALLED_BACK = 2
# calls in over the ledger, every one to a fresh public number, that with the device's
# shape make the ledger relay rule (2026-12-04: chosen between 3 and 2 on the training
# and validation scenarios, profile train; see models/ipplane/README.md)
LEDGER_RELAY_CALLS = 2
ROUTE = ["telecom", "police"]
CRLF_PINGS = frozenset({b"\r\n", b"\r\n\r\n", b"\x00\x00\x00\x00"})
SMTP_PORTS = frozenset({25, 587, 2525})
RTP_IDLE_S = 10.0


@dataclass(slots=True)
class DetectorSettings:
    """What the stage needs from ``[detectors.ipplane]`` (see edge.config.IpPlaneSection)."""

    window_s: float = 600.0
    eval_interval_s: float = 60.0
    min_activity: int = 10
    # the behaviour model judges an endpoint only after it has been watched this long:
    # cadence features need two re-registrations per line (GoIPs: every 60-120 s) and
    # call features need calls that ended; earlier rows are a few calls and first
    # REGISTERs, where a busy trunk and a gateway look alike. Signatures are not gated.
    min_observed_s: float = 300.0
    # a behaviour-only report needs this many consecutive judgements at or above the
    # threshold (one evaluation is one look at a window that may hold a handful of
    # calls; the next look, eval_interval_s later, must agree). Signatures report at once.
    confirm_evals: int = 2
    # the call ledger the explicit rules read (calls that came in: to its own users or
    # to fresh numbers) reaches this far back, beyond the window: a 2-line box relaying
    # a call every few minutes shows three relayed calls in half an hour, not in ten
    # minutes; a phone shows a call to its own user sooner or later
    evidence_s: float = 1800.0
    # optional (``[detectors.ipplane] trunk_numbers``): digit prefixes of the numbers the
    # operator routes to its business SIP trunks; a call in to one counts, in the rules,
    # as a call to the endpoint's own number
    trunk_numbers: tuple[str, ...] = ()
    max_flows: int = 200_000
    max_dialogs: int = 100_000
    max_endpoints: int = 100_000
    idle_evict_s: float = 600.0
    realert_s: float = 3600.0
    threshold: float = 0.9
    track_unannounced_rtp: bool = True


class IpPlaneDetector:
    """Stage ``ipplane``: consumes :class:`Packet`, emits ``goip.endpoint`` detections."""

    name = "ipplane"
    consumes: tuple[type, ...] = (Packet, RtpBatch)

    def __init__(self, settings: DetectorSettings | None = None,
                 signatures: SignatureSet | None = None, model: Any = None) -> None:
        self.s = settings or DetectorSettings()
        self.sigs = signatures or load_signatures()
        self.model = model  # a models.loader.LoadedModel, or None (signatures only)
        # training and evaluation tap: called with (now, addr, features) per judged endpoint
        self.feature_sink: Callable[[float, str, list[float]], None] | None = None
        # evaluation tap: every row the behaviour path judges (the model's and the ones
        # only the rules judge), with its ledger counts and whether the model scored it
        # (now, address, row, ledger counts, scored by the model, the end-of-input look)
        self.judged_sink: Callable[[float, str, list[float], tuple[int, int, int, int],
                                    bool, bool], None] | None = None
        self.dialogs = DialogTable(self.s.max_dialogs)
        self.endpoints: dict[str, EndpointState] = {}
        self.tcp: dict[tuple[str, int, str, int], SipStream] = {}
        self.rtp: dict[tuple[str, int, str, int], RtpFlow] = {}
        self.media: dict[tuple[str, int], str] = {}
        self._media_dying: list[tuple[float, tuple[str, int]]] = []
        self._media_of_call: dict[str, list[tuple[str, int]]] = {}
        self._dhcp_pending: dict[bytes, list[tuple[Signature, float, str]]] = {}
        self._sms_servers: dict[str, float] = {}
        self._clients: dict[tuple[str, str], str] = {}
        self._plen = self.sigs.prefix_len
        self._prefixes = self.sigs.prefixes
        self._ouis = self.sigs.ouis
        self._tcp_ports = self.sigs.tcp_ports
        self._next_eval: float | None = None
        self._next_sweep: float | None = None
        # endpoints with a signature not reported yet: judged right after the packet,
        # so a signature report is not held back to the next evaluation interval
        self._sig_pending: set[str] = set()
        self.now = 0.0
        self._trunk_prefixes = frozenset(self.s.trunk_numbers)
        self._trunk_lengths = sorted({len(n) for n in self.s.trunk_numbers})
        self.c: dict[str, int] = dict.fromkeys((
            "packets", "rtp_batches", "rtcp_packets", "sip_messages", "sip_errors", "sip_tcp_gaps", "rtp_packets",
            "rtp_unannounced", "sip_websocket_streams", "goip_sms", "dhcp", "dns", "signature_hits",
            "signature_unattributed", "evaluations", "server_role_skipped",
            "own_line_calls_skipped", "own_number_block_skipped", "few_calls_skipped",
            "single_line_skipped", "one_account_trunk_skipped", "called_back_skipped",
            "ledger_only_evaluations",
            "relay_rule_reports", "ledger_relay_reports",
            "model_batches", "detections", "endpoints_evicted_idle", "endpoints_evicted_full",
            "flows_evicted_idle", "flows_evicted_full", "media_evicted_full",
            "tcp_streams_evicted", "internal_errors"), 0)

    # ------------------------------------------------------------------ packets
    def feed(self, pkt: Packet | RtpBatch) -> Sequence[Detection]:
        ts = pkt.ts
        if ts > self.now:
            self.now = ts
        try:
            if type(pkt) is RtpBatch:
                self._rtp_batch(pkt)
            else:
                self.c["packets"] += 1
                self._packet(pkt, ts)  # type: ignore[arg-type]
        except Exception:  # a parser bug must cost one packet, never the agent
            self.c["internal_errors"] += 1
            if self.c["internal_errors"] <= 3:
                log.exception("ipplane: internal error on %s frame %s", pkt.source, pkt.frame)
        if self._sig_pending:
            return self._report_signatures(ts)
        return NOTHING

    def _report_signatures(self, now: float) -> list[Detection]:
        """Report endpoints not reported yet (or not within ``realert_s``) whose
        signature weight reached the bar, at the packet that completed the evidence
        (no model look: the next evaluation adds behaviour to later reports)."""
        out: list[Detection] = []
        rw = self.sigs.report_weight
        by_id = self.sigs.by_id
        for addr in self._sig_pending:
            ep = self.endpoints.get(addr)
            # only the first report is hurried: signatures that show up after it are
            # gathered into the next evaluation's report, as before, not one report each
            if ep is None or (ep.last_report is not None
                              and now - ep.last_report < self.s.realert_s):
                continue
            weight = sum(by_id[i].weight for i in ep.sig_hits if i in by_id)
            if weight < rw:
                continue
            ep.last_report = now
            ep.reported_sigs |= set(ep.sig_hits)
            out.append(self._detection(ep, now, weight, 0.0, []))
        self._sig_pending.clear()
        self.c["detections"] += len(out)
        return out

    def _packet(self, pkt: Packet, ts: float) -> None:
        p = pkt.payload
        eth = pkt.eth_src
        if eth is not None and self._ouis:
            sig = self._ouis.get(eth[:3])
            if sig is not None and pkt.src != "0.0.0.0":
                self._hit(pkt.src, sig, ts, _oui_only(eth))
        if pkt.proto == 17:
            if not p:
                return
            pre = self._prefixes.get(p[:self._plen])
            if pre is not None:
                self._prefix_hit(pkt, pre, ts)
                return
            call_id = self.media.get((pkt.dst, pkt.dport))
            if call_id is not None:
                self._rtp(pkt, p, ts, call_id)
                return
            head = p[:3]
            if head in SIP_PREFIXES:
                msg, _ = parse_message(p)
                if isinstance(msg, SipMessage):
                    self._sip(msg, pkt, ts)
                    return
                if isinstance(msg, SipError):
                    self.c["sip_errors"] += 1
            if head in GOIP_PREFIXES:
                sms = parse_goip_sms(p)
                if sms is not None:
                    self._goip_sms(sms.kind, sms.verb, pkt, ts)
                    return
            dport, sport = pkt.dport, pkt.sport
            if dport == 53:
                qn = dns_query_name(p)
                if qn is not None:
                    self.c["dns"] += 1
                    sig = self.sigs.match_dns(qn)
                    if sig is not None:
                        self._hit(pkt.src, sig, ts, qn)
                return
            if dport in (67, 68) and sport in (67, 68):
                self._dhcp(pkt, p, ts)
                return
            if p in CRLF_PINGS:
                self._endpoint(pkt.src, ts).ping(ts, pkt.dst, "crlf")
                return
            if self.s.track_unannounced_rtp and p[0] & 0xC0 == 0x80 and \
                    sport >= 1024 and dport >= 1024:
                self._rtp(pkt, p, ts, "")
            return
        if pkt.proto != 6:
            return
        if self._tcp_ports:
            sig = self._tcp_ports.get(pkt.dport)
            if sig is not None:
                self._hit(pkt.dst, sig, ts, f"tcp/{pkt.dport}")
            else:
                sig = self._tcp_ports.get(pkt.sport)
                if sig is not None:
                    self._hit(pkt.src, sig, ts, f"tcp/{pkt.sport}")
        key = (pkt.src, pkt.sport, pkt.dst, pkt.dport)
        st = self.tcp.get(key)
        if st is None:
            if pkt.dport in SMTP_PORTS and p:
                for text, sig in self.sigs.smtp_texts:
                    if text in p:
                        self._hit(pkt.src, sig, ts, text.decode("ascii", "replace"))
                return
            if not p:
                return
            st = SipStream() if p[:3] in SIP_PREFIXES else open_stream(p)
            if st is None:
                return
            if len(self.tcp) >= self.s.max_flows // 4:
                del self.tcp[next(iter(self.tcp))]
                self.c["tcp_streams_evicted"] += 1
            self.tcp[key] = st
            if type(st) is not SipStream:
                self.c["sip_websocket_streams"] += 1
        st.last_ts = ts
        if p:
            gaps = st.gaps
            for msg in st.feed(pkt.tcp_seq, p):
                self._sip(msg, pkt, ts)
            self.c["sip_tcp_gaps"] += st.gaps - gaps
        if pkt.tcp_flags & 0x05:  # FIN or RST: the stream is over
            self.tcp.pop(key, None)

    # ------------------------------------------------------------------ protocols
    def _endpoint(self, addr: str, ts: float) -> EndpointState:
        ep = self.endpoints.get(addr)
        if ep is None:
            if len(self.endpoints) >= self.s.max_endpoints:
                del self.endpoints[next(iter(self.endpoints))]
                self.c["endpoints_evicted_full"] += 1
            ep = self.endpoints[addr] = EndpointState(addr, ts, ts)
        else:
            ep.touch(ts)
        return ep

    def _hit(self, addr: str, sig: Signature, ts: float, detail: str) -> None:
        self.c["signature_hits"] += 1
        ep = self._endpoint(addr, ts)
        ep.hit(sig.id, ts, detail[:120])
        if sig.id not in ep.reported_sigs:
            self._sig_pending.add(addr)

    def _prefix_hit(self, pkt: Packet, sigs: list[Signature], ts: float) -> None:
        for sig in sigs:
            if (sig.sport is None or sig.sport == pkt.sport) and \
                    (sig.dport is None or sig.dport == pkt.dport) and \
                    (sig.proto is None or sig.proto == pkt.proto):
                if sig.side == "client":
                    addr = self._exchange_client(pkt)
                else:
                    addr = pkt.src if sig.side == "src" else pkt.dst
                self._hit(addr, sig, ts, f"udp {pkt.sport}->{pkt.dport}")

    def _exchange_client(self, pkt: Packet) -> str:
        """Which end of a request/reply exchange is the client: the one seen sending first
        (ports say nothing here: SIM-bank servers listen on high ports)."""
        key = (pkt.src, pkt.dst) if pkt.src < pkt.dst else (pkt.dst, pkt.src)
        client = self._clients.get(key)
        if client is None:
            if len(self._clients) >= 65536:
                self._clients.clear()
            client = self._clients[key] = pkt.src
        return client

    def _sip_client(self, src: str, dst: str, msg: SipMessage) -> str | None:
        """The registering side of a SIP exchange (the gateway, not its server), if known."""
        if msg.is_request and msg.method == "REGISTER":
            return src
        a, b = self.endpoints.get(src), self.endpoints.get(dst)
        a_srv = a is not None and bool(a.regs_in)
        b_srv = b is not None and bool(b.regs_in)
        if b_srv and not a_srv:
            return src
        if a_srv and not b_srv:
            return dst
        a_cli = a is not None and bool(a.reg_last)
        b_cli = b is not None and bool(b.reg_last)
        if a_cli and not b_cli:
            return src
        if b_cli and not a_cli:
            return dst
        return None

    def _goip_sms(self, kind: str, verb: str, pkt: Packet, ts: float) -> None:
        self.c["goip_sms"] += 1
        if kind == "keepalive":
            if len(self._sms_servers) < 4096:
                self._sms_servers[pkt.dst] = ts
            self._endpoint(pkt.src, ts).ping(ts, pkt.dst, "goip_sms")
        sig = self.sigs.goip_sms.get(kind)
        if sig is None:
            return
        addr = pkt.src if sig.side == "src" else pkt.dst
        if kind == "command" and pkt.dst in self._sms_servers:
            addr = pkt.src  # the gateway echoing a command verb in its reply
        self._hit(addr, sig, ts, f"{verb} udp {pkt.sport}->{pkt.dport}")

    def _dhcp(self, pkt: Packet, p: bytes, ts: float) -> None:
        d = parse_dhcp(p)
        if d is None:
            return
        self.c["dhcp"] += 1
        if d.op == 1 and d.vendor_class:
            sig = self.sigs.dhcp_vendors.get(d.vendor_class)
            if sig is not None:
                addr = pkt.src if pkt.src != "0.0.0.0" else (d.ciaddr if d.ciaddr != "0.0.0.0"
                                                             else d.requested)
                if addr and addr != "0.0.0.0":
                    self._hit(addr, sig, ts, "dhcp vendor class " + d.vendor_class.decode(
                        "ascii", "replace"))
                elif len(self._dhcp_pending) < 4096:
                    # the client has no address yet: wait for the server's offer/ack
                    self._dhcp_pending.setdefault(d.chaddr, []).append(
                        (sig, ts, "dhcp vendor class " + d.vendor_class.decode(
                            "ascii", "replace")))
        if eth_sig := (self._ouis.get(d.chaddr[:3]) if d.op == 1 and pkt.src == "0.0.0.0"
                       else None):
            if len(self._dhcp_pending) < 4096:
                self._dhcp_pending.setdefault(d.chaddr, []).append(
                    (eth_sig, ts, _oui_only(d.chaddr)))
        if d.op == 2 and d.yiaddr != "0.0.0.0":
            for sig, t0, detail in self._dhcp_pending.pop(d.chaddr, ()):
                self._hit(d.yiaddr, sig, t0, detail)

    def _sip(self, msg: SipMessage, pkt: Packet, ts: float) -> None:
        self.c["sip_messages"] += 1
        src, dst = pkt.src, pkt.dst
        a = self._endpoint(src, ts)
        b = self._endpoint(dst, ts)
        a.sip_messages += 1
        b.sip_messages += 1
        if pkt.tunnel is not None:  # context for the report: how it reached the mirror
            a.tunnel = pkt.tunnel
        a.peer(dst, ts)
        b.peer(src, ts)
        h = msg.headers
        for name, pat, sig in self.sigs.sip_headers:
            v = h.get(name)
            if v is not None and pat in v.lower():
                if sig.side == "client":
                    who = self._sip_client(src, dst, msg)
                    if who is None:
                        self.c["signature_unattributed"] += 1
                        continue
                else:
                    who = src if sig.side != "dst" else dst
                # the value may carry keys or addresses: evidence keeps the matched part
                self._hit(who, sig, ts, f"{name}: {pat}" if pat else name)
        if msg.body and (self.sigs.sdp_lines or self.sigs.sdp_regexes):
            self._sdp_sigs(msg.body, src, dst, ts)
        for ev in self.dialogs.on_message(msg, src, dst, ts):
            self._dialog_event(ev)

    def _sdp_sigs(self, body: bytes, src: str, dst: str, ts: float) -> None:
        text = body.decode("utf-8", "replace")
        lines = [ln.strip() for ln in text.splitlines()]
        for pat, sig in self.sigs.sdp_lines:
            if any(ln.startswith(pat) for ln in lines):
                self._hit(src if sig.side != "dst" else dst, sig, ts, pat)
        for rx, sig in self.sigs.sdp_regexes:
            for ln in lines:
                if rx.search(ln):
                    # not the line itself: an o= line carries the endpoint's address
                    self._hit(src if sig.side != "dst" else dst, sig, ts, sig.pattern)
                    break

    def _dialog_event(self, ev: object) -> None:
        if isinstance(ev, CallEvent):
            d = ev.dialog
            caller = self._endpoint(d.caller, ev.ts)
            callee = self._endpoint(d.callee, ev.ts)
            if ev.kind == "start":
                caller.call_start(d.call_id, ev.ts, False, d.to_user, d.from_user)
                callee.call_start(d.call_id, ev.ts, True, d.to_user, d.from_user,
                                  bool(self._trunk_lengths) and self._trunk_number(d.to_user))
            elif ev.kind == "answer":
                caller.call_answer(d.call_id, ev.ts)
                callee.call_answer(d.call_id, ev.ts)
            else:
                t_end = d.t_end if d.t_end is not None else ev.ts
                caller.call_end(d.call_id, t_end, not ev.timeout)
                callee.call_end(d.call_id, t_end, not ev.timeout)
                for key in self._media_of_call.pop(d.call_id, ()):
                    self._media_dying.append((ev.ts, key))
        elif isinstance(ev, MediaEvent):
            key = (ev.addr, ev.port)
            if len(self.media) >= self.s.max_flows:
                old = next(iter(self.media))
                del self.media[old]
                self.c["media_evicted_full"] += 1
            self.media[key] = ev.call_id
            self.media[(ev.addr, ev.port + 1)] = ev.call_id  # RTCP, RFC 3550 6.1
            keys = self._media_of_call.setdefault(ev.call_id, [])
            if len(keys) < 16:
                keys += [key, (ev.addr, ev.port + 1)]
        elif isinstance(ev, RegisterEvent):
            self._endpoint(ev.src, ev.ts).register(ev.ts, ev.aor, ev.user_agent, ev.expires)
            self._endpoint(ev.dst, ev.ts).regs_in.append((ev.ts, ev.aor))
        elif isinstance(ev, PingEvent):
            self._endpoint(ev.src, ev.ts).ping(ev.ts, ev.dst, ev.method)

    def _trunk_number(self, user: str) -> bool:
        """Whether a called number is one the operator routes to its business trunks
        (``trunk_numbers``: digit prefixes, longest first is not needed: any match)."""
        u = user.strip().lstrip("+")
        pre = self._trunk_prefixes
        return any(u[:n] in pre for n in self._trunk_lengths if n <= len(u))

    def _rtp(self, pkt: Packet, p: bytes, ts: float, call_id: str) -> None:
        hdr = rtp_header(p)
        if hdr is None:
            if call_id and is_rtcp(p):
                self.c["rtcp_packets"] += 1  # reports on the call's stream: counted
            return
        key = (pkt.src, pkt.sport, pkt.dst, pkt.dport)
        f = self.rtp.get(key)
        if f is None:
            if len(self.rtp) >= self.s.max_flows:
                self._finish_flow(next(iter(self.rtp)), full=True)
            f = self.rtp[key] = RtpFlow(ts, ts, call_id)
        elif call_id and not f.call_id:
            f.call_id = call_id
        self.c["rtp_packets"] += 1
        if not call_id:
            self.c["rtp_unannounced"] += 1
        f.add(ts, hdr[0], hdr[1], hdr[2], hdr[3], len(p))

    def _rtp_batch(self, b: RtpBatch) -> None:
        key = (b.src, b.sport, b.dst, b.dport)
        f = self.rtp.get(key)
        if f is None:
            if len(self.rtp) >= self.s.max_flows:
                self._finish_flow(next(iter(self.rtp)), full=True)
            call_id = self.media.get((b.dst, b.dport), "")
            f = self.rtp[key] = RtpFlow(b.first_ts, b.ts, call_id)
            if not call_id:
                self.c["rtp_unannounced"] += b.packets
        self.c["rtp_packets"] += b.packets
        self.c["rtp_batches"] += 1
        f.add_batch(b.first_ts, b.ts, b.payload_type, b.ssrc, b.packets, b.bytes, b.lost,
                    b.jitter_s)

    def _finish_flow(self, key: tuple[str, int, str, int], full: bool = False) -> None:
        f = self.rtp.pop(key)
        if full:
            self.c["flows_evicted_full"] += 1
        else:
            self.c["flows_evicted_idle"] += 1
        if f.call_id and f.packets >= 5:
            ep = self.endpoints.get(key[0])
            if ep is not None:
                ep.rtp_flow(f.last_ts, f.jitter_ms, f.loss_ratio)

    # ------------------------------------------------------------------ time
    def tick(self, now: float) -> Sequence[Detection]:
        last_seen = self.now
        if now > self.now:
            self.now = now
        if self._next_sweep is None:
            self._next_sweep = now + 5.0
            self._next_eval = now + self.s.eval_interval_s
        out: list[Detection] = self._report_signatures(now) if self._sig_pending else []
        if self.endpoints and now - last_seen > self.s.eval_interval_s:
            # Event time jumped over a gap in the input (a capture ended, another file
            # begins later): judge what was seen before the gap, at the time it was
            # seen, before idle eviction below forgets it.
            out += self._evaluate(last_seen)
        if now >= self._next_sweep:
            self._next_sweep = now + 5.0
            self._sweep(now)
        if self._next_eval is not None and now >= self._next_eval:
            self._next_eval = now + self.s.eval_interval_s
            out += self._evaluate(now)
        return out

    def flush(self, now: float) -> Sequence[Detection]:
        now = max(now, self.now)
        for key in list(self.rtp):
            self._finish_flow(key)
        for ev in self.dialogs.expire(now + 1e9):
            self._dialog_event(ev)
        return self._evaluate(now, final=True)

    def _sweep(self, now: float) -> None:
        for ev in self.dialogs.expire(now):
            self._dialog_event(ev)
        idle = [k for k, f in self.rtp.items() if now - f.last_ts > RTP_IDLE_S]
        for k in idle:
            self._finish_flow(k)
        if self._media_dying:
            keep = []
            for t, key in self._media_dying:
                if now - t > 30.0:
                    self.media.pop(key, None)
                else:
                    keep.append((t, key))
            self._media_dying = keep
        old_tcp = [k for k, st in self.tcp.items() if now - st.last_ts > self.s.idle_evict_s]
        for tk in old_tcp:
            del self.tcp[tk]
            self.c["tcp_streams_evicted"] += 1
        limit = now - max(self.s.idle_evict_s, self.s.window_s)
        gone = [a for a, ep in self.endpoints.items() if ep.last_ts < limit and not ep.active]
        for a in gone:
            del self.endpoints[a]
        self.c["endpoints_evicted_idle"] += len(gone)
        for a in [a for a, t in self._sms_servers.items() if now - t > self.s.idle_evict_s]:
            del self._sms_servers[a]

    # ------------------------------------------------------------------ judging
    def _evaluate(self, now: float, final: bool = False) -> list[Detection]:
        s = self.s
        rw = self.sigs.report_weight
        sig_ok: dict[str, float] = {}
        behave: list[EndpointState] = []
        # endpoints below the activity floor whose ledger alone already holds a relay's
        # calls: judged by the rules only (the model never scores such sparse rows)
        ledger_only: list[EndpointState] = []
        judging = self.model is not None or self.feature_sink is not None or \
            self.judged_sink is not None
        for ep in self.endpoints.values():
            if not ep.dirty:
                continue
            ep.dirty = False
            ep.prune(now, s.window_s, s.evidence_s)
            self.c["evaluations"] += 1
            weight = sum(self.sigs.by_id[i].weight for i in ep.sig_hits if i in self.sigs.by_id)
            if weight >= rw:
                sig_ok[ep.addr] = weight
            if judging and now - ep.first_ts >= s.min_observed_s:
                if ep.activity(now, s.window_s) >= s.min_activity:
                    behave.append(ep)
                elif ep.ledger and _ledger_relay_calls(
                        ep.ledger_counts(now, s.evidence_s)):
                    ledger_only.append(ep)
        probs: dict[str, tuple[float, list[float]]] = {}
        if behave and self.model is None:
            for ep in behave:
                row = ep.features(now, s.window_s)
                probs[ep.addr] = (0.0, row)
                if self.feature_sink is not None:
                    self.feature_sink(now, ep.addr, row)
        elif behave:
            x = np.array([ep.features(now, s.window_s) for ep in behave], dtype=np.float32)
            self.c["model_batches"] += 1
            pr = self.model.predict_proba(x)
            for ep, pv, row in zip(behave, pr, x, strict=True):
                probs[ep.addr] = (float(pv), [float(v) for v in row])
                if self.feature_sink is not None:
                    self.feature_sink(now, ep.addr, probs[ep.addr][1])
        scored = set(probs)
        for ep in ledger_only:
            self.c["ledger_only_evaluations"] += 1
            row32 = np.array(ep.features(now, s.window_s), dtype=np.float32)
            probs[ep.addr] = (0.0, [float(v) for v in row32])
        ledgers = {a: self.endpoints[a].ledger_counts(now, s.evidence_s) for a in probs}
        if self.judged_sink is not None:
            for a, (_p, row) in probs.items():
                self.judged_sink(now, a, row, ledgers[a], a in scored, final)
        if self.model is None:
            probs.clear()  # no model: signatures only (the rows went to the taps)
        out: list[Detection] = []
        for addr in list(sig_ok) + [a for a in probs if a not in sig_ok]:
            ep = self.endpoints[addr]
            prob, row = probs.get(addr, (0.0, []))
            led = ledgers.get(addr, (0, 0, 0, 0))
            by_sig = addr in sig_ok
            relay = bool(row) and relay_evidence(row, s.window_s)
            led_relay = bool(row) and not relay and ledger_relay(row, led)
            need = s.confirm_evals
            if addr in probs:
                # a look counts towards a report only when the rules let it through: a
                # score over the threshold on a row the rules veto is no judgement
                hit = prob >= s.threshold or relay or led_relay
                veto = behaviour_veto(row, s.window_s, led) if hit else None
                if veto is not None:
                    if not by_sig:
                        self.c[veto] += 1
                    hit = False
                ep.over = ep.over + 1 if hit else 0
                if final and hit and (relay or led_relay):
                    # the end of input: no later look will come, and the relay rules
                    # count calls (they do not swing between looks as a score may)
                    need = 1
            if not by_sig and ep.over < need:
                continue
            new_sigs = set(ep.sig_hits) - ep.reported_sigs
            if ep.last_report is not None and not new_sigs and \
                    now - ep.last_report < s.realert_s:
                continue
            ep.last_report = now
            ep.reported_sigs |= set(ep.sig_hits)
            if (relay or led_relay) and not by_sig:
                self.c["relay_rule_reports"] += 1
                if led_relay:
                    self.c["ledger_relay_reports"] += 1
            out.append(self._detection(ep, now, sig_ok.get(addr, 0.0), prob, row, relay,
                                       led if led_relay else None))
        self.c["detections"] += len(out)
        return out

    def _detection(self, ep: EndpointState, now: float, weight: float, prob: float,
                   row: list[float], relay: bool = False,
                   ledger: tuple[int, int, int, int] | None = None) -> Detection:
        ev: list[Evidence] = []
        for sid, h in sorted(ep.sig_hits.items(), key=lambda kv: kv[1].first_ts):
            sig = self.sigs.by_id.get(sid)
            if sig is None:
                continue
            ev.append(Evidence(sig.reason, {"signature": sid, "weight": sig.weight,
                                            "count": h.count, "first_ts": round(h.first_ts, 6),
                                            "detail": h.detail,
                                            "signatures_version": self.sigs.version}))
        if ep.tunnel is not None:
            ev.append(Evidence("seen inside a tunnel: the addresses are the inner packet's",
                               {"tunnel": ep.tunnel}))
        model_info: ModelInfo | None = None
        if row:
            feats: dict[str, float | int | str | bool | None] = {"score": round(prob, 4)}
            feats.update(self._top_features(row))
            threshold = self.s.threshold
            if prob >= threshold:
                # the model decided: the report names it (as the call plane does)
                model_info = self.model.info
                ev.append(Evidence(f"behaviour over the last {int(self.s.window_s)} s looks "
                                   f"like a GoIP/SIM-box (model score {prob:.2f})", feats))
            else:
                # a signature or the relay rule decided; the model's view is context only
                feats["threshold"] = round(threshold, 4)
                ev.append(Evidence(f"behaviour model score over the last "
                                   f"{int(self.s.window_s)} s {prob:.4f}, below its threshold "
                                   f"{threshold:.4f} (not what decided)", feats))
        if relay:
            ev.append(Evidence(
                "relay: the calls INVITEd to it ring a fresh public number each time, none "
                "of its own, over several lines of one device carrying one call each",
                {"rule": "relay", **{f: round(row[_F[f]], 4) for f in RELAY_FEATURES}}))
            prob = max(prob, RELAY_SCORE)
        if ledger is not None:
            ev.append(Evidence(
                f"relay: over the last {int(self.s.evidence_s)} s every call INVITEd to it "
                "rang a fresh public number, none of its own, over several lines of one "
                "device carrying one call each",
                {"rule": "relay_ledger", "calls_in": ledger[0], "to_own_users": ledger[1],
                 "fresh_numbers": ledger[2],
                 **{f: round(row[_F[f]], 4) for f in RELAY_FEATURES}}))
            prob = max(prob, RELAY_SCORE)
        score = max(min(1.0, weight), prob)
        severity = "high" if weight >= self.sigs.report_weight or prob >= 0.97 else "medium"
        related = [Subject("ip", a) for a, _ in sorted(ep.peers.items(),
                                                         key=lambda kv: -kv[1])[:3]]
        return Detection(ts=now, kind=KIND, severity=severity, score=round(score, 4),
                         subject=Subject("ip", ep.addr), evidence=ev, route=list(ROUTE),
                         model=model_info, related=related, detector=self.name)

    def _top_features(self, row: list[float], k: int = 6) -> dict[str, float]:
        """The k features furthest (in benign standard deviations) from ordinary VoIP."""
        c = self.model.contract if self.model is not None else {}
        mean = c.get("benign_mean") or [0.0] * len(FEATURES)
        std = c.get("benign_std") or [1.0] * len(FEATURES)
        z = [(abs(v - m) / (sd if sd > 1e-6 else 1.0), i)
             for i, (v, m, sd) in enumerate(zip(row, mean, std, strict=False))]
        z.sort(reverse=True)
        return {FEATURES[i]: round(row[i], 4) for _, i in z[:k]}

    def counters(self) -> dict[str, int | float]:
        out: dict[str, int | float] = dict(self.c)
        out["endpoints"] = len(self.endpoints)
        out["dialogs"] = len(self.dialogs.dialogs)
        out["rtp_flows"] = len(self.rtp)
        out["tcp_streams"] = len(self.tcp)
        out["media_ports"] = len(self.media)
        out["dialogs_evicted_full"] = self.dialogs.evicted_full
        out["dialogs_timed_out"] = self.dialogs.evicted_timeout
        out["sip_retransmissions"] = self.dialogs.retransmissions
        return out


RELAY_FEATURES = ("lines", "ua_families", "in_share", "own_in_share", "in_callee_ratio",
                  "identity_concurrency", "concurrent_per_line", "internal_share")
RELAY_SCORE = 0.9  # the score a report by the relay rule carries when the model's is lower


def _calls_in(row: Sequence[float], window_s: float) -> tuple[float, float]:
    """(calls started in the window, of which came in) from a feature row."""
    started = row[_F["calls_per_min"]] * window_s / 60.0
    return started, row[_F["in_share"]] * started


def relay_evidence(row: Sequence[float], window_s: float) -> bool:
    """The relay rule: what domain.md says a scam relay does and no phone, office, PBX or
    dialler does together. The softswitch INVITEs the gateway (at least 3 calls came in)
    to ring numbers that are none of its own (no call to a user it registered, every
    call to another number block, none to a short extension), over two or more lines of
    one device (one User-Agent product), each line one call at a time."""
    _started, inbound = _calls_in(row, window_s)
    return (row[_F["lines"]] >= 2 and row[_F["ua_families"]] <= 1 and inbound >= 2.5
            and row[_F["own_in_share"]] == 0.0 and row[_F["in_callee_ratio"]] >= 0.9
            and row[_F["identity_concurrency"]] <= 1 and row[_F["concurrent_per_line"]] <= 1
            and row[_F["internal_share"]] == 0.0)


def _ledger_relay_calls(led: Sequence[int]) -> bool:
    """The ledger holds a relay's calls: 3 or more came in and every one rang a fresh
    public number (none to its own users, no number block twice, no extension)."""
    n_in, fresh = led[0], led[2]
    return fresh >= MIN_CALLS and fresh == n_in


def ledger_relay(row: Sequence[float], led: Sequence[int]) -> bool:
    """The relay rule over the ledger (``evidence_s``): ``LEDGER_RELAY_CALLS`` or more
    calls came in over the ledger and every one rang a fresh public number (none to its
    own users, no number block twice, no extension), on a device of 2 or more lines of
    one User-Agent product, each identity one call at a time, over the window.

    Since 2026-12-04 (issue 13) the device's shape is read from its identities: a box
    re-registering every 2-15 minutes shows fewer registered lines in ten minutes than
    it has lines carrying calls, so calls at once per line seen registering is no
    measure of it, while one call at a time per identity (From of a call placed, called
    user of a call received) is. And the window's "no extension dialled" is left out:
    what a box dials itself may be a short number (a victim's call-back forwarded to
    the line's user), and the calls that came in, over the ledger, already rang none.
    The window's few-calls veto still holds unless ``MIN_CALLS`` fresh calls came in
    over the ledger."""
    n_in, fresh = led[0], led[2]
    return (fresh >= LEDGER_RELAY_CALLS and fresh == n_in and row[_F["lines"]] >= 2
            and row[_F["ua_families"]] <= 1 and row[_F["identity_concurrency"]] <= 1)


def behaviour_veto(row: Sequence[float], window_s: float = 600.0,
                   ledger: Sequence[int] = (0, 0, 0, 0)) -> str | None:
    """Why a behaviour score must not report this endpoint (the counter to bump), or None.

    What a GoIP cannot be: a server (it takes registrations and makes none: the
    registrar or softswitch, the gateway's peer); an address that is called on its own
    numbers. A relay is INVITEd to ring numbers that are not its own (the victims, a
    fresh one each call); phones, offices of phones behind one NAT address and PBXes are
    called on the users they registered (half or more of the calls they receive), and a
    PBX's calls come again and again to its DID block (4 or more calls in, at most one
    number block per two calls). The same holds over the call ledger (``ledger``:
    calls in, to its own users, to fresh numbers over ``evidence_s``): called on its own
    users for half or more of them. An address with fewer than ``MIN_CALLS`` calls in
    the window gives no call behaviour to judge (unless its ledger holds a relay's
    calls), one line with one call at a time is what any phone does, and one account
    (or none) carrying several calls at once that it mostly placed itself is a trunk
    or a dialler: a SIM line carries one call, and a relay is handed its calls.

    The DID block over the ledger: ``MIN_CALLS`` or more calls came in over
    ``evidence_s`` and half or more of them went to numbers it is called on again (a
    number block another incoming call of the ledger also went to: its DIDs, also when
    they are scattered; or a user it registered, or an extension), not to a fresh
    public number. A relay is asked to ring a victim's number, a fresh one every call;
    a trunk's callers keep dialling the company's numbers, and the window alone may
    hold too few calls to show it.

    Called back (the ledger's fourth count, optional): ``CALLED_BACK`` or more distinct
    public numbers over ``evidence_s`` both called this address and were called by it.
    People and companies call back the numbers that called them and are called back by
    the numbers they called; a relay is handed calls by its softswitch to ring victims
    for it, and what it dials out itself (a victim calling a SIM back, forwarded) goes
    to its softswitch, not to the callers of its relayed calls."""
    if row[_REGS_IN] > 0 and row[_LINES] == 0:
        return "server_role_skipped"
    n_in, n_own, fresh = ledger[0], ledger[1], ledger[2]
    if row[_OWN_IN] >= 0.5 or (n_in > 0 and 2 * n_own >= n_in):
        return "own_line_calls_skipped"
    started, inbound = _calls_in(row, window_s)
    if inbound >= 3.5 and row[_F["in_callee_ratio"]] <= 0.5:
        # the calls it receives keep coming to the same numbers (a DID block): its own
        return "own_number_block_skipped"
    if n_in >= MIN_CALLS and 2 * (n_in - fresh) >= n_in:
        # the same over the ledger: half of its calls in went to numbers called again
        return "own_number_block_skipped"
    if len(ledger) > 3 and ledger[3] >= CALLED_BACK:
        return "called_back_skipped"
    if started < MIN_CALLS - 0.5 and not _ledger_relay_calls(ledger):
        return "few_calls_skipped"
    if row[_LINES] <= 1 and row[_F["max_concurrent"]] <= 1:
        # one line carrying one call at a time is one phone's behaviour: a masked box
        # shows itself by several lines or by calls in parallel (domain.md)
        return "single_line_skipped"
    if row[_LINES] <= 1 and row[_F["in_share"]] < 0.5:
        # several calls at once on one registered account or none, placed by itself
        return "one_account_trunk_skipped"
    return None


def _oui_only(mac: bytes) -> str:
    """The vendor part of a MAC address; the device part stays out of reports."""
    return mac[:3].hex(":") + ":xx:xx:xx"


def load_default_model(path: Path | None = None, cfg: Any = None, store: Any = None) -> Any:
    """The packaged models/ipplane model (or ``path``, a model.onnx beside its
    model.json), verified under the config's signature policy; through the model store
    when given (updatable over the downlink, watched for drift)."""
    from edge.config import Config
    from edge.telecom.ipplane.endpoint import FEATURES
    from models.loader import MODELS_DIR, load_configured

    folder = path.parent if path is not None else MODELS_DIR / "ipplane"
    if store is not None and (path is None or path.name == "model.onnx"):
        return store.open("ipplane", folder, FEATURES)
    return load_configured(folder, cfg or Config(), expect_features=FEATURES, onnx_path=path)
