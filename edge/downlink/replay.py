"""Durable replay protection for downlink messages.

Two rules, both kept across restarts in ``<data_dir>/downlink-state.json`` (replaced
atomically *before* a message is applied, so a crash cannot let it through twice):

- per message kind, ``version`` must be higher than the highest accepted so far
  (signed messages must carry one);
- an ``id`` seen among the last :data:`WINDOW` accepted messages is refused.

An unreadable state file fails closed: every message is refused, with the reason,
until an operator removes or repairs it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path

import orjson

from edge.downlink.atomic import write_atomic

log = logging.getLogger(__name__)

FILENAME = "downlink-state.json"
WINDOW = 4096


class ReplayState:
    def __init__(self, data_dir: Path, *, window: int = WINDOW) -> None:
        self.path = Path(data_dir) / FILENAME
        self.window = window
        self.versions: dict[str, int] = {}
        self._ids: OrderedDict[str, None] = OrderedDict()
        self.broken: str | None = None
        try:
            d = orjson.loads(self.path.read_bytes())
            self.versions = {str(k): int(v) for k, v in d["versions"].items()}
            self._ids = OrderedDict((str(i), None) for i in d["ids"][-window:])
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self.broken = f"replay state {self.path} is unreadable ({exc}); refusing " \
                          "downlink messages until it is repaired or removed"
            log.error("%s", self.broken)

    def check(self, kind: str, mid: str, version: int | None) -> str | None:
        """Why the message must be refused as a replay, or None."""
        if self.broken:
            return self.broken
        if mid in self._ids:
            return "duplicate id: already handled"
        last = self.versions.get(kind, 0)
        if version is not None and version <= last:
            return f"replayed or stale: version {version} is not newer than {last} " \
                   f"(last accepted {kind})"
        return None

    def record(self, kind: str, mid: str, version: int | None) -> None:
        """Remember an accepted message on disk; OSError if that fails (then the
        message must not be applied)."""
        versions = dict(self.versions)
        if version is not None:
            versions[kind] = max(version, versions.get(kind, 0))
        ids = OrderedDict(self._ids)
        ids[mid] = None
        while len(ids) > self.window:
            ids.popitem(last=False)
        write_atomic(self.path, orjson.dumps({"versions": versions, "ids": list(ids)}))
        self.versions, self._ids = versions, ids
