"""The courier depot as a domain plug-in (edge/domains.py): ``DOMAIN``.

``run``: one source per configured serial device and one for the X-ray folder (the
``[depot]`` table), optionally recording everything to ``record_dir``. ``replay``:
one source per recording folder given with ``edge-agent replay --depot DIR``.
Either way the parcel assembly stage of the lane turns the readings into ``Parcel``
records for the decision stages. Nothing is built when the table configures no
device and no recording is given, so other domains' agents are unchanged; nor is
anything imported then (this module is imported whenever a config is parsed: the
drivers, the assembly and PIL are imported by the builders, and only when used).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge.config import Config
from edge.courier.config import DepotSection
from edge.domains import AssemblyContext, Domain

#: Extra stages on the parcels (decision stages of issue 12): ``fn(ctx, sec) -> stages``.
PARCEL_STAGE_BUILDERS: list[Any] = []


def _decision_stages(ctx: AssemblyContext, sec: DepotSection) -> list[Any]:
    """The parcel decision stage (issue 12): image model + rules, reports, diverts."""
    from edge.courier.decide import build_stage

    return [build_stage(ctx)] if sec.decide_enabled else []


PARCEL_STAGE_BUILDERS.append(_decision_stages)


def _section(cfg: Config) -> DepotSection:
    sec: DepotSection = cfg.section("depot")
    return sec


def has_live_inputs(cfg: Config) -> bool:
    sec = _section(cfg)
    return bool(sec.scanner_port or sec.scale_port or sec.dims_port or sec.rfid_port
                or sec.xray_dir)


def _recordings(ctx: AssemblyContext) -> list[Path]:
    return [] if ctx.live else list(ctx.inputs.get("depot", ()))


def build_sources(ctx: AssemblyContext) -> list[Any]:
    sec = _section(ctx.cfg)
    if not ctx.live:
        if not _recordings(ctx):
            return []
        from edge.courier.replay import DepotReplaySource

        return [DepotReplaySource(p, sidecar_wait_s=sec.sidecar_wait_s,
                                  mm_per_px=sec.xray_mm_per_px, belt_mps=sec.belt_mps)
                for p in _recordings(ctx)]
    if not has_live_inputs(ctx.cfg):
        return []
    return _live_sources(sec)


def _live_sources(sec: DepotSection) -> list[Any]:
    from drivers.recording import Recorder
    from drivers.serial.device import SerialDeviceSource
    from drivers.transport.factory import open_transport
    from drivers.transport.reconnect import ReconnectingReader
    from drivers.xray.core import XrayCore
    from drivers.xray.watcher import FolderWatcher, XrayFolderSource
    from edge.courier.station import device_options, make_core, poll_bytes

    opts = device_options(sec)
    recorder = Recorder(sec.record_dir, sec.lane, opts, sec.waybills) \
        if sec.record_dir is not None else None
    ports = {"scanner": sec.scanner_port, "scale": sec.scale_port, "dims": sec.dims_port,
             "rfid": sec.rfid_port}
    polls = {"scale": sec.scale_poll_s, "dims": sec.dims_poll_s, "rfid": sec.rfid_poll_s}
    srcs: list[Any] = []
    for dev, o in opts.items():
        reader = ReconnectingReader(open_transport(ports[dev], baudrate=sec.baudrate))
        srcs.append(SerialDeviceSource(f"depot.{dev}", reader, make_core(dev, sec.lane, o),
                                       poll=poll_bytes(dev, o), poll_s=polls.get(dev, 0.2),
                                       recorder=None if recorder is None
                                       else recorder.streams[dev]))
    if sec.xray_dir is not None:
        core = XrayCore(sec.lane, folder=sec.xray_dir, sidecar_wait_s=sec.sidecar_wait_s,
                        mm_per_px=sec.xray_mm_per_px, belt_mps=sec.belt_mps,
                        source="depot.xray")
        srcs.append(XrayFolderSource(FolderWatcher(sec.xray_dir, core), poll_s=sec.xray_poll_s,
                                     on_file=None if recorder is None else recorder.xray_file))
    if recorder is not None and srcs:
        srcs[-1] = _ClosesRecorder(srcs[-1], recorder)
    return srcs


class _ClosesRecorder:
    """Wraps the last source so that closing the agent's sources closes the recording."""

    def __init__(self, inner: Any, recorder: Any) -> None:
        self._inner, self._recorder = inner, recorder
        self.name = inner.name

    def __iter__(self) -> Any:
        return iter(self._inner)

    def counters(self) -> dict[str, int | float]:
        return dict(self._inner.counters())

    def close(self) -> None:
        self._inner.close()
        self._recorder.close()


def build_stages(ctx: AssemblyContext) -> list[Any]:
    sec = _section(ctx.cfg)
    lanes: dict[str, Path | None] = {}
    if ctx.live:
        if has_live_inputs(ctx.cfg):
            lanes[sec.lane] = sec.waybills
    elif _recordings(ctx):
        from drivers.recording import read_manifest

        for folder in _recordings(ctx):
            try:
                lane = str(read_manifest(folder).get("lane", sec.lane))
            except ValueError:
                continue  # the source reports the unreadable recording
            recorded = folder / "waybills.jsonl"
            lanes.setdefault(lane, recorded if recorded.exists() else sec.waybills)
    if not lanes:
        return []
    from edge.courier.assembly import AssemblyStage, Geometry, ParcelAssembler
    from edge.courier.waybills import WaybillStore

    stages: list[Any] = []
    geo = Geometry.from_section(sec)
    for lane, wb_path in lanes.items():
        store = WaybillStore(wb_path, sec.waybills_refresh_s)
        stages.append(AssemblyStage(ParcelAssembler(lane, geo, store.get), store,
                                    name=f"depot.assembly.{lane}"))
    if stages and sec.parcels_out is not None:
        from edge.courier.parcel_log import ParcelLog

        stages.append(ParcelLog(sec.parcels_out))
    if stages:
        for builder in PARCEL_STAGE_BUILDERS:
            stages += builder(ctx, sec)
    return stages


def preflight(cfg: Config, probe: bool) -> list[Any]:
    """What ``run`` would trip over on this machine (``probe``; without it, for a config
    prepared for another station, nothing here is checked): a missing X-ray folder or
    waybill export, a port path that does not exist, a port that cannot be opened now."""
    from edge.ops.preflight import Problem

    sec = _section(cfg)
    out: list[Problem] = []
    if not probe:
        return out
    if sec.xray_dir is not None and not sec.xray_dir.is_dir():
        out.append(Problem("depot.xray_dir", f"not a folder: {sec.xray_dir}"))
    if sec.waybills is not None and not sec.waybills.is_file():
        out.append(Problem("depot.waybills", f"file not found: {sec.waybills}"))
    for dev in ("scanner", "scale", "dims", "rfid"):
        port = getattr(sec, f"{dev}_port")
        if not port:
            continue
        key = f"depot.{dev}_port"
        if port.startswith("/") and not Path(port).exists():
            out.append(Problem(key, f"no such device: {port} (unplugged?)"))
            continue
        from drivers.transport.factory import open_transport
        from edge.errors import TransportError

        t = open_transport(port, baudrate=sec.baudrate)
        try:
            t.open()
        except TransportError as exc:
            out.append(Problem(key, str(exc)))
        finally:
            t.close()
    return out


DOMAIN = Domain(name="depot", build_sources=build_sources, build_stages=build_stages,
                config_key="depot", config_type=DepotSection, input_kinds=("depot",),
                has_live_inputs=has_live_inputs, preflight=preflight)
