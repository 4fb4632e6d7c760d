"""Where the agent finds its stages: a small table of lazily imported builders.

Each entry maps a name to ``"module:function"``; the function takes the validated
:class:`~edge.config.Config` and returns a list of stages (possibly empty when the
part is disabled). New decoders and detectors plug in here without touching the
pipeline runtime.
"""

from __future__ import annotations

import importlib
from typing import Any

from edge.config import Config

STAGE_BUILDERS: dict[str, str] = {
    "capture": "drivers.capture.stage:build_stages",
    "callplane": "edge.telecom.callplane.build:build_stages",
    "ipplane": "edge.telecom.ipplane.build:build_stages",
    "watchlist": "edge.watchlist.build:build_stages",
}


def build_stages(cfg: Config, names: list[str] | None = None) -> list[Any]:
    stages: list[Any] = []
    for name, target in STAGE_BUILDERS.items():
        if names is not None and name not in names:
            continue
        mod_name, func = target.split(":")
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name == mod_name:  # that part is not built yet
                continue
            raise
        stages.extend(getattr(mod, func)(cfg))
    return stages
