"""``edge-agent run``: the live daemon.

Each live source runs in its own thread and hands records to a bounded queue; the
pipeline runs on the main thread, on event time. When inputs are quiet, event time
is advanced by the wall-clock time elapsed since the last record, so windows close
and health reports keep coming. SIGINT/SIGTERM stop the sources, flush the stages
and close the sinks (nothing queued is dropped).
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from typing import Any

from edge.assembly import assemble, make_sinks
from edge.config import Config
from edge.downlink.runtime import allowed_keys
from edge.errors import ConfigError
from edge.ops.service import ServiceHooks

log = logging.getLogger(__name__)
_END = object()


def _apply_live(cfg: Config, settings: Any) -> Any:
    """Applies SIGHUP changes of live keys to the running config (the link's view)
    and, through the settings, to the pipeline's copy (called on the pipeline thread)."""
    from edge.config import apply_overrides
    from edge.ops.reload import flatten

    def apply(changes: dict[str, Any]) -> dict[str, Any]:
        checked = dict(flatten(apply_overrides(cfg, changes)))
        for key in changes:
            *path, leaf = key.split(".")
            obj: Any = cfg
            for part in path:
                obj = getattr(obj, part)
            setattr(obj, leaf, checked[key])
        if settings is not None:
            settings.submit({key: checked[key] for key in changes})
        return changes

    return apply


def _pump(src: Any, q: queue.Queue[Any], stop: threading.Event) -> None:
    try:
        for rec in src:
            if stop.is_set():
                break
            q.put(rec)
    except Exception:
        log.exception("source %s failed", getattr(src, "name", src))
    finally:
        q.put(_END)


def run_live(cfg: Config, *, stop: threading.Event | None = None,
             queue_size: int = 100_000) -> int:
    """Run until ``stop`` is set (or a signal arrives) or every source has ended."""
    stop = stop or threading.Event()
    sinks = make_sinks(cfg)
    try:
        agent = assemble(cfg, mode="run", sinks=sinks)
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    sources = agent.sources
    if not sources:
        agent.close()
        raise ConfigError("no live inputs configured: set inputs.events.files with "
                          "follow = true, inputs.events.udp_listen or inputs.capture.interface",
                          key="inputs")
    q: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
    hooks = ServiceHooks(cfg, counters=lambda: {**agent.pipeline.counters(),
                                                "live.queue_depth": q.qsize()},
                         apply_live=_apply_live(cfg, agent.settings),
                         live_keys=allowed_keys())
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        signal.signal(signal.SIGHUP, lambda *_: setattr(hooks, "reload_requested", True))
    threads = [threading.Thread(target=_pump, args=(s, q, stop), daemon=True,
                                name=f"src-{getattr(s, 'name', i)}")
               for i, s in enumerate(sources)]
    for t in threads:
        t.start()
    log.info("agent %s/%s running with %d source(s)", cfg.agent.site, cfg.agent.id,
             len(sources))
    hooks.started(len(sources))
    pipeline = agent.pipeline
    live_ends = 0
    wall_at_last = time.monotonic()
    try:
        while not stop.is_set() and live_ends < len(threads):
            hooks.turn()
            pipeline.apply_settings()  # downlink config updates, on this thread
            try:
                rec = q.get(timeout=0.5)
            except queue.Empty:
                if pipeline.now is not None:
                    pipeline.tick_idle(pipeline.now + (time.monotonic() - wall_at_last))
                    wall_at_last = time.monotonic()
                continue
            if rec is _END:
                live_ends += 1
                continue
            pipeline.feed(rec)
            wall_at_last = time.monotonic()
    finally:
        stop.set()
        hooks.stopping()
        for s in sources:
            s.close()
        while True:  # drain what the sources already handed over
            try:
                rec = q.get_nowait()
            except queue.Empty:
                break
            if rec is not _END:
                pipeline.feed(rec)
        pipeline.finish()
        pipeline.close()
        agent.reporter.close()
        hooks.close()
        log.info("agent stopped after %d records, %d detections", pipeline.records,
                 pipeline.detections)
    return 0
