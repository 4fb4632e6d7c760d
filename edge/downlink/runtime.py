"""Runtime configuration updates: which keys may change without a restart, and
applying a change set atomically to the live config.

An update is validated as a whole with :func:`edge.config.apply_overrides` (the same
checks as the TOML file), written to ``<data_dir>/runtime-config.json`` atomically,
and only then set on the live :class:`~edge.config.Config`; listeners are told which
keys changed. Either every key of an update is applied or none is.

A key set to ``null`` is *reset*: its runtime override is removed and it goes back to
the value the agent started with (its config file's, else the built-in default; for
``detectors.*.threshold`` that default is ``null``: the running model's own
threshold). The reset is stored like any update, so it also holds after a restart.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from edge.config import Config, apply_overrides
from edge.config import get_key as _get
from edge.config import set_key as _set
from edge.downlink.atomic import write_atomic
from edge.errors import ConfigError

log = logging.getLogger(__name__)

FILENAME = "runtime-config.json"

#: Keys a config update may set at runtime. Everything else needs a new config file
#: and a restart (inputs, paths, keys, the MQTT connection itself).
RUNTIME_KEYS = frozenset({
    "agent.log_level",
    "agent.status_interval_s",
    "mqtt.heartbeat_s",
    "detectors.callplane.threshold",
    "detectors.callplane.min_calls",
    "detectors.ipplane.threshold",
})


def allowed_keys() -> frozenset[str]:
    """RUNTIME_KEYS plus the keys the installed domains declare (edge.domains)."""
    from edge.domains import runtime_keys

    return RUNTIME_KEYS | runtime_keys()


class RuntimeConfig:
    def __init__(self, cfg: Config, data_dir: Path) -> None:
        self.cfg = cfg
        # what a reset (null) returns a key to: the config as started, before overrides
        self._base = copy.deepcopy(cfg)
        self.path = Path(data_dir) / FILENAME
        self.version = 0
        self.overrides: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._load()

    def on_change(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.append(fn)

    def apply(self, changes: dict[str, Any], version: int | None = None) -> dict[str, Any]:
        """Validate and apply; returns {key: new value} (a key given as None is reset:
        its value is then the one the agent started with). Raises ValueError (with the
        reason) when the update is refused; nothing has changed then."""
        with self._lock:
            allowed = allowed_keys()
            bad = sorted(set(changes) - allowed)
            if bad:
                raise ValueError(f"not changeable at runtime: {', '.join(bad)} "
                                 f"(allowed: {', '.join(sorted(allowed))})")
            if version is not None and version <= self.version:
                raise ValueError(f"version {version} is not newer than the current "
                                 f"version {self.version}")
            sets = {k: v for k, v in changes.items() if v is not None}
            resets = [k for k, v in changes.items() if v is None]
            start = self.cfg
            if resets:  # back to the started values, then the sets checked on top
                start = copy.deepcopy(self.cfg)
                for key in resets:
                    _set(start, key, copy.deepcopy(_get(self._base, key)))
            try:
                checked = apply_overrides(start, sets)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
            new_version = version if version is not None else self.version + 1
            merged = {k: v for k, v in {**self.overrides, **sets}.items() if k not in resets}
            write_atomic(self.path, orjson.dumps({"version": new_version, "set": merged}))
            applied = {}
            for key in changes:
                value = _get(checked, key)
                _set(self.cfg, key, value)
                applied[key] = value
            self.version, self.overrides = new_version, merged
        if "agent.log_level" in applied:
            logging.getLogger().setLevel(str(applied["agent.log_level"]).upper())
        for fn in self._listeners:
            try:
                fn(applied)
            except Exception:  # a listener must not undo an applied update
                log.exception("runtime config listener failed")
        return applied

    def _load(self) -> None:
        """Re-apply the stored overrides at start (they survive restarts)."""
        try:
            d = orjson.loads(self.path.read_bytes())
            checked = apply_overrides(self.cfg, {k: v for k, v in d["set"].items()
                                                 if k in allowed_keys()})
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error("ignoring %s: %s", self.path, exc)
            return
        for key in d["set"]:
            if key in allowed_keys():
                _set(self.cfg, key, _get(checked, key))
        self.version, self.overrides = int(d["version"]), dict(d["set"])

