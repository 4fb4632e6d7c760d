"""Assembling an agent from config: sources, stages, reporter and sinks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.config import Config
from edge.pipeline import Pipeline
from edge.registry import build_stages
from edge.report.ids import IdFactory
from edge.report.pseudonym import Pseudonymiser, load_key
from edge.report.reporter import Reporter, Sink
from edge.report.sinks import JsonlSink, StdoutSink

log = logging.getLogger(__name__)


@dataclass
class Agent:
    cfg: Config
    pipeline: Pipeline
    reporter: Reporter
    sources: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for s in self.sources:
            s.close()
        self.reporter.close()


def make_sinks(cfg: Config, *, out: Path | None = None, mqtt: bool | None = None,
               stdout: bool | None = None) -> list[Sink]:
    sinks: list[Sink] = []
    path = out or cfg.outputs.jsonl.path
    if path is not None:
        sinks.append(JsonlSink(path))
    if cfg.outputs.stdout if stdout is None else stdout:
        sinks.append(StdoutSink())
    if cfg.mqtt.enabled if mqtt is None else mqtt:
        from edge.report.link import build_link  # durable: outbox + MQTT link + downlink

        sinks.append(build_link(cfg))
    return sinks


def make_sources(cfg: Config, *, events: Sequence[Path] = (), pcaps: Sequence[Path] = (),
                 follow: bool = False) -> list[Any]:
    from drivers.capture.pcapfile import PcapFileSource
    from drivers.events.sources import JsonlEventFile

    srcs: list[Any] = []
    for p in list(cfg.inputs.events.files) + list(events):
        srcs.append(JsonlEventFile(p, follow=follow))
    for p in list(cfg.inputs.pcap.files) + list(pcaps):
        srcs.append(_pcap_source(p) if _pcap_source else PcapFileSource(p))
    return srcs


def _load_fast_pcap() -> Any:
    try:
        from drivers.capture.fastpcap import FastPcapSource  # issue 5's fast path
    except ModuleNotFoundError:
        return None
    return FastPcapSource


_pcap_source = _load_fast_pcap()


def build_agent(cfg: Config, sinks: Sequence[Sink], *, replay: bool,
                extra_stages: Sequence[Any] = ()) -> Agent:
    """The pipeline with every enabled stage and a reporter over ``sinks``."""
    key = load_key(cfg.privacy.key, cfg.privacy.key_file, cfg.agent.data_dir)
    import secrets

    ns = f"{cfg.agent.site}/{cfg.agent.id}/" + ("replay" if replay else secrets.token_hex(8))
    reporter = Reporter(site=cfg.agent.site, agent=cfg.agent.id,
                        pseudonymiser=Pseudonymiser(key), ids=IdFactory(ns), sinks=sinks)
    stages = build_stages(cfg) + list(extra_stages)
    pipeline = Pipeline(stages, reporter, status_interval_s=cfg.agent.status_interval_s)
    for sink in sinks:  # per-detector counters in the MQTT heartbeat
        if hasattr(sink, "set_counters_provider"):
            sink.set_counters_provider(pipeline.counters)
    return Agent(cfg, pipeline, reporter)
