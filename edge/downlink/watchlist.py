"""The current watchlist: what the downlink stored last, for detectors to read.

A watchlist is a versioned set of identifiers (pseudonyms ``h1:...`` as produced by
:mod:`edge.report.pseudonym`, or clear identifiers where the site allows that). The
store keeps it in one JSON file under the data dir, replaced atomically; versions only
go up (an older or equal version is rejected, so a replayed message cannot roll the
list back).

Detectors call ``WatchlistStore(data_dir).current()``: cheap (an ``os.stat`` per call
at most every ``check_s``), and it picks up a file replaced by the agent's downlink.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from edge.downlink.atomic import write_atomic
from edge.downlink.messages import WatchlistUpdate

FILENAME = "watchlist.json"


@dataclass(slots=True, frozen=True)
class Watchlist:
    version: int
    entries: frozenset[str]
    id_type: str = "any"
    format: str = "pseudonymised"
    updated: float = 0.0

    def __contains__(self, ident: object) -> bool:
        return ident in self.entries

    def __len__(self) -> int:
        return len(self.entries)


EMPTY = Watchlist(0, frozenset())


class WatchlistStore:
    """The watchlist file under ``data_dir``: read by detectors, replaced by the downlink."""

    def __init__(self, data_dir: Path, *, check_s: float = 1.0) -> None:
        self.path = Path(data_dir) / FILENAME
        self._check_s = check_s
        self._lock = threading.Lock()
        self._current = EMPTY
        self._stamp: tuple[int, int] | None = None
        self._next_check = 0.0
        self._reload()

    def current(self) -> Watchlist:
        """The newest stored watchlist (an empty one, version 0, before the first)."""
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self._check_s
            self._reload()
        return self._current

    def replace(self, upd: WatchlistUpdate) -> Watchlist:
        """Store a newer watchlist atomically. Raises ValueError when its version is
        not newer than the stored one, OSError when it cannot be written (the old
        list then stays in force)."""
        with self._lock:
            self._reload()
            if upd.version <= self._current.version:
                raise ValueError(f"version {upd.version} is not newer than the current "
                                 f"version {self._current.version}")
            wl = Watchlist(upd.version, frozenset(upd.entries), upd.id_type, upd.format,
                           time.time())
            write_atomic(self.path, orjson.dumps({
                "version": wl.version, "id_type": wl.id_type, "format": wl.format,
                "updated": wl.updated, "entries": sorted(wl.entries)}))
            self._current = wl
            self._stamp = self._stat()
            return wl

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_ino

    def _reload(self) -> None:
        stamp = self._stat()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        if stamp is None:
            self._current = EMPTY
            return
        try:
            d = orjson.loads(self.path.read_bytes())
            self._current = Watchlist(int(d["version"]), frozenset(d["entries"]),
                                      d.get("id_type", "any"),
                                      d.get("format", "pseudonymised"),
                                      float(d.get("updated", 0.0)))
        except (OSError, ValueError, KeyError, TypeError):
            # A damaged file cannot come from write_atomic; keep what we had
            self._stamp = None


def current_watchlist(data_dir: Path) -> Watchlist:
    """One-off read of the stored watchlist (prefer a long-lived WatchlistStore)."""
    return WatchlistStore(data_dir).current()
