"""The stored watchlist: what the downlink (or a signed file) applied last.

One JSON file under the data dir (``watchlist.json``), replaced atomically, so the
lists survive restarts; an update (snapshot or delta, :mod:`edge.watchlist.model`)
is applied to a copy and written before it takes effect, so a refused or failed
update leaves the old list in force. Versions only go up.

Stages read ``store.latest`` per record (one attribute: the list object changes when
the list does, so a matcher compares identities and memoises per list) and call
``store.current()`` from their tick (an ``os.stat`` at most every ``check_s``) to pick
up a file replaced by another process (``python -m edge.watchlist.load``). An update
applied through any store of this process (the downlink's) reaches every other store
on the same file at once, without waiting for the stat.
"""

from __future__ import annotations

import gc
import os
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from edge.downlink.atomic import write_atomic
from edge.watchlist.model import UpdateError, Watchlist, apply_update

FILENAME = "watchlist.json"
EMPTY = Watchlist()

__all__ = ["EMPTY", "FILENAME", "Watchlist", "WatchlistStore", "current_watchlist"]


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Building a million rows makes a million container objects: the cyclic
    collector would scan the growing heap again and again meanwhile (half the load
    time). Nothing built here is cyclic; refcounting frees whatever is dropped."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


#: the stores of this process by file, so an update applied through one reaches all
_PEERS: dict[str, weakref.WeakSet[WatchlistStore]] = {}
_PEERS_LOCK = threading.Lock()


class WatchlistStore:
    """The watchlist file under ``data_dir``: read by stages, updated by the downlink."""

    def __init__(self, data_dir: Path, *, check_s: float = 1.0) -> None:
        self.path = Path(data_dir) / FILENAME
        self._check_s = check_s
        self._lock = threading.Lock()
        #: the list in force: read it per record (no clock, no stat); it is replaced,
        #: never changed in place, so ``is`` tells a new version
        self.latest: Watchlist = EMPTY
        self._stamp: tuple[int, int] | None = None
        self._next_check = 0.0
        self.load_errors = 0
        self._reload()
        with _PEERS_LOCK:
            _PEERS.setdefault(str(self.path.absolute()), weakref.WeakSet()).add(self)

    def current(self) -> Watchlist:
        """The newest stored watchlist (an empty one, version 0, before the first),
        re-reading the file if another process replaced it (checked every ``check_s``)."""
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self._check_s
            self._reload()
        return self.latest

    def apply(self, body: Mapping[str, Any], now: float | None = None) -> Watchlist:
        """Apply a snapshot or delta and store it. Raises ValueError (UpdateError) with
        the reason when refused, OSError when it cannot be written; the old list then
        stays in force."""
        now = time.time() if now is None else now
        with self._lock:
            self._reload()
            with _no_cyclic_gc():
                wl = apply_update(self.latest, body, now)
                # one table per kind, value -> the other fields: parsed by orjson in C,
                # so a million entries load in about a second
                blob = orjson.dumps({"version": wl.version, "updated": wl.updated,
                                     "layout": 2, "kinds": wl.kinds})
            write_atomic(self.path, blob)
            del blob
            stamp = self._stat()
            self.latest, self._stamp = wl, stamp
        with _PEERS_LOCK:
            peers = list(_PEERS.get(str(self.path.absolute()), ()))
        for p in peers:
            if p is not self and p.latest.version < wl.version:
                with p._lock:
                    p.latest, p._stamp = wl, stamp
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
            self.latest = EMPTY
            return
        try:
            raw = self.path.read_bytes()
            with _no_cyclic_gc():
                d = orjson.loads(raw)
                del raw
                if d.get("layout") != 2:
                    raise ValueError("unknown watchlist file layout")
                wl = Watchlist(version=int(d["version"]),
                               updated=float(d.get("updated", 0.0)), kinds=d["kinds"])
                wl._index()
            self.latest = wl
        except (OSError, ValueError, KeyError, TypeError, UpdateError):
            # A damaged file cannot come from write_atomic; keep what we had
            self.load_errors += 1
            self._stamp = None


def current_watchlist(data_dir: Path) -> Watchlist:
    """One-off read of the stored watchlist (prefer a long-lived WatchlistStore)."""
    return WatchlistStore(data_dir).current()
