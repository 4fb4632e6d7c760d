"""The telecom domain: base-station events and backhaul packets in, SIM-box / GoIP
detections out.

Sources: event JSONL files (``inputs.events.files`` + ``--events``; followed in
``run`` when ``inputs.events.follow``), pcap files (``inputs.pcap.files`` +
``--pcap``), and in ``run`` only the UDP event listener, live capture and the HEP
listener (``inputs.hep.listen``: SIP/RTCP from SIP probes). Stages, in
routing order: the frame decoder (for sources handing over raw frames), the call
plane, the IP plane, the watchlist matcher. Heavy imports happen in the builders, so
importing this module (done when a config is parsed) stays cheap.
"""

from __future__ import annotations

from typing import Any

from edge.domains import AssemblyContext, Domain
from edge.errors import ConfigError


def build_sources(ctx: AssemblyContext) -> list[Any]:
    from drivers.capture.fastpcap import FastPcapSource
    from drivers.events.sources import JsonlEventFile

    cfg = ctx.cfg
    follow = ctx.live and cfg.inputs.events.follow
    ev = cfg.inputs.events
    srcs: list[Any] = [JsonlEventFile(p, follow=follow, max_line=ev.max_line_bytes)
                       for p in ctx.files("events", cfg.inputs.events.files)]
    srcs += [FastPcapSource(p) for p in ctx.files("pcap", cfg.inputs.pcap.files)]
    if not ctx.live:
        return srcs
    if ev.udp_listen:
        from drivers.events.sources import UdpEventListener

        _listen(srcs, ev.udp_listen, "inputs.events.udp_listen",
                lambda h, p: UdpEventListener(h, p, rcvbuf=ev.udp_rcvbuf_bytes,
                                              max_line=ev.max_line_bytes))
    hep = cfg.inputs.hep
    if hep.listen:
        from drivers.capture.hep import HepListener

        _listen(srcs, hep.listen, "inputs.hep.listen",
                lambda h, p: HepListener(h, p, rcvbuf=hep.rcvbuf_bytes, auth_key=hep.auth_key))
    if cfg.inputs.capture.interface:
        from drivers.capture.live import open_live_source

        srcs.append(open_live_source(cfg.inputs.capture))
    return srcs


def _listen(srcs: list[Any], addr: str, key: str, make: Any) -> None:
    """Open one listening source on ``addr`` (host:port); on failure close what was
    opened already and name the config key."""
    from drivers.events.sources import parse_listen

    try:
        host, port = parse_listen(addr)
        srcs.append(make(host, port))
    except (ValueError, OSError) as exc:
        for s in srcs:
            s.close()
        raise ConfigError(f"cannot listen on {addr}: {exc}", key=key) from None


def build_stages(ctx: AssemblyContext) -> list[Any]:
    from drivers.capture.stage import FrameDecoderStage
    from edge.telecom.callplane.build import build_stages as callplane
    from edge.telecom.ipplane.build import build_stages as ipplane

    stages: list[Any] = [FrameDecoderStage()]
    # The call plane reads its section of the pipeline's config copy at use time, so
    # threshold and min_calls changes reach it as applied (on the pipeline thread).
    stages += callplane(ctx.cfg, ctx.model_store)
    ip = ipplane(ctx.cfg, ctx.model_store)
    for det in ip:
        _follow_ipplane_threshold(ctx, det)
    stages += ip
    wl = ctx.cfg.detectors.watchlist
    if wl.enabled and ctx.watchlist is not None:
        from edge.watchlist.matcher import WatchlistMatcher

        # the call plane folds each run first: its SIM states carry the matcher's
        # stamps, so a SIM's IMSI and device are looked at once per list version
        cp = next((s for s in stages if s.name == "callplane"), None)
        stages.append(WatchlistMatcher(ctx.watchlist, ctx.pseudonymiser,
                                       realert_s=wl.realert_s,
                                       sims=cp.tables if cp is not None else None))
        rs = ctx.cfg.response
        if rs.enabled:
            from edge.watchlist.audit import AuditLog
            from edge.watchlist.response import ResponseStage

            stages.append(ResponseStage(
                # replays keep their own chain: the live audit log holds live actions only
                AuditLog(ctx.cfg.agent.data_dir / ("audit.jsonl" if ctx.live
                                                   else "audit-replay.jsonl")),
                rules=rs.rules,
                dry_run=rs.dry_run, block_ttl_s=rs.block_ttl_s,
                divert_deadline_s=rs.divert_deadline_s,
                pseudonymise=ctx.pseudonymiser.pseudonym))
    if ctx.cfg.detectors.warning.enabled:
        from edge.watchlist.warning import VictimWarningStage

        w = ctx.cfg.detectors.warning
        stages.append(VictimWarningStage(window_s=w.window_s, recent_s=w.recent_s,
                                         device_sources=w.device_sources))
    return stages


def has_live_inputs(cfg: Any) -> bool:
    """A live input of this domain beyond the core ones preflight knows (HEP)."""
    return bool(cfg.inputs.hep.listen)


def build_actuators(ctx: AssemblyContext) -> list[Any]:
    rs = ctx.cfg.response
    if not rs.enabled:
        return []
    from edge.watchlist.nft import NftablesActuator

    return [NftablesActuator(table=rs.nft_table, dry_run=rs.dry_run)]


def _follow_ipplane_threshold(ctx: AssemblyContext, det: Any) -> None:
    """The IP-plane detector copies its settings at build time: it subscribes to the
    runtime key (None = back to the running model's own threshold)."""
    if ctx.settings is None:
        return

    def apply(changes: dict[str, Any]) -> None:
        thr = changes["detectors.ipplane.threshold"]
        if thr is None:
            model = det.model
            thr = float(model.contract["threshold"]) if model is not None and \
                "threshold" in model.contract else 0.9
        det.s.threshold = float(thr)

    ctx.settings.subscribe(["detectors.ipplane.threshold"], apply)


DOMAIN = Domain(name="telecom", build_sources=build_sources, build_stages=build_stages,
                build_actuators=build_actuators, input_kinds=("events", "pcap"),
                has_live_inputs=has_live_inputs)
