"""What ``run`` does as a service around its main loop: systemd, metrics, SIGHUP.

:class:`ServiceHooks` is called from the live main loop only (the pipeline thread):
``started`` once the inputs are open (``READY=1``, metrics endpoint up), ``turn``
on every loop turn (watchdog keep-alive, a metrics snapshot at most once a second,
a pending SIGHUP reload), ``stopping`` at shutdown (``STOPPING=1``). Signal handlers
only set flags; the work happens here, on the loop's thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from edge.config import Config, load_config
from edge.errors import ConfigError
from edge.ops.reload import ReloadPlan, plan_reload
from edge.ops.systemd import SystemdNotifier

log = logging.getLogger(__name__)


class ServiceHooks:
    def __init__(self, cfg: Config, *, counters: Callable[[], dict[str, Any]],
                 apply_live: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 live_keys: frozenset[str] = frozenset(),
                 notifier: SystemdNotifier | None = None) -> None:
        self.cfg = cfg
        self.counters = counters
        self.apply_live = apply_live
        self.live_keys = live_keys
        self.notifier = notifier or SystemdNotifier()
        self.metrics: Any = None
        self.reload_requested = False
        self.reloads = 0
        self.last_reload: ReloadPlan | None = None

    def started(self, n_sources: int) -> None:
        if self.cfg.metrics.enabled:
            from edge.ops.metrics import MetricsExporter

            self.metrics = MetricsExporter(self.cfg.metrics.bind, self.cfg.metrics.port)
            try:
                self.metrics.start()
            except OSError as exc:  # the port is taken: keep running without metrics
                log.error("metrics endpoint on %s:%d not started: %s", self.cfg.metrics.bind,
                          self.cfg.metrics.port, exc)
                self.metrics = None
            else:
                log.info("metrics at http://%s:%d/metrics", self.cfg.metrics.bind,
                         self.metrics.port)
                self.metrics.publish(self.counters(), force=True)
        self.notifier.ready(f"running with {n_sources} source(s)")

    def turn(self) -> None:
        self.notifier.keepalive()
        if self.metrics is not None:
            self.metrics.publish_lazy(self.counters)
        if self.reload_requested:
            self.reload_requested = False
            self.reload()

    def reload(self) -> ReloadPlan | None:
        """Re-read the config file; apply live keys, log the ones needing a restart."""
        path = self.cfg.source_path
        if path is None:
            log.warning("SIGHUP: no config file to re-read (embedded defaults)")
            return None
        self.notifier.reloading()
        plan: ReloadPlan | None = None
        try:
            plan = plan_reload(self.cfg, load_config(path), self.live_keys)
            if plan.apply and self.apply_live is not None:
                self.apply_live(plan.apply)
        except (ConfigError, ValueError) as exc:
            log.error("SIGHUP: %s unchanged, the file is not valid: %s", path, exc)
            plan = None
        finally:
            self.notifier.ready("reloaded")
        if plan is not None:
            self.reloads += 1
            log.info("SIGHUP: applied %s", ", ".join(f"{k}={v!r}" for k, v in
                                                      plan.apply.items()) or "nothing")
            if plan.restart:
                log.warning("SIGHUP: changed keys that need a restart (not applied): %s",
                            ", ".join(plan.restart))
        self.last_reload = plan
        return plan

    def stopping(self) -> None:
        self.notifier.stopping("flushing stages and the outbox")

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
        self.notifier.close()

    def status(self) -> dict[str, int | float]:
        out: dict[str, int | float] = {"reloads": self.reloads}
        out.update({f"notify_{k}": v for k, v in self.notifier.counters().items()})
        return out
