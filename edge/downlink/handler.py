"""One downlink message in, one acknowledgement out; state changes only when valid.

``DownlinkHandler.handle(topic, payload, correlation)`` checks, in order: the topic,
the size limit, JSON, the schema, the signature (when a key is configured), a
replayed id, then applies the message (config update, watchlist replacement or
command) atomically and returns an :class:`~edge.downlink.messages.Ack`. Every
rejection says why. It never raises: a hostile or malformed message is an
acknowledgement with ``ok: false``, and leaves the agent's state as it was.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from edge.config import DownlinkSection
from edge.downlink.messages import (
    Ack,
    Command,
    ConfigUpdate,
    Rejection,
    WatchlistUpdate,
    parse,
)
from edge.downlink.runtime import RuntimeConfig
from edge.downlink.signing import verify
from edge.downlink.watchlist import WatchlistStore
from edge.report.topics import downlink_topic

log = logging.getLogger(__name__)

CommandFn = Callable[[dict[str, Any]], dict[str, Any]]


class DownlinkHandler:
    def __init__(self, cfg: DownlinkSection, *, prefix: str, site: str, agent: str,
                 watchlists: WatchlistStore, runtime: RuntimeConfig | None = None,
                 seen_ids: int = 1024) -> None:
        self.cfg = cfg
        self.watchlists = watchlists
        self.runtime = runtime
        self._prefix = downlink_topic(prefix, site, agent, "")
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_max = seen_ids
        self.commands: dict[str, CommandFn] = {
            "ping": lambda args: {"pong": True},
            "watchlist_info": self._watchlist_info,
        }
        self.counters: dict[str, int] = {"accepted": 0, "rejected": 0}

    def register(self, name: str, fn: CommandFn) -> None:
        """Add a command (the link adds heartbeat, reconnect, outbox_stats)."""
        self.commands[name] = fn

    def handle(self, topic: str, payload: bytes, correlation: bytes | None = None) -> Ack:
        kind = topic[len(self._prefix):] if topic.startswith(self._prefix) else topic
        corr = _corr_text(correlation)
        try:
            ack = self._handle(kind, payload, corr)
        except Exception as exc:  # never let a message take the agent down
            log.exception("downlink: unexpected failure on %s", topic)
            ack = Ack(kind, corr, False, f"internal error: {exc.__class__.__name__}")
        self.counters["accepted" if ack.ok else "rejected"] += 1
        if ack.ok:
            log.info("downlink %s %s applied", kind, ack.id)
        else:
            log.warning("downlink %s %s rejected: %s", kind, ack.id, ack.reason)
        return ack

    def _handle(self, kind: str, payload: bytes, corr: str | None) -> Ack:
        limit = self.cfg.watchlist_max_bytes if kind == "watchlist" else self.cfg.max_bytes
        got = parse(kind, payload, limit)
        if isinstance(got, Rejection):
            return Ack(kind, got.id or corr, False, got.reason)
        msg, body = got
        key = self.cfg.watchlist_key if kind == "watchlist" else self.cfg.command_key
        if key is not None:
            why = verify(body, key)
            if why is not None:
                return Ack(kind, msg.id, False, why)
        if msg.id in self._seen:
            return Ack(kind, msg.id, False, "duplicate id: already handled")
        ack = self._apply(kind, msg)
        if ack.ok:
            self._seen[msg.id] = None
            if len(self._seen) > self._seen_max:
                self._seen.popitem(last=False)
        return ack

    def _apply(self, kind: str, msg: Any) -> Ack:
        if isinstance(msg, WatchlistUpdate):
            try:
                wl = self.watchlists.replace(msg)
            except ValueError as exc:
                return Ack(kind, msg.id, False, str(exc))
            except OSError as exc:
                return Ack(kind, msg.id, False, f"cannot store watchlist: {exc}")
            return Ack(kind, msg.id, True, result={"version": wl.version,
                                                   "entries": len(wl.entries)})
        if isinstance(msg, ConfigUpdate):
            if self.runtime is None:
                return Ack(kind, msg.id, False, "runtime config updates are not enabled")
            try:
                applied = self.runtime.apply(msg.set, msg.version)
            except ValueError as exc:
                return Ack(kind, msg.id, False, str(exc))
            except OSError as exc:
                return Ack(kind, msg.id, False, f"cannot store config: {exc}")
            return Ack(kind, msg.id, True, result={"version": self.runtime.version,
                                                   "applied": applied})
        assert isinstance(msg, Command)
        fn = self.commands.get(msg.command)
        if fn is None:
            return Ack(kind, msg.id, False, f"unknown command '{msg.command}' (known: "
                       f"{', '.join(sorted(self.commands))})")
        try:
            result = fn(msg.args)
        except (ValueError, TypeError, KeyError) as exc:
            return Ack(kind, msg.id, False, f"bad arguments: {exc}")
        return Ack(kind, msg.id, True, result=result or {})

    def _watchlist_info(self, args: dict[str, Any]) -> dict[str, Any]:
        wl = self.watchlists.current()
        return {"version": wl.version, "entries": len(wl.entries), "id_type": wl.id_type}


def _corr_text(correlation: bytes | None) -> str | None:
    if not correlation:
        return None
    try:
        return correlation.decode("utf-8")[:128]
    except UnicodeDecodeError:
        return correlation.hex()[:128]
