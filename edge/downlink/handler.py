"""One downlink message in, one acknowledgement out; state changes only when valid.

``DownlinkHandler.handle(topic, payload, correlation)`` checks, in order: the topic,
the size limit, the Ed25519 signature over the raw bytes (before anything is parsed;
:mod:`edge.downlink.envelope`), JSON, the schema, replay (version per kind and the
window of recent ids, durable: :mod:`edge.downlink.replay`), then applies the message
(config update, watchlist replacement or command) atomically and returns an
:class:`~edge.downlink.messages.Ack`. Without issuer keys it fails closed: every
message is refused with an ack saying why, unless ``downlink.allow_unsigned`` (lab).
It never raises: a hostile or malformed message is an acknowledgement with
``ok: false``, and leaves the agent's state as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edge.config import DownlinkSection
from edge.downlink.envelope import open_sealed, split
from edge.downlink.messages import (
    KINDS,
    Ack,
    Command,
    ConfigUpdate,
    Rejection,
    WatchlistUpdate,
    parse,
)
from edge.downlink.replay import ReplayState
from edge.downlink.runtime import RuntimeConfig
from edge.downlink.watchlist import WatchlistStore
from edge.errors import SignatureError
from edge.report.topics import downlink_topic
from edge.security.signing import Ed25519PublicKey

log = logging.getLogger(__name__)

CommandFn = Callable[[dict[str, Any]], dict[str, Any]]


class DownlinkHandler:
    def __init__(self, cfg: DownlinkSection, *, prefix: str, site: str, agent: str,
                 watchlists: WatchlistStore, state_dir: Path,
                 keys: Mapping[str, Ed25519PublicKey] | None = None,
                 runtime: RuntimeConfig | None = None) -> None:
        self.cfg = cfg
        self.keys = dict(keys or {})
        self.watchlists = watchlists
        self.runtime = runtime
        self.replay = ReplayState(state_dir)
        self._prefix = downlink_topic(prefix, site, agent, "")
        if not self.keys:
            if cfg.allow_unsigned:
                log.warning("downlink: NO issuer keys and allow_unsigned = true: anyone "
                            "who can publish on the broker can change this agent (lab only)")
            else:
                log.info("downlink: no issuer keys (security.issuer_keys): config, "
                         "watchlist and command messages will be refused")
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
        if kind not in KINDS:
            return Ack(kind, corr, False, f"unknown downlink topic '{kind}' (known: "
                       f"{', '.join(KINDS)})")
        limit = self.cfg.watchlist_max_bytes if kind == "watchlist" else self.cfg.max_bytes
        if len(payload) > limit:
            return Ack(kind, corr, False, f"too large: {len(payload)} bytes > limit {limit}")
        signer: str | None = None
        if self.keys:  # verify before parsing: a forgery costs one hash, no JSON
            try:
                signer, body = open_sealed(kind, payload, self.keys)
            except SignatureError as exc:
                return Ack(kind, corr, False, exc.reason)
        elif self.cfg.allow_unsigned:
            body = split(payload)[1]
        else:
            return Ack(kind, corr, False, "refused: no issuer keys configured "
                       "(security.issuer_keys), so nothing can be authenticated; "
                       "downlink.allow_unsigned = true accepts unsigned messages (lab only)")
        got = parse(kind, body, limit)
        if isinstance(got, Rejection):
            return Ack(kind, got.id or corr, False, got.reason)
        msg, obj = got
        version = obj.get("version")
        if signer is not None and version is None:
            return Ack(kind, msg.id, False, "signed messages need a 'version' (replay "
                       "protection)")
        why = self.replay.check(kind, msg.id, version)
        if why is not None:
            return Ack(kind, msg.id, False, why)
        try:  # remembered before it acts: a crash cannot let it through twice
            self.replay.record(kind, msg.id, version)
        except OSError as exc:
            return Ack(kind, msg.id, False, f"cannot store replay state: {exc}")
        ack = self._apply(kind, msg)
        if signer is not None and ack.ok:
            ack.result["signed_by"] = signer
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
                                                   "entries": len(wl)})
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
        kinds: dict[str, int] = {}
        for kind, _ in wl.entries:
            kinds[kind] = kinds.get(kind, 0) + 1
        return {"version": wl.version, "entries": len(wl), "by_kind": kinds}


def _corr_text(correlation: bytes | None) -> str | None:
    if not correlation:
        return None
    try:
        return correlation.decode("utf-8")[:128]
    except UnicodeDecodeError:
        return correlation.hex()[:128]
