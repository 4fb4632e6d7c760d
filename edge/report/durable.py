"""The durable report sink as configured: outbox, MQTT link, presence identity and the
downlink handler (with its watchlist and runtime-config stores), built from a
:class:`~edge.config.Config`. Used by :func:`edge.assembly.make_sinks`."""

from __future__ import annotations

from pathlib import Path

from edge.config import Config, OutboxSection
from edge.report.link import MqttLink
from edge.report.outbox import Outbox
from edge.report.presence import Identity, config_hash, default_versions


def build_link(cfg: Config) -> MqttLink:
    """The durable link as configured: outbox, presence identity (versions, config
    hash, model hashes), downlink handler with watchlist and runtime-config stores."""
    data_dir = cfg.agent.data_dir
    outbox = open_outbox(cfg.outbox, data_dir)
    ident = Identity(site=cfg.agent.site, agent=cfg.agent.id, versions=default_versions(),
                     config_hash=config_hash(cfg))
    handler = None
    if cfg.downlink.enabled:
        from edge.downlink.handler import DownlinkHandler
        from edge.downlink.runtime import RuntimeConfig
        from edge.downlink.watchlist import WatchlistStore
        from edge.security.signing import trusted_keys

        handler = DownlinkHandler(cfg.downlink, prefix=cfg.mqtt.topic_prefix,
                                  site=cfg.agent.site, agent=cfg.agent.id,
                                  watchlists=WatchlistStore(data_dir), state_dir=data_dir,
                                  keys=trusted_keys(cfg.security.issuer_keys),
                                  runtime=RuntimeConfig(cfg, data_dir))
    return MqttLink(cfg.mqtt, outbox, site=cfg.agent.site, agent=cfg.agent.id,
                    identity=ident, alert_min_severity=cfg.outbox.alert_min_severity,
                    downlink=handler, data_dir=data_dir)


def open_outbox(ocfg: OutboxSection, data_dir: Path) -> Outbox:
    """The outbox configured by [outbox] (default path under agent.data_dir)."""
    path = ocfg.path or (data_dir / "outbox.sqlite")
    return Outbox(path, max_bytes=ocfg.max_bytes,
                  ttl_s=(ocfg.ttl_health_s, ocfg.ttl_low_s, ocfg.ttl_alert_s),
                  sync=ocfg.sync)
