"""Live settings: runtime config changes applied on the pipeline thread.

The pipeline works on its own copy of the config (made by the assembly). A change
accepted elsewhere (a signed downlink config update on the MQTT thread, a SIGHUP
reload) is handed to :meth:`Settings.submit`; the pipeline thread takes it at its
next turn (:meth:`Settings.apply_pending`, called by the pipeline on every tick and by
the live loop on every wake-up), sets it in the pipeline's copy and calls every
subscriber of the changed keys there, so no stage ever reads a value another thread
is writing. ``submit`` from another thread waits (briefly) until that happened, so
the acknowledgement that follows is true; from the pipeline thread itself it applies
at once.

Components subscribe with ``settings.subscribe(keys, callback)``: ``callback`` gets
``{key: new value}`` of the keys it named. A stage that keeps a reference to its
section of the pipeline's copy (``cfg.detectors.callplane``) sees new values without
subscribing; one that copied values at build time must subscribe. Only keys a config
update may change (``RUNTIME_KEYS`` and the domains' ``runtime_keys``) can be
subscribed to, so every subscription is to something the downlink can really send.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

from edge.config import Config, set_key

log = logging.getLogger(__name__)

Callback = Callable[[dict[str, Any]], None]


def runtime_keys() -> frozenset[str]:
    """Every key a runtime config update may set: the core's and the domains'."""
    from edge.domains import runtime_keys as domain_keys
    from edge.downlink.runtime import RUNTIME_KEYS

    return RUNTIME_KEYS | domain_keys()


class Settings:
    def __init__(self, cfg: Config, keys: Iterable[str] | None = None) -> None:
        self.cfg = cfg  # the pipeline's own copy
        self.keys = frozenset(runtime_keys() if keys is None else keys)
        self._subs: list[tuple[frozenset[str], Callback]] = []
        self._queue: queue.SimpleQueue[tuple[dict[str, Any], threading.Event]] = \
            queue.SimpleQueue()
        self._owner = threading.get_ident()  # the thread that assembles runs the pipeline
        self.applied = 0
        self.failures = 0

    def subscribe(self, keys: Iterable[str], callback: Callback) -> None:
        """Call ``callback({key: value})`` on the pipeline thread when any of ``keys``
        changes. Raises ValueError for a key that cannot change at runtime."""
        ks = frozenset(keys)
        bad = sorted(ks - self.keys)
        if bad:
            raise ValueError(f"not changeable at runtime: {', '.join(bad)}")
        self._subs.append((ks, callback))

    def bind(self) -> None:
        """Make the calling thread the pipeline thread (when it is not the assembling one)."""
        self._owner = threading.get_ident()

    def submit(self, changes: dict[str, Any], *, wait_s: float = 2.0) -> bool:
        """Hand over validated changes. On the pipeline thread: applied now. From any
        other thread: queued, and True once the pipeline thread applied them (False if
        it did not within ``wait_s``; they are applied at its next turn anyway)."""
        if threading.get_ident() == self._owner:
            self._apply(changes)
            return True
        done = threading.Event()
        self._queue.put((dict(changes), done))
        return done.wait(wait_s)

    def pending(self) -> bool:
        return not self._queue.empty()

    def apply_pending(self) -> int:
        """Apply what other threads submitted (pipeline thread only); how many sets."""
        n = 0
        while True:
            try:
                changes, done = self._queue.get_nowait()
            except queue.Empty:
                return n
            try:
                self._apply(changes)
            finally:
                done.set()
            n += 1

    def _apply(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            set_key(self.cfg, key, value)
        self.applied += 1
        for keys, fn in self._subs:
            hit = {k: v for k, v in changes.items() if k in keys}
            if not hit:
                continue
            try:
                fn(hit)
            except Exception:  # one subscriber failing must not keep the others stale
                self.failures += 1
                log.exception("applying %s failed in %s", ", ".join(hit), fn)


def connect_runtime(runtime: Any, settings: Settings) -> None:
    """Route a downlink :class:`~edge.downlink.runtime.RuntimeConfig`'s accepted
    updates to ``settings`` (the ack is sent after the pipeline applied them)."""
    runtime.on_change(lambda applied: settings.submit(applied))
