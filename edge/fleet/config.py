"""The collector's configuration: a TOML file with a ``[fleet]`` table, read once.

Every key has a default, so ``edge-fleet collect --dsn ... --mqtt-host ...`` runs
without a file. Unknown keys and values of the wrong type are a :class:`ConfigError`
naming the key. ``docs/fleet.md`` lists the keys.
"""

from __future__ import annotations

import socket
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from edge.errors import ConfigError


@dataclass(slots=True, frozen=True)
class FleetMqtt:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls_ca_file: str | None = None      # set to use TLS
    tls_cert_file: str | None = None    # client certificate (mTLS)
    tls_key_file: str | None = None
    topic_prefix: str = "afe/v1"
    share_group: str = "afe-collectors"  # collectors in one group split the load
    client_id: str = ""                  # default afe-collector-<hostname>; stable per instance
    session_expiry_s: int = 7 * 86400    # how long the broker keeps this member's queue
    receive_max: int = 1000              # unacknowledged messages the broker may send
    keepalive_s: int = 30


@dataclass(slots=True, frozen=True)
class FleetDb:
    dsn: str = "host=127.0.0.1 port=5432 dbname=fleet"
    batch_max: int = 500                 # messages per transaction
    batch_wait_s: float = 0.02           # how long a batch waits to fill
    retry_base_s: float = 0.2
    retry_cap_s: float = 10.0


@dataclass(slots=True, frozen=True)
class FleetHealth:
    silent_after_s: float = 180.0        # no heartbeat for this long: box.silent
    backlog_depth: int = 1000            # outbox depth at or above: box.backlog
    backlog_age_s: float = 3600.0        # oldest pending report older than: box.backlog
    offline_alert: bool = True           # raise box.offline for a lost (will) offline


@dataclass(slots=True, frozen=True)
class FleetHousekeeping:
    every_s: float = 10.0                # health sweep period (one collector at a time)
    partitions_every_s: float = 3600.0
    partitions_ahead_days: int = 7
    partitions_back_days: int = 2


@dataclass(slots=True, frozen=True)
class FleetDesk:
    listen: str = ""                     # "127.0.0.1:8080" serves the desks; "" = off
    session_idle_s: float = 8 * 3600.0
    secure_cookies: bool = False         # set when served behind HTTPS
    correlation_days: int = 7            # how far back cases are grouped


@dataclass(slots=True, frozen=True)
class FleetConfig:
    name: str = ""                       # instance name in logs and rows; default hostname
    mqtt: FleetMqtt = field(default_factory=FleetMqtt)
    db: FleetDb = field(default_factory=FleetDb)
    health: FleetHealth = field(default_factory=FleetHealth)
    housekeeping: FleetHousekeeping = field(default_factory=FleetHousekeeping)
    desk: FleetDesk = field(default_factory=FleetDesk)

    @property
    def instance(self) -> str:
        return self.name or socket.gethostname()

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"afe-collector-{self.instance}"


def _section(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    kw: dict[str, Any] = {}
    for key, value in data.items():
        f = known.get(key)
        if f is None:
            raise ConfigError(f"unknown key {where}.{key}", key=f"{where}.{key}")
        default = getattr(cls(), key)
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            value = float(value)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:  # str or optional str
            ok = isinstance(value, str)
        if not ok:
            raise ConfigError(f"{where}.{key} has the wrong type ({type(value).__name__})",
                              key=f"{where}.{key}")
        kw[key] = value
    return cls(**kw)


def load_fleet_config(path: Path | None) -> FleetConfig:
    """The [fleet] table of a TOML file (defaults where a key is missing)."""
    if path is None:
        return FleetConfig()
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    top = doc.get("fleet", {})
    if not isinstance(top, dict):
        raise ConfigError("[fleet] must be a table", key="fleet")
    subs = {"mqtt": FleetMqtt, "db": FleetDb, "health": FleetHealth,
            "housekeeping": FleetHousekeeping, "desk": FleetDesk}
    kw: dict[str, Any] = {}
    for key, value in top.items():
        if key in subs:
            if not isinstance(value, dict):
                raise ConfigError(f"[fleet.{key}] must be a table", key=f"fleet.{key}")
            kw[key] = _section(subs[key], value, f"fleet.{key}")
        elif key == "name":
            if not isinstance(value, str):
                raise ConfigError("fleet.name must be a string", key="fleet.name")
            kw[key] = value
        else:
            raise ConfigError(f"unknown key fleet.{key}", key=f"fleet.{key}")
    return FleetConfig(**kw)


def with_overrides(cfg: FleetConfig, *, dsn: str | None = None, mqtt_host: str | None = None,
                   mqtt_port: int | None = None, name: str | None = None,
                   listen: str | None = None) -> FleetConfig:
    """The config with the command line's overrides applied."""
    if dsn is not None:
        cfg = replace(cfg, db=replace(cfg.db, dsn=dsn))
    if mqtt_host is not None:
        cfg = replace(cfg, mqtt=replace(cfg.mqtt, host=mqtt_host))
    if mqtt_port is not None:
        cfg = replace(cfg, mqtt=replace(cfg.mqtt, port=mqtt_port))
    if name is not None:
        cfg = replace(cfg, name=name)
    if listen is not None:
        cfg = replace(cfg, desk=replace(cfg.desk, listen=listen))
    return cfg
