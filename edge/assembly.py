"""Building an agent from config: one path for replay, run and demo.

``assemble(cfg, mode=..., sinks=..., inputs=...)`` loads the site key once, opens the
watchlist store, asks every installed domain (:mod:`edge.domains`) for its sources,
stages and actuators, and joins them with the reporter and the sinks into an
:class:`Agent` whose pipeline is ready to run. Nothing else builds sources or stages.
"""

from __future__ import annotations

import copy
import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.config import Config
from edge.detection import ModelInfo
from edge.domains import MODES, AssemblyContext, available_domains
from edge.pipeline import Pipeline
from edge.report.ids import IdFactory
from edge.report.pseudonym import Pseudonymiser, load_fleet_key, load_key
from edge.report.reporter import Reporter, Sink
from edge.report.sinks import JsonlSink, StdoutSink
from edge.settings import Settings, connect_runtime

log = logging.getLogger(__name__)


@dataclass
class Agent:
    cfg: Config
    pipeline: Pipeline
    reporter: Reporter
    pseudonymiser: Pseudonymiser
    sources: list[Any] = field(default_factory=list)
    actuators: list[Any] = field(default_factory=list)
    models: list[ModelInfo] = field(default_factory=list)
    context: AssemblyContext | None = None
    settings: Settings | None = None

    def close(self) -> None:
        """Close sources, actuators, then sinks (so nothing reported is lost)."""
        for s in self.sources:
            try:
                s.close()
            except Exception:  # one source failing to close must not keep the rest open
                log.exception("source %s failed to close", getattr(s, "name", s))
        self.pipeline.close()
        self.reporter.close()


def make_sinks(cfg: Config, *, out: Path | None = None, mqtt: bool | None = None,
               stdout: bool | None = None) -> list[Sink]:
    """The configured sinks; ``out``/``mqtt``/``stdout`` override the config."""
    sinks: list[Sink] = []
    path = out or cfg.outputs.jsonl.path
    if path is not None:
        sinks.append(JsonlSink(path))
    if cfg.outputs.stdout if stdout is None else stdout:
        sinks.append(StdoutSink())
    if cfg.mqtt.enabled if mqtt is None else mqtt:
        from edge.report.durable import build_link  # durable: outbox + MQTT link + downlink

        sinks.append(build_link(cfg))
    return sinks


