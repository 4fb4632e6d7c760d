"""The stored watchlist: what the downlink (or a signed file) applied last.

One JSON file under the data dir (``watchlist.json``), replaced atomically, so the
lists survive restarts; an update (snapshot or delta, :mod:`edge.watchlist.model`)
is applied to a copy and written before it takes effect, so a refused or failed
update leaves the old list in force. Versions only go up.

Stages call ``store.current()``: cheap (an ``os.stat`` at most every ``check_s``),
and it picks up a file replaced by another process (``edge-agent watchlist load``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from edge.downlink.atomic import write_atomic
from edge.watchlist.model import UpdateError, Watchlist, apply_update

FILENAME = "watchlist.json"
EMPTY = Watchlist()

__all__ = ["EMPTY", "FILENAME", "Watchlist", "WatchlistStore", "current_watchlist"]


class WatchlistStore:
    """The watchlist file under ``data_dir``: read by stages, updated by the downlink."""

    def __init__(self, data_dir: Path, *, check_s: float = 1.0) -> None:
        self.path = Path(data_dir) / FILENAME
        self._check_s = check_s
        self._lock = threading.Lock()
        self._current = EMPTY
        self._stamp: tuple[int, int] | None = None
        self._next_check = 0.0
        self.load_errors = 0
        self._reload()

    def current(self) -> Watchlist:
        """The newest stored watchlist (an empty one, version 0, before the first)."""
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self._check_s
            self._reload()
        return self._current

    def apply(self, body: Mapping[str, Any], now: float | None = None) -> Watchlist:
        """Apply a snapshot or delta and store it. Raises ValueError (UpdateError) with
        the reason when refused, OSError when it cannot be written; the old list then
        stays in force."""
        now = time.time() if now is None else now
        with self._lock:
            self._reload()
            wl = apply_update(self._current, body, now)
            # one table per kind, value -> the other fields: parsed by orjson in C, so a
            # million entries load in about a second
            write_atomic(self.path, orjson.dumps({
                "version": wl.version, "updated": wl.updated, "layout": 2,
                "kinds": wl.kinds}))
            self._current = wl
            self._stamp = self._stat()
            return wl

    def replace(self, upd: Any) -> Watchlist:
        """A downlink WatchlistUpdate (its ``body``)."""
        return self.apply(upd.body)

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
            if d.get("layout") != 2:
                raise ValueError("unknown watchlist file layout")
            wl = Watchlist(version=int(d["version"]), updated=float(d.get("updated", 0.0)),
                           kinds=d["kinds"])
            wl._index()
            self._current = wl
        except (OSError, ValueError, KeyError, TypeError, UpdateError):
            # A damaged file cannot come from write_atomic; keep what we had
            self.load_errors += 1
            self._stamp = None


def current_watchlist(data_dir: Path) -> Watchlist:
    """One-off read of the stored watchlist (prefer a long-lived WatchlistStore)."""
    return WatchlistStore(data_dir).current()
