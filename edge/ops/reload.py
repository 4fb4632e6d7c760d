"""SIGHUP: re-read the config file, apply what can change live, name what cannot.

:func:`plan_reload` compares the running config with the file as it is now, key by
key, and splits the differences into the keys that the live-settings mechanism can
apply (the same set the downlink accepts) and the keys that need a restart (inputs,
paths, keys, the MQTT connection). An invalid file changes nothing: the agent keeps
running on what it has and logs why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from edge.config import Config


@dataclass(slots=True)
class ReloadPlan:
    """What a reload would do: ``apply`` {dotted key: new value}, ``restart`` keys."""

    apply: dict[str, Any] = field(default_factory=dict)
    restart: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.apply and not self.restart


def flatten(cfg: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of a config as (dotted key, value), sections walked in order."""
    for f in dataclasses.fields(cfg):
        if f.metadata.get("internal"):
            continue
        value = getattr(cfg, f.name)
        key = f"{prefix}.{f.name}" if prefix else f.name
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            yield from flatten(value, key)
        else:
            yield key, value


def plan_reload(running: Config, reread: Config, live_keys: frozenset[str]) -> ReloadPlan:
    """The differences between two configs, split into live-applicable and restart."""
    now = dict(flatten(running))
    plan = ReloadPlan()
    for key, value in flatten(reread):
        if key in now and now[key] == value:
            continue
        if key in live_keys:
            plan.apply[key] = value
        else:
            plan.restart.append(key)
    return plan