def assemble(cfg: Config, *, mode: str, sinks: Sequence[Sink],
             inputs: Mapping[str, Iterable[Path]] | None = None,
             domains: Iterable[str] | None = None,
             extra_stages: Sequence[Any] = (), extra_actuators: Sequence[Any] = ()) -> Agent:
    """The whole agent for ``mode`` ("replay", "run" or "demo").

    ``inputs`` are the CLI's files by kind (added to the configured ones); ``domains``
    restricts the installed domains used (default: all); ``extra_stages`` and
    ``extra_actuators`` are appended (embedding code, tests). If building a domain
    fails, what was opened is closed again and the error raised. The agent works on a
    copy of ``cfg``; accepted runtime updates reach it through ``agent.settings``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    # The pipeline's own copy: runtime changes reach it only through ``settings``, on
    # the pipeline thread (the caller's cfg is the one the downlink updates).
    cfg = copy.deepcopy(cfg)
    settings = Settings(cfg)
    pseudo = Pseudonymiser(load_key(cfg.privacy.key, cfg.privacy.key_file, cfg.agent.data_dir),
                           fleet_key=load_fleet_key(cfg.privacy.fleet_key_file))
    watchlist = None
    if cfg.detectors.watchlist.enabled:
        from edge.downlink.watchlist import WatchlistStore

        watchlist = WatchlistStore(cfg.agent.data_dir)
    from models.store import ModelStore

    ctx = AssemblyContext(cfg=cfg, mode=mode, pseudonymiser=pseudo, watchlist=watchlist,
                          inputs={k: list(v) for k, v in (inputs or {}).items()},
                          model_store=ModelStore(cfg.agent.data_dir, cfg), settings=settings)
    from edge.timeguard import guard

    sources: list[Any] = []
    stages: list[Any] = []
    actuators: list[Any] = []
    try:
        for dom in available_domains(domains):
            stages += dom.build_stages(ctx)
            actuators += dom.build_actuators(ctx)
            # event-time bounds on every source, before sources are merged
            sources += [guard(s, cfg, live=ctx.live) for s in dom.build_sources(ctx)]
    except BaseException:
        for obj in sources + actuators:
            try:
                obj.close()
            except Exception:
                log.exception("closing %s after a failed assembly", getattr(obj, "name", obj))
        raise
    stages += list(extra_stages)
    actuators += list(extra_actuators)
    for st in stages:  # stages that serve downlink commands (response_undo, ...)
        cmds = getattr(st, "downlink_commands", None)
        if cmds is not None:
            for sink in sinks:
                if hasattr(sink, "register_command"):
                    for name, fn in cmds().items():
                        sink.register_command(name, fn)
    store = ctx.model_store
    if store.slots:
        from edge.modelwatch import ModelWatchStage

        stages.append(ModelWatchStage(store, cfg.agent.id, wall_clock=mode == "run",
                                      warmup_s=cfg.models.drift_warmup_s))
        ctx.models.extend(s.info for s in store.slots.values()
                          if s.info not in ctx.models)
        _wire_models(store, sinks)
    # Report ids: deterministic in replay and demo (same input, same ids), random per
    # run otherwise (a restarted daemon must not reuse ids).
    ns = f"{cfg.agent.site}/{cfg.agent.id}/" + ("replay" if mode != "run"
                                                 else secrets.token_hex(8))
    reporter = Reporter(site=cfg.agent.site, agent=cfg.agent.id, pseudonymiser=pseudo,
                        ids=IdFactory(ns), sinks=sinks)
    pipeline = Pipeline(stages, reporter, actuators=actuators,
                        status_interval_s=cfg.agent.status_interval_s)
    pipeline.sources = sources
    pipeline.settings = settings
    settings.subscribe(["agent.status_interval_s"], pipeline.set_status_interval)
    for sink in sinks:
        if hasattr(sink, "set_counters_provider"):  # per-detector counters in the heartbeat
            sink.set_counters_provider(pipeline.counters)
        runtime = getattr(getattr(sink, "downlink", None), "runtime", None)
        if runtime is not None:  # downlink config updates -> the pipeline thread
            connect_runtime(runtime, settings)
    return Agent(cfg, pipeline, reporter, pseudo, sources=sources, actuators=actuators,
                 models=ctx.models, context=ctx, settings=settings)


def _wire_models(store: Any, sinks: Sequence[Sink]) -> None:
    """Birth message lists the models; the downlink serves model updates."""
    def models_now() -> dict[str, str]:
        return {n: f"{s.info.version} {s.info.sha256}" for n, s in store.slots.items()}

    def after(result: dict[str, Any]) -> dict[str, Any]:
        new = dict(models_now())
        name = result.get("name")
        if name in new and "version" in result and "sha256" in result:
            new[name] = f"{result['version']} {result['sha256']}"  # taken at the next batch
        for sink in sinks:
            if hasattr(sink, "set_models"):
                sink.set_models(new)
        return result

    commands = {
        "model_chunk": lambda args: after(store.receive_chunk(args)),
        "model_rollback": lambda args: after(store.rollback(str(args.get("name", "")))),
        "model_info": lambda args: store.info(),
    }
    for sink in sinks:
        if hasattr(sink, "set_models"):
            sink.set_models(models_now())
        if hasattr(sink, "register_command"):
            for name, fn in commands.items():
                sink.register_command(name, _model_errors_as_values(fn))


def _model_errors_as_values(fn: Any) -> Any:
    """A refused package is a refused command (its reason in the ack), not an error."""
    from edge.errors import ModelError

    def call(args: dict[str, Any]) -> Any:
        try:
            return fn(args)
        except ModelError as exc:
            raise ValueError(str(exc)) from None

    return call


def check_stages(cfg: Config) -> list[ModelInfo]:
    """Build (and drop) every domain's stages as at start-up, without touching state:
    models are opened and verified, no key is generated, no source is opened. Raises
    what the builders raise; returns the models loaded (for ``edge-agent check``)."""
    from models.store import ModelStore

    ctx = AssemblyContext(cfg=cfg, mode="replay", pseudonymiser=Pseudonymiser(bytes(32)),
                          watchlist=None, model_store=ModelStore(cfg.agent.data_dir, cfg))
    for dom in available_domains():
        for st in dom.build_stages(ctx):
            close = getattr(st, "close", None)
            if close is not None:
                close()
    return ctx.models
