"""The ``bridge`` domain: sources and the ``station`` actuator over the firmware links.

``run``: a configured ``bridge.base_station_port`` gives a source of BaseStationEvent
records (the call plane consumes them as from a file); ``bridge.station_port`` a
source of PhotoEyeEvent records and the ``station`` actuator (divert commands). Replay
and demo have no devices: divert commands then go to a dry-run ``station``.
Importing this module (done whenever a config is parsed) imports neither the codec
nor the transports; the builders do, and only when a port is configured.
"""

from __future__ import annotations

from typing import Any

from edge.domains import AssemblyContext, Domain
from edge.errors import ConfigError
from firmware_bridge.config import BridgeSection, read_key

_CLIENTS = "_bridge_clients"


def _clients(ctx: AssemblyContext) -> dict[str, Any]:
    """The link clients of this assembly, made once (sources and actuator share the
    station link)."""
    got = ctx.__dict__.get(_CLIENTS)
    if got is not None:
        return got  # type: ignore[no-any-return]
    sec: BridgeSection = ctx.cfg.section("bridge")
    clients: dict[str, Any] = {}
    if ctx.live and (sec.base_station_port or sec.station_port):
        from drivers.transport.factory import open_transport
        from firmware_bridge import messages as M
        from firmware_bridge.client import BridgeClient
        from firmware_bridge.codec import LinkKey

        ports = {"base_station": (sec.base_station_port, M.ROLE_BASE_STATION),
                 "station": (sec.station_port, M.ROLE_STATION)}
        key = None
        if sec.key_file is not None:
            try:
                key = LinkKey(read_key(sec.key_file), link_id=0, window_s=sec.auth_window_s)
            except (OSError, ValueError) as exc:
                raise ConfigError(str(exc), key="bridge.key_file") from None
        elif not sec.allow_unsigned:
            raise ConfigError("bridge links need key_file (or allow_unsigned = true in a "
                              "lab)", key="bridge.key_file")
        for name, (port, role) in ports.items():
            if port:
                transport = open_transport(port, baudrate=sec.baudrate) \
                    if not port.startswith(("tcp://", "udp")) else open_transport(port)
                clients[name] = BridgeClient(name, transport, peer_role=role, key=key,
                                             require_auth=sec.require_auth if key else False,
                                             link_options=sec.link_options())
    ctx.__dict__[_CLIENTS] = clients
    return clients


def build_sources(ctx: AssemblyContext) -> list[Any]:
    cl = _clients(ctx)
    if not cl:
        return []
    from firmware_bridge.source import BridgeSource

    return [BridgeSource(c, owns_client=name != "station") for name, c in cl.items()]


def build_stages(ctx: AssemblyContext) -> list[Any]:
    return []


def build_actuators(ctx: AssemblyContext) -> list[Any]:
    c = _clients(ctx).get("station")
    if c is None:
        from edge.actuators import DryRunActuator

        return [DryRunActuator("station")] if not ctx.live else []
    from firmware_bridge.actuator import StationActuator

    sec: BridgeSection = ctx.cfg.section("bridge")
    return [StationActuator(c, result_grace_s=sec.result_grace_s)]


def _has_live(cfg: Any) -> bool:
    sec = cfg.section("bridge")
    return bool(sec.base_station_port or sec.station_port)


DOMAIN = Domain(name="bridge", build_sources=build_sources, build_stages=build_stages,
                build_actuators=build_actuators, config_key="bridge",
                config_type=BridgeSection, has_live_inputs=_has_live)
